// The model's public names, for importers of this path (the code is in src/model/).
export { Model } from './model/model.js';
export { TrainingError } from './model/fit.js';
export type { BatchLogs, EpochLogs, FitOptions, History, Metrics, Monitor } from './model/fit.js';
