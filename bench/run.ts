// dist/bench.js: `npm run bench` runs it as a program; `deltaprop bench` imports it (only then)
// and calls runBenchCommand, so it runs the command only when it is the program itself.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { main } from './index.js';

export { runBenchCommand } from './index.js';

function isProgram(): boolean {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isProgram()) {
  main().catch((e: unknown) => {
    process.stderr.write(`deltaprop bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 2;
  });
}
