// A Cloudflare Worker (bundled by test/runtimes/runtimes.test.ts the way wrangler does: the
// package by its name under the `workerd` condition, .wasm imports kept as compiled modules, the
// CSV inlined as text). workerd refuses to compile WebAssembly from bytes, so this proves the
// backend runs from imported modules.
import * as lib from 'deltaprop';
import irisCsv from '../../data/iris.csv';
import { runScenario } from './scenario.mjs';

export default {
  async fetch() {
    try {
      const backend = await lib.loadBackend({ backend: 'wasm' });
      const result = await runScenario(lib, backend, irisCsv);
      result.runtime = 'workerd';
      result.threads = backend.threads;
      result.threadsReason = backend.threadsReason;
      // what a compile from bytes does here (it must be refused, which is why modules are imported)
      try {
        await WebAssembly.compile(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
        result.compileFromBytes = 'allowed';
      } catch (e) {
        result.compileFromBytes = `refused: ${e.message}`;
      }
      return Response.json(result);
    } catch (e) {
      return new Response(String(e && e.stack || e), { status: 500 });
    }
  },
};
