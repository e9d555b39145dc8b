// Run by Bun (test/runtimes/runtimes.test.ts): the package by its name, so Bun's `bun` export
// condition picks the entry; the wasm backend by request; the shared scenario; JSON on stdout.
import { readFileSync } from 'node:fs';
import * as lib from 'deltaprop';
import { runScenario } from './scenario.mjs';

const backend = await lib.loadBackend({ backend: 'wasm' });
const result = await runScenario(lib, backend, readFileSync(new URL('../../data/iris.csv', import.meta.url), 'utf8'));
result.runtime = `bun ${Bun.version}`;
result.entry = import.meta.resolve('deltaprop');
console.log(JSON.stringify(result));
