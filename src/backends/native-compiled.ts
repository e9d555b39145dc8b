// The native backend's compiled programs: a training step (hyper-parameters through the argument
// block, then one native call) and a program without hyper-parameters.
import { type CompiledProgram, type CompiledStep, type StepHyper } from './backend.js';
import { HYPER } from './abi.js';
import { checkHyper, hyperTypesOk } from './contract.js';
import type { Program } from './program.js';
import type { NativeProgram } from './native-addon.js';

const H = HYPER.at;

/** A compiled training program: hyperparameters go through the argument block, then one native call. */
export class NativeCompiledStep implements CompiledStep {
  readonly loss = new Float64Array(1);

  private readonly native: () => void;

  /** `program` keeps the step's buffers reachable, and so allocated, as long as the step. */
  constructor(private readonly A: Float64Array, private readonly compiled: NativeProgram, readonly program: Program,
    private readonly optimizer: number) {
    this.native = compiled.run;
  }

  /** The last hyper-parameter object whose fields were all of the right type. */
  private typed: StepHyper | null = null;

  private checkTypes(h: StepHyper): void {
    if (!hyperTypesOk(h)) checkHyper(h, this.optimizer);
    this.typed = h;
  }

  run(h: StepHyper): void {
    // the contract (contract.ts): the types here, when the object is new (a Float64Array would take
    // '0.1' as 0.1 and null as 0), the values in C++ on every run, with the same words. More
    // checking here would cost the batch loop an inlining, and a boxed number a step.
    if (h !== this.typed) this.checkTypes(h);
    const A = this.A;
    A[H.lr] = h.lr; A[H.clipNorm] = h.clipNorm; A[H.weightDecay] = h.weightDecay; A[H.mu] = h.mu;
    A[H.nesterov] = +h.nesterov; A[H.beta1] = h.beta1; A[H.beta2] = h.beta2; A[H.eps] = h.eps;
    A[H.bc1] = h.bc1; A[H.bc2] = h.bc2; A[H.step] = h.step ?? 0;
    this.native();
    // A is the backend's, shared by its steps
    this.loss[0] = A[H.loss];
  }

  async runAsync(h: StepHyper): Promise<number> {
    if (h !== this.typed) this.checkTypes(h);
    const A = this.A;
    A[H.lr] = h.lr; A[H.clipNorm] = h.clipNorm; A[H.weightDecay] = h.weightDecay; A[H.mu] = h.mu;
    A[H.nesterov] = +h.nesterov; A[H.beta1] = h.beta1; A[H.beta2] = h.beta2; A[H.eps] = h.eps;
    A[H.bc1] = h.bc1; A[H.bc2] = h.bc2;
    // the addon copies the block before it returns: A is free for other calls while the run is away
    const loss = await this.compiled.runAsync();
    this.loss[0] = loss;
    return loss;
  }

  /** The steps' argument blocks (HYPER.size doubles each), grown to the most steps asked for. */
  private blocks = new Float64Array(0);

  async runStepsAsync(h: StepHyper, bc: Float64Array, steps: number, opsPerStep: number, losses: Float64Array): Promise<number> {
    if (h !== this.typed) this.checkTypes(h);
    const S = HYPER.size;
    if (this.blocks.length < steps * S) this.blocks = new Float64Array(steps * S);
    const B = this.blocks, step = h.step ?? 0;
    for (let s = 0; s < steps; s++) {
      const o = s * S;
      B[o + H.lr] = h.lr; B[o + H.clipNorm] = h.clipNorm; B[o + H.weightDecay] = h.weightDecay; B[o + H.mu] = h.mu;
      B[o + H.nesterov] = +h.nesterov; B[o + H.beta1] = h.beta1; B[o + H.beta2] = h.beta2; B[o + H.eps] = h.eps;
      B[o + H.bc1] = bc[2 * s]; B[o + H.bc2] = bc[2 * s + 1]; B[o + H.step] = step + s;
    }
    // the addon copies the blocks at the call and writes the losses back when it settles
    const ran = await this.compiled.runStepsAsync(B, steps, opsPerStep);
    for (let s = 0; s < ran; s++) losses[s] = B[s * S + H.loss];
    this.loss[0] = B[(ran - 1) * S + H.loss];
    return ran;
  }

  wait(): void {
    this.compiled.wait();
  }

  stop(): void {
    this.compiled.stop();
  }
}

/** A compiled program that reads no hyper-parameters (a forward pass, the gradients): one native call. */
export class NativeCompiledForward implements CompiledProgram {
  readonly loss = new Float64Array(1);

  /** `program` keeps its buffers reachable, and so allocated, as long as it. */
  constructor(private readonly A: Float64Array, private readonly native: () => void, readonly program: Program,
    private readonly hasLoss: boolean) {}

  run(_h: StepHyper | null = null): void {
    this.native();
    // without a lossDelta op (a forward pass), `loss` is left as it was
    if (this.hasLoss) this.loss[0] = this.A[H.loss];
  }
}
