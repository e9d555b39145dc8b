/// <reference lib="dom" />
import { watchChannel, watchWorker, type WatchdogThreads } from './watchdog.js';
// The wasm backend's threads: workers that each instantiate the threads build of the module on the
// same shared WebAssembly.Memory and block in its workerLoop (assembly/threads.ts), woken through
// a futex word when the main thread's kernel publishes a task. Nothing crosses between threads per
// op: the main thread's call into the module drives them. Node runs them on worker_threads, Bun
// and browsers on their Worker (browsers only when the page is cross-origin isolated), Deno on its
// node:worker_threads (its Worker would keep the process alive: it has no unref).
//
// No Node-only import at the top level (this file loads in browsers, Deno, Bun and workerd): the
// worker scripts are strings, started from a blob: URL or with worker_threads' eval.

/** Byte offsets of the control words pool.ts touches (assembly/threads.ts lays them out). */
const CONTROL = { pending: 4, failed: 16, started: 56, wanted: 60, message: 192, messageBytes: 64 } as const;

// What a worker runs. `seen` is the generation the pool was at when the worker started (0: no task
// is published before every worker has said it is ready). On an error inside the loop the worker
// writes its message and thread id into the control block and leaves the task, so that the main
// thread, waiting inside the module, returns and the backend can say what happened.
const WORKER_BODY = `
function failed(memory, control, tid, err) {
  try {
    const msg = new TextEncoder().encode(String((err && err.message) || err).slice(0, 60));
    const bytes = new Uint8Array(memory.buffer, control + ${CONTROL.message}, ${CONTROL.messageBytes});
    for (let i = 0; i < bytes.length; i++) bytes[i] = i < msg.length ? msg[i] : 0;
    const words = new Int32Array(memory.buffer, control, 16);
    Atomics.store(words, ${CONTROL.failed / 4}, tid + 1);
    Atomics.sub(words, ${CONTROL.pending / 4}, 1);
    Atomics.notify(words, ${CONTROL.pending / 4});
  } catch {}
}
async function start(data, post) {
  const { module, bytes, memory, tid, control } = data;
  let exports;
  try {
    const mod = module || await WebAssembly.compile(bytes);
    exports = (await WebAssembly.instantiate(mod, { env: { memory } })).exports;
    exports.workerStart(tid);
  } catch (err) {
    post({ error: String((err && err.message) || err) });
    return;
  }
  post({ ready: true });
  try {
    exports.workerLoop(tid, 0);
  } catch (err) {
    failed(memory, control, tid, err);
    post({ error: String((err && err.message) || err) });
  }
}
`;

const WEB_WORKER = `${WORKER_BODY}
self.onmessage = (e) => { self.onmessage = null; start(e.data, (m) => self.postMessage(m)); };
`;

// import(), not require: Node evaluates the string as CommonJS or as a module depending on its
// version and on the main program (require is not defined in module scope). The specifier is
// computed: this string is in the browser and workerd bundles too, which import no Node module.
const NODE_WORKER = `${WORKER_BODY}
const threadsModule = ['node', 'worker_threads'].join(':');
import(threadsModule).then(({ parentPort, workerData }) => {
  globalThis.deltapropWatch = workerData.watch; // the watchdog's channel (watchdog.ts): open while this thread lives
  start(workerData, (m) => parentPort.postMessage(m));
});
`;

interface NodeWorker {
  postMessage(m: unknown, transfer: unknown[]): void;
  on(event: 'message', fn: (m: WorkerReply) => void): void;
  on(event: 'error', fn: (e: Error) => void): void;
  on(event: 'exit', fn: (code: number) => void): void;
  unref(): void;
  terminate(): Promise<number>;
}
type NodeWorkerCtor = new (code: string, opts: { eval: true; workerData?: unknown; transferList?: unknown[] }) => NodeWorker;
interface NodeOs {
  availableParallelism?(): number;
  cpus(): unknown[];
}

interface WorkerReply {
  ready?: boolean;
  error?: string;
}

// worker_threads and os of Node, registered by the Node entries (they import them statically: every
// Node >= 20.0, where process.getBuiltinModule arrives in 20.16).
type NodeThreads = { Worker: NodeWorkerCtor; MessageChannel?: WatchdogThreads['MessageChannel']; os: NodeOs };
let registered: NodeThreads | null = null;

/** Gives the pool Node's worker_threads and os (called once by the Node entries). */
export function registerNodeThreads(workerThreads: { Worker: unknown; MessageChannel?: unknown }, os: NodeOs): void {
  registered = { Worker: workerThreads.Worker as NodeWorkerCtor, MessageChannel: workerThreads.MessageChannel as NodeThreads['MessageChannel'], os };
}

type Proc = { versions?: { node?: string; bun?: string }; getBuiltinModule?: (id: string) => unknown };
const proc = (): Proc | undefined => (globalThis as { process?: Proc }).process;

function nodeModules(): NodeThreads | null {
  if (registered) return registered;
  const p = proc();
  if (!p?.getBuiltinModule) return null;
  const wt = p.getBuiltinModule('node:worker_threads') as { Worker?: NodeWorkerCtor; MessageChannel?: NodeThreads['MessageChannel'] } | undefined;
  const os = p.getBuiltinModule('node:os') as NodeOs | undefined;
  return wt?.Worker && os ? { Worker: wt.Worker, MessageChannel: wt.MessageChannel, os } : null;
}

/** A web Worker where the runtime has one (browsers, Bun; Deno's has no unref: see above); Node has none. */
function webWorkerCtor(): (typeof Worker) | null {
  const W = (globalThis as { Worker?: typeof Worker }).Worker;
  if ((globalThis as { Deno?: unknown }).Deno !== undefined && nodeModules()) return null;
  return typeof W === 'function' ? W : null;
}

/** Hardware threads: navigator.hardwareConcurrency, else Node's os.availableParallelism. */
export function hardwareThreads(): number {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (nav && Number.isInteger(nav.hardwareConcurrency) && nav.hardwareConcurrency! >= 1) return nav.hardwareConcurrency!;
  const os = nodeModules()?.os;
  if (os) return os.availableParallelism?.() ?? Math.max(1, os.cpus().length);
  return 1;
}

/**
 * Why this runtime cannot run the module on several threads, or null when it can: shared memory
 * (SharedArrayBuffer, which browsers give only to cross-origin isolated pages), and a way to start
 * workers.
 */
export function threadsUnavailableReason(): string | null {
  const g = globalThis as { crossOriginIsolated?: boolean; SharedArrayBuffer?: unknown; document?: unknown };
  const isolation = 'serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp';
  if (g.crossOriginIsolated === false) return `SharedArrayBuffer unavailable: the page is not cross-origin isolated (${isolation})`;
  if (typeof g.SharedArrayBuffer !== 'function') return 'SharedArrayBuffer unavailable in this runtime';
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch (e) {
    return `shared WebAssembly memory unavailable: ${(e as Error).message}`;
  }
  if (!webWorkerCtor() && !nodeModules()) {
    return proc()?.versions?.node
      ? 'worker_threads unavailable (import the Node entry, or use Node >= 20.16)'
      : 'no Worker API in this runtime';
  }
  return null;
}

/** Whether this thread may block in Atomics.wait (not a browser's main thread). */
export function mayBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // not-equal: returns at once where allowed
    return true;
  } catch {
    return false;
  }
}

/** One started worker, whichever API runs it. */
interface PoolWorker {
  terminate(): void;
  unref(): void;
}

export class WasmPoolError extends Error {
  override name = 'WasmPoolError';
}

/**
 * The workers of one backend (threads − 1 of them: the main thread is thread 0), started lazily:
 * a backend is created with none, and its kernels run on the calling thread (a split task is then
 * the caller's alone, with the same bits: assembly/threads.ts publishTask) until the first task
 * that would be split asks for them (the WANTED word, seen by check() after the call) or start()
 * is called. The workers join between two calls, once every one of them is in its loop, so a tiny
 * model, whose kernels never split, never starts a worker, and a program that creates backend
 * after backend pays for workers only in those that need them.
 *
 * `broken` is set when a running worker stops (an error, an exit): every later call into the
 * module is refused with it. A worker that cannot start leaves the backend on one thread
 * (`startFailed` says why).
 */
export class WasmPool {
  broken: string | null = null;
  /** Why the workers did not start (the kernels stay on the calling thread), or null. */
  startFailed: string | null = null;
  /** Called once when the workers cannot start (the backend goes back to one thread). */
  onStartFailed: (why: string) => void = () => {};
  private disposed = false;
  private running = false;
  private starting: Promise<void> | null = null;
  private workers: PoolWorker[] = [];
  /** Handed to the watchdog once the pool runs (Node: watchdog.ts). */
  private watches: (() => void)[] = [];
  private cached: Int32Array | null = null;

  /** A pool of `threads` (main included) on `memory`, whose control block poolInit has set up; no worker yet. */
  constructor(readonly size: number, private readonly module: WebAssembly.Module, private readonly bytes: Uint8Array | null,
    private readonly memory: WebAssembly.Memory, private readonly control: number) {}

  // One view for good: a shared memory's buffer is never detached when the memory grows, and the
  // control block lies in its first pages. (Reading memory.buffer costs ~35 ns, and check() runs
  // twice a call: a tenth of a tiny-xor step.)
  private words(): Int32Array {
    this.cached ??= new Int32Array(this.memory.buffer, this.control, 64);
    return this.cached;
  }

  /** Whether the workers run (take part in the tasks). */
  get started(): boolean {
    return this.running;
  }

  /**
   * Starts the workers (once): resolves when they take part in the tasks, or when they could not
   * start (`startFailed` then says why; never rejects).
   */
  start(): Promise<void> {
    this.starting ??= this.launch().then(() => {
      if (this.disposed) return;
      for (const w of this.workers) w.unref(); // the pool must not keep a process alive
      for (const watch of this.watches) watch();
      this.watches = [];
      Atomics.store(this.words(), CONTROL.started / 4, 1);
      this.running = true;
    }, (e: unknown) => {
      for (const w of this.workers) w.terminate();
      this.workers = [];
      this.watches = [];
      if (this.disposed) return;
      this.startFailed = (e as Error).message;
      this.onStartFailed(this.startFailed);
    });
    return this.starting;
  }

  // Starts `size − 1` workers and resolves when every one is in its loop; rejects when one cannot
  // start or stops before the pool runs. The workers stay referenced until then: a start awaited
  // with nothing else pending must keep the process up.
  private async launch(): Promise<void> {
    let lost: string | null = null;
    const fail = (tid: number, why: string): void => {
      if (!this.running) lost ??= `wasm backend: worker thread ${tid} stopped before the pool ran: ${why}`;
      else if (!this.broken && !this.disposed) this.broken = `wasm backend: worker thread ${tid} stopped: ${why}`;
    };
    const { module, bytes, memory, control } = this;
    const starts: Promise<void>[] = [];
    const Web = webWorkerCtor();
    const node = Web ? null : nodeModules();
    let url: string | null = null;
    if (Web) url = URL.createObjectURL(new Blob([WEB_WORKER], { type: 'text/javascript' }));
    try {
      for (let tid = 1; tid < this.size && !this.disposed; tid++) {
        const data = { module, bytes: null as Uint8Array | null, memory, tid, control };
        starts.push(new Promise<void>((resolve, reject) => {
          let ready = false;
          const onReply = (m: WorkerReply): void => {
            if (m.ready) {
              ready = true;
              resolve();
            } else if (m.error !== undefined) {
              if (ready) fail(tid, m.error);
              else reject(new WasmPoolError(`wasm backend: worker thread ${tid} did not start: ${m.error}`));
            }
          };
          const onError = (why: string): void => {
            if (ready) fail(tid, why);
            else reject(new WasmPoolError(`wasm backend: worker thread ${tid} did not start: ${why}`));
          };
          if (Web) {
            const w = new Web(url!, { type: 'module', name: `deltaprop-wasm-${tid}` });
            w.onmessage = (e: MessageEvent<WorkerReply>) => onReply(e.data);
            w.onerror = (e: ErrorEvent) => {
              e.preventDefault?.();
              onError(e.message || 'the worker script failed');
            };
            // Bun's Worker has unref (browsers need none)
            this.workers.push({ terminate: () => w.terminate(), unref: () => (w as { unref?: () => void }).unref?.() });
            try {
              w.postMessage(data);
            } catch {
              // an engine that cannot pass a compiled module to a worker compiles the bytes there
              if (!bytes) throw new WasmPoolError('wasm backend: this runtime cannot pass a compiled WebAssembly.Module to a worker, and no bytes of the build are at hand');
              w.postMessage({ ...data, module: null, bytes });
            }
          } else {
            const channel = watchChannel(node!);
            const w = channel
              ? new node!.Worker(NODE_WORKER, { eval: true, workerData: { ...data, watch: channel.port2 }, transferList: [channel.port2] })
              : new node!.Worker(NODE_WORKER, { eval: true, workerData: data });
            if (channel) this.watches.push(() => watchWorker(node!, channel, memory, control, tid));
            w.on('message', onReply);
            w.on('error', (e) => onError(e.message));
            w.on('exit', (code) => onError(`exited with code ${code}`));
            this.workers.push({ terminate: () => void w.terminate(), unref: () => w.unref() });
          }
        }));
      }
      await Promise.all(starts);
      if (lost) throw new WasmPoolError(lost);
    } finally {
      if (url) URL.revokeObjectURL(url);
    }
  }

  /**
   * Throws why the pool is unusable: a worker stopped now or earlier. Starts the workers when a
   * task asked for them (called before and after every call into the module).
   */
  check(): void {
    if (this.disposed) throw new WasmPoolError('wasm backend: the backend was disposed');
    if (this.broken) throw new WasmPoolError(this.broken);
    const w = this.words();
    if (this.starting === null && Atomics.load(w, CONTROL.wanted / 4) !== 0) void this.start();
    const tid = Atomics.load(w, CONTROL.failed / 4);
    if (tid !== 0) {
      const bytes = new Uint8Array(w.buffer, this.control + CONTROL.message, CONTROL.messageBytes).slice();
      const end = bytes.indexOf(0);
      const msg = new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
      this.broken = `wasm backend: worker thread ${tid - 1} stopped: ${msg}`;
      throw new WasmPoolError(this.broken);
    }
  }

  /** Stops the workers (after asking them to leave their loop: quit is the module's poolQuit). */
  dispose(quit: () => void): void {
    if (this.disposed) return;
    this.disposed = true;
    try {
      quit();
    } finally {
      for (const w of this.workers) w.terminate();
    }
  }
}
