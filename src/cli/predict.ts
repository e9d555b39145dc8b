// `deltaprop predict MODEL DATA`: one CSV row out per row in: the predicted class name (or the
// predicted values), and on request the probability of every class.
import { Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { backendOptions, checkWritable, dataOptions, writeOutput, type BackendFlags } from './common.js';
import { CliError, readTable } from './data.js';
import { classNames, openModel } from './model-data.js';

interface PredictFlags extends BackendFlags {
  target?: string;
  header?: boolean;
  delimiter?: string;
  probabilities?: boolean;
  out?: string;
}

export function predictCommand(): Command {
  const command = new Command('predict')
    .summary('predict classes or values for the rows of a data file, as CSV')
    .description('Predict with a saved model, one output row per DATA row, as CSV with a header: '
      + '`class` (the class name) for classifiers, `value` (or value_1, value_2, …) for regression. '
      + 'A target column is skipped when named with --target, or when the rows are one column wider than the model\'s input.')
    .argument('<MODEL>', 'model file saved by train --save (or saveModel)')
    .argument('<DATA>', 'CSV file, IDX images file, or builtin:iris / builtin:digits');
  for (const o of dataOptions('a target column to skip: header name or 0-based index', { labels: false })) command.addOption(o);
  command
    .option('-p, --probabilities', 'add one column per class with its probability (p_<class>)')
    .option('--out <FILE>', 'write the CSV to FILE (atomically) instead of stdout');
  for (const o of backendOptions()) command.addOption(o);
  return command
    .addHelpText('after', `
Examples:
  $ deltaprop predict wine.model new-wines.csv
  $ deltaprop predict wine.model new-wines.csv --probabilities --out predictions.csv
  $ deltaprop predict digits.model builtin:digits | head`)
    .action(async (modelPath: string, data: string, flags: PredictFlags) => {
      await predict(modelPath, data, flags);
    });
}

async function predict(modelPath: string, data: string, flags: PredictFlags): Promise<void> {
  if (flags.out) await checkWritable(flags.out, 'predictions');
  const { model } = await openModel(modelPath, flags);
  // IDX labels are never needed to predict: labels is left unset and an unpaired file is fine
  const table = await readTable(data, { target: flags.target, header: flags.header, delimiter: flags.delimiter, need: 'optional', features: model.inputs });
  const classes = classNames(model);
  if (flags.probabilities && !classes) throw new CliError(`${modelPath}: --probabilities needs a classifier; this model predicts values`);
  const rows = table.x.shape[0], outs = model.outputs;
  const probs = model.predict(table.x).data;
  const records: (string | number)[][] = [];
  if (classes) {
    const predicted = model.predictClasses(table.x);
    // a single sigmoid output is P(class 1); the table shows both classes
    const perClass = (i: number): number[] => (outs === 1 ? [1 - probs[i], probs[i]] : Array.from(probs.subarray(i * outs, (i + 1) * outs)));
    records.push(['class', ...(flags.probabilities ? classes.map((c) => `p_${c}`) : [])]);
    for (let i = 0; i < rows; i++) {
      records.push([classes[predicted[i]], ...(flags.probabilities ? perClass(i).map((p) => Number(p.toPrecision(6))) : [])]);
    }
  } else {
    records.push(outs === 1 ? ['value'] : Array.from({ length: outs }, (_, j) => `value_${j + 1}`));
    for (let i = 0; i < rows; i++) records.push(Array.from(probs.subarray(i * outs, (i + 1) * outs), (v) => Number(v.toPrecision(7))));
  }
  const csv = stringify(records);
  if (flags.out) await writeOutput(flags.out, csv, 'predictions');
  else process.stdout.write(csv);
}
