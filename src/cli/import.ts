// `deltaprop import IN.onnx --out MODEL`: an ONNX graph of an MLP (as PyTorch's torch.onnx.export
// or `deltaprop export` writes it) as a deltaprop model file, ready for evaluate, predict or fit.
import { Command, Option } from 'commander';
import { JsBackend } from '../backends/js.js';
import { saveModel } from '../io/files.js';
import { modelFromOnnx, OnnxError } from '../onnx/import.js';
import { describeLayer, type LossName } from '../spec.js';
import { checkWritable, out, positiveNumber } from './common.js';
import { openForReading } from './data.js';

interface ImportFlags {
  out: string;
  loss?: LossName;
  lr?: number;
}

export function importCommand(): Command {
  return new Command('import')
    .summary('convert an ONNX file of an MLP (PyTorch, deltaprop) to a model file')
    .description('Read an ONNX graph of a multilayer perceptron: Gemm or MatMul+Add layers with Relu, LeakyRelu, '
      + 'Sigmoid, Tanh or Softmax, optionally after a Sub/Div input normalization (as torch.onnx.export writes an '
      + 'nn.Sequential of Linear layers and activations, or as deltaprop export writes it). Any other graph is an '
      + 'error naming the node that is not supported.')
    .argument('<ONNX>', 'the ONNX file to read')
    .requiredOption('--out <FILE>', 'the model file to write (atomically)')
    .addOption(new Option('--loss <NAME>', 'loss for later training (default: the exported one, else from the output activation)')
      .choices(['mse', 'binaryCrossEntropy', 'categoricalCrossEntropy', 'huber', 'meanAbsoluteError']))
    .option('--lr <RATE>', 'Adam learning rate for later training (default: the exported optimizer, else Adam 0.001)', positiveNumber('--lr'))
    .addHelpText('after', `
Examples:
  $ deltaprop import mlp.onnx --out mlp.model
  $ deltaprop evaluate mlp.model test.csv --target label`)
    .action(async (path: string, flags: ImportFlags) => {
      await checkWritable(flags.out, 'the model file');
      const fh = await openForReading(path, 'ONNX file');
      let bytes: Uint8Array;
      try {
        bytes = await fh.readFile();
      } finally {
        await fh.close();
      }
      let model;
      try {
        model = modelFromOnnx(bytes, new JsBackend(), {
          loss: flags.loss,
          optimizer: flags.lr !== undefined ? { type: 'adam', learningRate: flags.lr } : undefined,
        });
      } catch (e) {
        if (e instanceof OnnxError) throw new OnnxError(`${path}: ${e.message}`);
        throw e;
      }
      await saveModel(model, flags.out);
      const layers = model.spec.layers.map(describeLayer).join(' → ');
      const extras = [model.spec.normalization ? 'normalization' : '', model.spec.classes ? `classes ${model.spec.classes.join(', ')}` : ''].filter(Boolean);
      out(`wrote ${flags.out}: ${model.inputs} inputs → ${layers}${extras.length ? ` (${extras.join('; ')})` : ''}, loss ${model.spec.loss}`);
    });
}
