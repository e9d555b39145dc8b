// The native interpreter checks each op record from the operand lists generated out of abi.ts OPS
// (native/abi.h OPERANDS), with no per-op code. Every operand of every op, made bad in a raw record
// (past the TypeScript checks), must be refused with the words the TypeScript contract uses for the
// same op (contract.ts checkProgram): the op, the operand, and for a buffer the sizes it must hold.
import { describe, expect, it } from 'vitest';
import { OPS, OP_SLOTS, opSlots, type ArgContract, type OpName } from '../src/backends/abi.js';
import type { Buf } from '../src/backends/backend.js';
import { loadNativeBackend } from '../src/backends/native.js';
import type { Op, Program } from '../src/backends/program.js';

const be = loadNativeBackend({ threads: 1 });
/** Distinct sizes, so that a wrong product in a message shows; a size name not listed gets the next one. */
const SIZES: Record<string, number> = { m: 3, n: 5, inp: 4, out: 2 };
const sizeOf = (name: string): number => (SIZES[name] ??= 6 + Object.keys(SIZES).length);

const isBuffer = (a: ArgContract): boolean => a.kind === 'buffer' || a.kind === 'buffer?';
const floatsOf = (a: ArgContract): number => (a.floats ?? []).reduce((p, s) => p * sizeOf(s), 1);

/** A valid op `name`: every buffer its own allocation of exactly the floats it needs. */
function validOp(name: OpName): Record<string, unknown> {
  const o: Record<string, unknown> = { op: name };
  for (const a of OPS[name].operands as readonly ArgContract[]) {
    switch (a.kind) {
      case 'buffer': case 'buffer?': o[a.name] = be.alloc(floatsOf(a)); break;
      case 'size': o[a.name] = sizeOf(a.name); break;
      case 'decayCount': o[a.name] = 1; break;
      case 'float32': o[a.name] = 0.5; break;
      case 'nonzero': o[a.name] = 1e-3; break;
      case 'rate': o[a.name] = 0.25; break;
      case 'u32': o[a.name] = 7; break;
      case 'bool': o[a.name] = false; break;
      default: o[a.name] = 0; // codes: linear, mse
    }
  }
  return o;
}

/** The op as the raw record the addon reads (abi.ts layout), its buffers by id, offset and length. */
function record(o: Record<string, unknown>): Float64Array {
  const name = o.op as OpName, rec = new Float64Array(OP_SLOTS), slots = opSlots(name);
  rec[0] = OPS[name].code;
  for (const a of OPS[name].operands as readonly ArgContract[]) {
    const v = o[a.name], at = slots[a.name];
    if (!isBuffer(a)) {
      rec[at] = typeof v === 'boolean' ? +v : (v as number);
    } else if (v === null) {
      rec[at] = -1;
    } else {
      const b = v as Buf & { id: number; offset: number };
      rec.set([b.id, b.offset, b.length], at);
    }
  }
  return rec;
}

/** The message each side refuses `o` with ('' when it compiles). */
function refusals(o: Record<string, unknown>): { ts: string; native: string } {
  const text = (f: () => unknown): string => {
    try {
      f();
      return '';
    } catch (e) {
      return (e as Error).message;
    }
  };
  return { ts: text(() => be.compileProgram([o as unknown as Op] as Program)), native: text(() => be.kernels.compileProgram(record(o))) };
}

/** Bad values of each number kind that a raw record can carry (a boolean is 0 or 1 there). */
const BAD: Partial<Record<ArgContract['kind'], number[]>> = {
  size: [-1, 2.5, NaN, 2 ** 31], decayCount: [-1, 0.5, 1e9], float32: [NaN, Infinity, 1e39], nonzero: [0, 1e-46, NaN],
  act: [-1, 6, 0.5], prevAct: [5, -1], loss: [5, -1], rate: [1, -0.5, NaN], u32: [-1, 2 ** 32, 1.5],
};

describe('native compileProgram checks every operand of every op from the generated lists', () => {
  for (const name of Object.keys(OPS) as OpName[]) {
    it(`${name}: a valid record compiles, and each bad operand is refused with the TypeScript contract's words`, () => {
      const good = validOp(name);
      expect(refusals(good)).toEqual({ ts: '', native: '' });
      let checked = 0;
      for (const a of OPS[name].operands as readonly ArgContract[]) {
        if (isBuffer(a)) {
          const need = floatsOf(a);
          if (need === 0) continue;
          const short = { ...good, [a.name]: be.alloc(need - 1) };
          const r = refusals(short);
          expect(r.native, `${name}.${a.name} short`).toBe(
            `compileProgram: op 0: ${name}: ${a.name} has ${need - 1} floats, fewer than ${(a.floats ?? []).join('*')} = ${need}`);
          expect(r.native).toBe(r.ts);
          if (a.kind === 'buffer?') expect(refusals({ ...good, [a.name]: null }), `${name}.${a.name} null`).toEqual({ ts: '', native: '' });
          checked++;
          continue;
        }
        for (const v of BAD[a.kind] ?? []) {
          const r = refusals({ ...good, [a.name]: v });
          expect(r.native, `${name}.${a.name} = ${v}`).toMatch(new RegExp(`^compileProgram: op 0: ${name}: ${a.name} must be `));
          expect(r.native, `${name}.${a.name} = ${v}`).toBe(r.ts);
          checked++;
        }
      }
      expect(checked).toBeGreaterThan(0);
    });
  }

  it('an output over one of its inputs is refused naming both', () => {
    const o = validOp('denseForward');
    const shared = be.alloc(64);
    const r = refusals({ ...o, y: shared.view(0, 6), x: shared.view(4, 12) });
    expect(r.native).toBe('compileProgram: op 0: denseForward: y and x overlap (an output must not share memory with another argument)');
    expect(r.native).toBe(r.ts);
  });
});
