// The `deltaprop` command: train, evaluate, predict, info, bench. Built by tsup as dist/cli.js.
// Every error a user can cause ends as one line on stderr (`deltaprop: error: …`) and exit code 1;
// only an unexpected failure shows its stack, and only with DELTAPROP_DEBUG=1.
import { CommanderError, Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
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

/**
 * `deltaprop bench …`: the comparative benchmark suite is its own bundle (dist/bench.js, built from
 * bench/), loaded from beside this file only when this command runs, so that the CLI does not
 * carry it. Its options and help are its own: everything after `bench` is handed to it.
 */
function benchCommand(): Command {
  return new Command('bench')
    .summary('benchmark the backends against TensorFlow.js, brain.js, PyTorch, OpenBLAS and oneDNN (deltaprop bench --help)')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]', "the benchmark's options: 'deltaprop bench --help' lists them")
    .addHelpText('after', "\nRun 'deltaprop bench --help' for the benchmark's options and examples.")
    .action(async (args: string[]) => {
      const file = fileURLToPath(new URL('./bench.js', import.meta.url));
      if (!existsSync(file)) {
        throw new CliError(`the benchmark suite is not part of this build (${file} is missing); in a clone of the repository, build it with 'npm run build:ts' or run 'npm run bench'`);
      }
      // a variable specifier: the bundler must leave this import to run time
      const suite = (await import(pathToFileURL(file).href)) as { runBenchCommand(args: string[], name: string): Promise<number> };
      const code = await suite.runBenchCommand(args, 'deltaprop bench');
      if (code !== 0) throw new CommanderError(code, 'deltaprop.bench', '');
    });
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
    .addCommand(benchCommand())
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
