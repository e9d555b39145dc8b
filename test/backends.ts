// The backends the model tests run on: every backend this machine has. A backend that should load
// here and does not is a test failure, not a skip (set DELTAPROP_TEST_BACKENDS=js,wasm to narrow).
import type { Backend, BackendName } from '../src/backends/backend.js';
import { loaders } from '../src/index.js';

const wanted = (process.env.DELTAPROP_TEST_BACKENDS ?? Object.keys(loaders).join(',')).split(',') as BackendName[];

export async function testBackends(): Promise<Backend[]> {
  const out: Backend[] = [];
  for (const name of wanted) {
    const load = loaders[name];
    if (!load) throw new Error(`test backend '${name}' has no loader in this runtime`);
    out.push(await load({ backend: name }));
  }
  return out;
}

/** Top-level-await friendly list for describe.each. */
export const BACKENDS: Backend[] = await testBackends();
