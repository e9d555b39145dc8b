// `deltaprop evaluate MODEL DATA`: loss, accuracy, precision/recall/F1 (ROC AUC for two classes)
// and the confusion matrix (with class names), or MAE, RMSE and R² for regression, of a saved
// model on labelled data.
import { Command } from 'commander';
import type { Matrix } from '../data.js';
import { backendOptions, classMetricLines, classMetrics, count, dataOptions, describeBackend, f4, out, perClassJson, TARGET_HELP, type BackendFlags } from './common.js';
import { classIndices, readTable, targetValues } from './data.js';
import { classNames, openModel } from './model-data.js';

interface EvaluateFlags extends BackendFlags {
  target?: string;
  header?: boolean;
  delimiter?: string;
  labels?: string;
  json?: boolean;
}

export function evaluateCommand(): Command {
  const command = new Command('evaluate')
    .summary('loss, accuracy, precision/recall/F1, ROC AUC and confusion matrix (regression: MAE, RMSE, R²) of a saved model on labelled data')
    .description('Evaluate a saved model on labelled DATA (same formats as train: CSV, IDX pair, builtin:NAME). '
      + 'The target column is found as in train; the rows must have the model\'s number of features besides it.')
    .argument('<MODEL>', 'model file saved by train --save (or saveModel)')
    .argument('<DATA>', 'CSV file, IDX images file, or builtin:iris / builtin:digits');
  for (const o of [...dataOptions(TARGET_HELP, { labels: true }), ...backendOptions()]) command.addOption(o);
  return command
    .option('--json', 'print one JSON object: loss, accuracy, precision, recall, f1, roc_auc, per_class, rows, classes, confusion (regression: loss, mae, rmse, r2, rows)')
    .addHelpText('after', `
Examples:
  $ deltaprop evaluate wine.model wine-test.csv --target cultivar
  $ deltaprop evaluate digits.model builtin:digits --json
  $ deltaprop evaluate fashion.model t10k-images-idx3-ubyte.gz`)
    .action(async (modelPath: string, data: string, flags: EvaluateFlags) => {
      await evaluate(modelPath, data, flags);
    });
}

async function evaluate(modelPath: string, data: string, flags: EvaluateFlags): Promise<void> {
  const { model, report } = await openModel(modelPath, flags);
  const table = await readTable(data, { target: flags.target, header: flags.header, delimiter: flags.delimiter, labels: flags.labels, need: 'required', features: model.inputs });
  const classes = classNames(model);
  const rows = table.x.shape[0];
  if (!classes) {
    const values = targetValues(table.target!, table.source);
    const m = model.evaluate(table.x, values);
    const result = { loss: m.loss, accuracy: null, mae: m.mae, rmse: m.rmse, r2: m.r2, rows, backend: report.backend };
    if (flags.json) out(JSON.stringify(result));
    else {
      out(`backend: ${describeBackend(report)}`);
      out(`${table.source}: ${count(rows)} rows`);
      out(`loss (${model.spec.loss}): ${f4(m.loss)}  mean absolute error: ${f4(m.mae)}  rmse: ${f4(m.rmse)}  r2: ${f4(m.r2)}`);
    }
    return;
  }
  const y = classIndices(table.target!, classes, table.source);
  const k = classes.length;
  // one-hot rows fit every classifier output (softmax, or one sigmoid per class); a single sigmoid
  // output takes the 0/1 label itself
  const targets: Matrix = k === 2 && model.outputs === 1
    ? { data: Float32Array.from(y), shape: [rows, 1] }
    : { data: oneHot(y, k), shape: [rows, k] };
  const m = model.evaluate(table.x, targets);
  const predicted = model.predictClasses(table.x);
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  for (let i = 0; i < rows; i++) confusion[y[i]][predicted[i]]++;
  let correct = 0;
  for (let c = 0; c < k; c++) correct += confusion[c][c];
  const accuracy = correct / rows;
  const scores = classMetrics(model, table.x, y, k);
  if (flags.json) {
    out(JSON.stringify({
      loss: m.loss, accuracy, precision: scores.precision, recall: scores.recall, f1: scores.f1, roc_auc: scores.auc ?? null,
      per_class: perClassJson(scores, classes), rows, backend: report.backend, classes, confusion,
    }));
    return;
  }
  out(`backend: ${describeBackend(report)}`);
  out(`${table.source}: ${count(rows)} rows, ${k} classes`);
  out('confusion matrix (rows: true class, columns: predicted):');
  for (const line of confusionTable(classes, confusion)) out(line);
  for (const line of classMetricLines(scores, classes)) out(line);
  out(`loss: ${f4(m.loss)}`);
  out(`accuracy: ${f4(accuracy)}`);
}

function oneHot(y: Int32Array, k: number): Float32Array {
  const data = new Float32Array(y.length * k);
  y.forEach((c, i) => {
    data[i * k + c] = 1;
  });
  return data;
}

function confusionTable(classes: string[], m: number[][]): string[] {
  const names = classes.map((c) => (c.length > 14 ? `${c.slice(0, 13)}…` : c));
  // a loop, not Math.max(...cells): k² cells would all be arguments on the stack
  let w = 3;
  for (const n of names) w = Math.max(w, n.length);
  for (const row of m) for (const v of row) w = Math.max(w, String(v).length);
  const cell = (s: string): string => s.padStart(w);
  const lines = [`${' '.repeat(w)}  ${names.map(cell).join(' ')}`];
  m.forEach((row, i) => lines.push(`${cell(names[i])}  ${row.map((v) => cell(String(v))).join(' ')}`));
  return lines;
}
