// The model's public names at their old path (the code is in src/model/): the entry points
// (src/index.ts, src/cli.ts) and other importers of './model.js' keep working.
export { Model } from './model/model.js';
export { TrainingError } from './model/fit.js';
export type { BatchLogs, EpochLogs, FitOptions, History, Metrics, Monitor } from './model/fit.js';
