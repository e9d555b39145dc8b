// `npm run bench`: the benchmark suite from the command line (built to dist/bench.js).
import { main } from './index.js';

main().catch((e: unknown) => {
  process.stderr.write(`deltaprop bench: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 2;
});
