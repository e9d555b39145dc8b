// The cross-language contract has one source (src/backends/abi.ts); native/abi.h and
// assembly/abi.ts are generated from it and committed (node-gyp and asc build without running
// TypeScript first). This fails when either is stale, and checks the layouts the backends write.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ACT, ARG_SLOTS, ARG_STRIDE, BUF_SLOTS, HYPER, KERNELS, OPS, OP_MAX, OP_SLOTS, PROGRAM_HYPER_BYTES, argSlots, opSlots,
  type OpName } from '../src/backends/abi.js';
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
    expect(as).toContain(`export const H_LOSS: usize = ${HYPER.at.loss * 8};`);
    expect(h).toContain('struct adamStep { enum : int { p = 0,');
    expect(h).toContain(`constexpr int OP_SLOTS = ${OP_SLOTS};`);
    expect(as).toContain(`export const OP_BYTES: usize = ${OP_SLOTS * 8};`);
    expect(as).toContain(`export const OP_WORDS_BYTES: usize = ${OP_SLOTS * 4};`);
    expect(h).toContain('struct denseForward { enum : int { y = 1, x = 4,');
    // every op: its code and each operand's slot, in both languages
    for (const name of Object.keys(OPS) as OpName[]) {
      const up = name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
      expect(h).toContain(`OP_${up} = ${OPS[name].code}`);
      expect(as).toContain(`export const OP_${up}: i32 = ${OPS[name].code};`);
      for (const [operand, at] of Object.entries(opSlots(name))) {
        expect(h).toContain(`${operand} = ${at}`);
        expect(as).toContain(`export const ${up}_${operand.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()}: usize = ${at * 4};`);
      }
    }
  });
});

describe('the layouts', () => {
  it('count their offsets from the field widths', () => {
    expect(HYPER.at.loss).toBe(10);
    expect(HYPER.size * 8).toBeLessThanOrEqual(PROGRAM_HYPER_BYTES);
  });

  it('give every op one fixed-width record: its code in slot 0, its operands in order, none past OP_SLOTS', () => {
    const codes = Object.values(OPS).map((o) => o.code);
    expect(codes).toEqual(codes.map((_, i) => i + 1)); // 0 is no op: a zeroed record is refused
    expect(OP_MAX).toBe(codes.length);
    let widest = 0;
    for (const name of Object.keys(OPS) as OpName[]) {
      let at = 1;
      for (const a of OPS[name].operands) {
        expect(opSlots(name)[a.name], `${name}.${a.name}`).toBe(at);
        at += a.kind === 'buffer' || a.kind === 'buffer?' ? BUF_SLOTS : 1;
      }
      expect(at).toBeLessThanOrEqual(OP_SLOTS);
      widest = Math.max(widest, at);
      // every op names a kernel, and every buffer's floats are sizes among its own operands
      expect(OPS[name].kernel.length).toBeGreaterThan(0);
      for (const a of OPS[name].operands) {
        for (const f of a.floats ?? []) expect(OPS[name].operands.some((b) => b.name === f && b.kind === 'size'), `${name}.${a.name}: ${f}`).toBe(true);
      }
    }
    expect(OP_SLOTS).toBe(widest);
    // the ops that are one kernel call take that kernel's own contract
    expect(OPS.denseForward.operands).toBe(KERNELS.denseForward);
    expect(OPS.denseBackward.operands).toBe(KERNELS.denseBackward);
    expect(OPS.lossDelta.operands).toBe(KERNELS.lossDelta);
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
