// The cross-language contract has one source (src/backends/abi.ts); native/abi.h and
// assembly/abi.ts are generated from it and committed (node-gyp and asc build without running
// TypeScript first). This fails when either is stale, and checks the layouts the backends write.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACT, ARG_SLOTS, ARG_STRIDE, HYPER, KERNELS, NATIVE_STEP, NATIVE_STEP_LAYER, WASM_STEP, WASM_STEP_HYPER_BYTES,
  WASM_STEP_LAYER, argSlots } from '../src/backends/abi.js';
import { BANNER, GENERATED, renderAll } from '../src/backends/abi-gen.js';

const root = join(import.meta.dirname, '..');

describe('the generated contract files', () => {
  for (const [path, text] of Object.entries(renderAll())) {
    it(`${path} is what \`npm run gen\` writes from src/backends/abi.ts`, () => {
      const onDisk = readFileSync(join(root, path), 'utf8');
      expect(onDisk.startsWith(`// ${BANNER}`)).toBe(true);
      // a stale file: run `npm run gen` and commit the result
      expect(onDisk).toBe(text);
    });
  }

  it('covers both languages', () => {
    expect(Object.keys(renderAll()).sort()).toEqual([GENERATED.assembly, GENERATED.native].sort());
  });

  it('writes every code and layout field into both files', () => {
    const files = renderAll();
    const h = files[GENERATED.native], as = files[GENERATED.assembly];
    expect(h).toContain('ACT_LEAKY_RELU = 4');
    expect(as).toContain('export const ACT_LEAKY_RELU: i32 = 4;');
    expect(h).toContain(`constexpr int STEP_SIZE = ${NATIVE_STEP.size};`);
    expect(h).toContain(`constexpr int STEP_LAYER_DELTA = ${NATIVE_STEP_LAYER.at.delta};`);
    expect(as).toContain(`export const D_HEADER: usize = ${WASM_STEP.size * 4};`);
    expect(as).toContain(`export const LAYER_BYTES: usize = ${WASM_STEP_LAYER.size * 4};`);
    expect(as).toContain(`export const H_LOSS: usize = ${HYPER.at.loss * 8};`);
    expect(h).toContain('struct adamStep { enum : int { p = 0,');
  });
});

describe('the layouts', () => {
  it('count their offsets from the field widths', () => {
    // the descriptor the native addon reads: 6 numbers and 7 buffers, the loss's delta and the
    // row weights' buffer, then 12 per layer
    expect(NATIVE_STEP.size).toBe(6 + 7 * 3 + 1 + 3);
    expect(NATIVE_STEP_LAYER.size).toBe(6 + 2 * 3);
    expect(NATIVE_STEP.at.state2).toBe(24);
    expect(HYPER.at.loss).toBe(10);
    expect(WASM_STEP.used).toBeLessThanOrEqual(WASM_STEP.size);
    expect(HYPER.size * 8).toBeLessThanOrEqual(WASM_STEP_HYPER_BYTES);
  });

  it('give each kernel argument its own slots inside the argument block', () => {
    for (const fn of Object.keys(KERNELS) as (keyof typeof KERNELS)[]) {
      const slots = Object.values(argSlots(fn)) as number[];
      expect(slots).toEqual(KERNELS[fn].map((_, p) => ARG_STRIDE * p));
      expect(Math.max(...slots) + ARG_STRIDE).toBeLessThanOrEqual(ARG_SLOTS);
    }
    expect(argSlots('gemm').k).toBe(12);
  });

  it('keep the activation codes the model files store', () => {
    expect(ACT).toEqual({ linear: 0, sigmoid: 1, tanh: 2, relu: 3, leakyRelu: 4, softmax: 5 });
  });
});
