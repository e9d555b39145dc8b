// Run by Deno (test/runtimes/runtimes.test.ts) with read permission only: the web entry (the one
// the `deno` export condition names), the wasm backend by request, the shared scenario, JSON out.
import * as lib from '../../dist/web.js';
import { runScenario } from './scenario.mjs';

const backend = await lib.loadBackend({ backend: 'wasm' });
const result = await runScenario(lib, backend, await Deno.readTextFile(new URL('../../data/iris.csv', import.meta.url)));
result.runtime = `deno ${Deno.version.deno}`;
result.entry = new URL('../../dist/web.js', import.meta.url).href;
console.log(JSON.stringify(result));
