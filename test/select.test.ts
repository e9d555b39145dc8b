// Backend selection: explicit choice (option or DELTAPROP_BACKEND) wins and fails loudly; auto
// picks the fastest that loads and keeps the reason of every failed attempt.
import { afterEach, describe, expect, it } from 'vitest';
import type { Backend } from '../src/backends/backend.js';
import { JsBackend } from '../src/backends/js.js';
import { probeBackends, selectBackend, type BackendLoader } from '../src/backends/select.js';
import { backendInfo, loadBackend } from '../src/index.js';

const failing = (why: string): BackendLoader => () => { throw new Error(why); };
const js: BackendLoader = () => new JsBackend();

describe('selectBackend', () => {
  afterEach(() => {
    delete process.env.DELTAPROP_BACKEND;
    delete process.env.DELTAPROP_THREADS;
  });

  it('auto takes the first that loads and says why the faster ones did not', async () => {
    const { backend, report } = await selectBackend({ native: failing('no prebuild for linux-x64 and no compiler'), wasm: failing('no SIMD'), js });
    expect(backend.name).toBe('js');
    expect(report.backends.native).toEqual({ ok: false, reason: 'no prebuild for linux-x64 and no compiler' });
    expect(report.backends.wasm).toEqual({ ok: false, reason: 'no SIMD' });
    expect(report.why).toMatch(/fastest that loaded \(native: no prebuild.*; wasm: no SIMD\)/);
  });

  it('an explicit backend that cannot load fails loudly with its reason', async () => {
    await expect(selectBackend({ native: failing('addon missing'), js }, { backend: 'native' }))
      .rejects.toThrow(/the native backend was requested but cannot load: addon missing/);
  });

  it('DELTAPROP_BACKEND wins over auto, and is named in the error', async () => {
    process.env.DELTAPROP_BACKEND = 'wasm';
    await expect(selectBackend({ wasm: failing('bad module'), js })).rejects.toThrow(/requested by DELTAPROP_BACKEND but cannot load: bad module/);
    process.env.DELTAPROP_BACKEND = 'js';
    const { backend, report } = await selectBackend({ native: () => { throw new Error('must not be tried'); }, js });
    expect(backend.name).toBe('js');
    expect(report.why).toBe('requested by DELTAPROP_BACKEND');
    process.env.DELTAPROP_BACKEND = 'gpu';
    await expect(selectBackend({ js })).rejects.toThrow(/unknown backend 'gpu'/);
  });

  it('a bad thread count is an error', async () => {
    process.env.DELTAPROP_THREADS = 'many';
    await expect(selectBackend({ js })).rejects.toThrow(/threads: must be a positive integer, got many/);
  });

  it('no backend at all lists every reason', async () => {
    await expect(selectBackend({ native: failing('a'), wasm: failing('b') })).rejects.toThrow(/no backend could be loaded \(native: a; wasm: b; js: the js backend is not available/);
  });

  it('probeBackends reports every backend, loaded or not', async () => {
    const report = await probeBackends({ native: failing('x'), wasm: () => ({ ...new JsBackend(), name: 'wasm', isa: 'wasm-simd128', threads: 1 }) as unknown as Backend, js });
    expect(report.backend).toBe('wasm');
    expect(report.backends).toEqual({ native: { ok: false, reason: 'x' }, wasm: { ok: true, isa: 'wasm-simd128', threads: 1 }, js: { ok: true, isa: 'js', threads: 1 } });
  });
});

describe('on this machine', () => {
  it('auto picks native, with wasm and js also available', async () => {
    const info = await backendInfo();
    expect(info.backend).toBe('native');
    expect(info.isa).toMatch(/avx512|avx2-fma|scalar|neon/);
    expect(info.backends.wasm.ok).toBe(true);
    expect(info.backends.js.ok).toBe(true);
    expect((await loadBackend({ backend: 'wasm' })).name).toBe('wasm');
    expect((await loadBackend({ backend: 'native', threads: 1 })).threads).toBe(1);
  });
});
