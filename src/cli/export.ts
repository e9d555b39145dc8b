// `deltaprop export MODEL --onnx OUT.onnx`: a saved model as a standard ONNX graph (opset 13) for
// onnxruntime and other ONNX runtimes, with the input normalization in the graph and the class
// names as metadata.
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { JsBackend } from '../backends/js.js';
import { writeFileAtomic } from '../io/files.js';
import { ModelFileError, modelFromBytes } from '../io/modelFile.js';
import { toOnnx } from '../onnx/export.js';
import { ONNX_NAMES } from '../onnx/schema.js';
import { checkWritable, count, out } from './common.js';
import { openForReading } from './data.js';
import { describeLayer } from '../spec.js';

export function exportCommand(version: string): Command {
  return new Command('export')
    .summary('write a saved model as an ONNX file (for onnxruntime and other ONNX runtimes)')
    .description('Convert a model file to ONNX (opset 13: Gemm layers with Relu, LeakyRelu, Sigmoid, Tanh or Softmax). '
      + `The graph reads raw features from the input '${ONNX_NAMES.input}' (float32 [batch, features]; the model's `
      + `normalization is the graph's first nodes) and writes '${ONNX_NAMES.output}' (float32 [batch, outputs]). `
      + `The class names are the metadata '${ONNX_NAMES.classesKey}' (a JSON array).`)
    .argument('<MODEL>', 'model file saved by train --save (or saveModel)')
    .requiredOption('--onnx <FILE>', 'the ONNX file to write (atomically)')
    .addHelpText('after', `
Examples:
  $ deltaprop export wine.model --onnx wine.onnx
  $ deltaprop import wine.onnx --out again.model`)
    .action(async (modelPath: string, flags: { onnx: string }) => {
      await checkWritable(flags.onnx, 'the ONNX file');
      await (await openForReading(modelPath, 'model file')).close();
      let model;
      try {
        // exporting computes nothing: the reference backend is enough and always loads
        model = modelFromBytes(await readFile(modelPath), new JsBackend());
      } catch (e) {
        if (e instanceof ModelFileError) throw new ModelFileError(`${modelPath}: ${e.message}`);
        throw e;
      }
      const bytes = toOnnx(model, { producerVersion: version });
      await writeFileAtomic(flags.onnx, bytes);
      const layers = model.spec.layers.map(describeLayer).join(' → ');
      out(`wrote ${flags.onnx} (${count(bytes.length)} bytes, opset 13): ${ONNX_NAMES.input} [batch, ${model.inputs}] → ${layers} → ${ONNX_NAMES.output} [batch, ${model.outputs}]`);
    });
}
