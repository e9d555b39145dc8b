// Run by Deno (test/runtimes/runtimes.test.ts) with read permission only: the web entry, the wasm
// backend on 1, 2 and 3 threads (test/runtimes/threads.mjs), JSON out.
import * as lib from '../../dist/web.js';
import { runThreads } from './threads.mjs';

const result = await runThreads(lib);
result.runtime = `deno ${Deno.version.deno}`;
console.log(JSON.stringify(result));
