// Run by Bun (test/runtimes/runtimes.test.ts): the package by its name (the `bun` condition), the
// wasm backend on 1, 2 and 3 threads (test/runtimes/threads.mjs), JSON out.
import * as lib from 'deltaprop';
import { runThreads } from './threads.mjs';

const result = await runThreads(lib);
result.runtime = `bun ${Bun.version}`;
console.log(JSON.stringify(result));
