// What evaluate and predict share: a model file on the chosen backend, and the class names it
// predicts (from the file, or indices for models built through the API without names).
import { readModelFile } from '../io/files.js';
import type { Model } from '../model/model.js';
import { chooseBackend, type BackendFlags } from './common.js';
import { openForReading } from './data.js';
import type { BackendReport } from '../backends/select.js';

export async function openModel(path: string, flags: BackendFlags): Promise<{ model: Model; report: BackendReport }> {
  // the same wording as data files for missing or unreadable paths
  await (await openForReading(path, 'model file')).close();
  const { backend, report } = await chooseBackend(flags);
  return { model: await readModelFile(path, backend), report };
}

/** Class names in output order, or null for a regression model. */
export function classNames(model: Model): string[] | null {
  const { spec } = model;
  if (spec.classes) return spec.classes;
  if (spec.loss === 'categoricalCrossEntropy') return Array.from({ length: model.outputs }, (_, i) => String(i));
  if (spec.loss === 'binaryCrossEntropy' && model.outputs === 1) return ['0', '1'];
  return null;
}
