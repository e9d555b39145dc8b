// The `deltaprop` command: train, evaluate, predict, info, bench. Built by tsup as dist/cli.js.
// Every error a user can cause ends as one line on stderr (`deltaprop: error: …`) and exit code 1;
// only an unexpected failure shows its stack, and only with DELTAPROP_DEBUG=1.
import { CommanderError, Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchCommand } from '../bench/index.js';
import { BackendError } from './backends/select.js';
import { CliError } from './cli/data.js';
import { evaluateCommand } from './cli/evaluate.js';
import { infoCommand } from './cli/info.js';
import { predictCommand } from './cli/predict.js';
import { trainCommand } from './cli/train.js';
import { InputError } from './data.js';
import { ModelFileError } from './io/modelFile.js';
import { packageRoot } from './io/packageRoot.js';
import { TrainingError } from './model.js';
import { SpecError } from './spec.js';

const USER_ERRORS = [CliError, InputError, SpecError, ModelFileError, BackendError, TrainingError];

function version(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')).version as string;
  } catch {
    return 'unknown';
  }
}

function program(): Command {
  const v = version();
  const p = new Command('deltaprop')
    .description('Train multilayer perceptrons by backpropagation, fast (native SIMD, WebAssembly or plain JS backend).')
    .version(v, '-V, --version')
    .configureOutput({ outputError: usageError('deltaprop --help') })
    .addCommand(trainCommand())
    .addCommand(evaluateCommand())
    .addCommand(predictCommand())
    .addCommand(infoCommand(v))
    // the comparative benchmark suite (bench/), the same command as `npm run bench`
    .addCommand(benchCommand().summary('benchmark the backends against TensorFlow.js, brain.js, PyTorch and OpenBLAS (BENCH.md)')
      .addHelpText('after', `
Examples:
  $ deltaprop bench                                   # every workload, backend and peer; results in bench/results
  $ deltaprop bench --quick --peers none              # deltaprop's backends only, short
  $ deltaprop bench --workload sgemm,mnist-mlp --backend native,wasm --json`))
    .addHelpText('after', `
Examples:
  $ deltaprop train builtin:digits --layers 64 --epochs 30 --seed 1
  $ deltaprop train wine.csv --target cultivar --layers 32,16 --save wine.model --plot wine.svg
  $ deltaprop evaluate wine.model wine.csv --target cultivar
  $ deltaprop predict wine.model new.csv --probabilities --out predictions.csv
  $ deltaprop info --json
  $ deltaprop bench --quick --peers none

Run 'deltaprop help COMMAND' for a command's options.`);
  p.exitOverride();
  for (const c of p.commands) c.configureOutput({ outputError: usageError(`deltaprop ${c.name()} --help`) }).exitOverride();
  return p;
}

/**
 * Usage errors as one line like ours: commander's message already starts with "error:"; prefix
 * the program name and point at the help on the same line.
 */
function usageError(help: string): (s: string, write: (s: string) => void) => void {
  return (s, write) => write(`deltaprop: ${s.trim().replace(/\n+/g, ' ')} (see '${help}')\n`);
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (e) {
    // --help, --version and usage errors: commander has printed what it had to say
    if (e instanceof CommanderError) return e.exitCode;
    if (USER_ERRORS.some((E) => e instanceof E)) {
      process.stderr.write(`deltaprop: error: ${(e as Error).message}\n`);
      return 1;
    }
    const err = e as Error;
    process.stderr.write(`deltaprop: error: ${err?.message ?? String(e)}\n`);
    if (process.env.DELTAPROP_DEBUG) process.stderr.write(`${err?.stack ?? ''}\n`);
    return 2;
  }
}

// `deltaprop predict … | head` closes the pipe early: that is the reader's choice, not an error
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

// set exitCode instead of exit(): stdout may still be flushing into a pipe
main(process.argv).then((code) => {
  process.exitCode = code;
});
