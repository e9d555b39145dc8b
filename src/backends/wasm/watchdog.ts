// A worker of the pool that dies while the main thread waits inside a kernel for it to leave its
// task (terminated, out of memory) must fail the call, not leave it waiting: the worker's 'exit'
// event is delivered to the main thread's event loop, which cannot run while it waits. So on Node
// one more thread, the watchdog, holds one end of a MessageChannel per running worker, whose other
// end lives in the worker: the channel closes when the worker's thread ends, and the watchdog then
// writes the failure into the control block and changes the word the main thread waits on, which
// wakes it (assembly/threads.ts joinTask returns on a failure; pool.ts check() throws it).
// The watchdog is started with the first pool that runs, is shared by every pool of the process,
// keeps nothing alive (unref'd; it lets a memory go when the worker's channel closes), and is only
// used on Node (Deno and Bun run the pool without it: the 'exit' event still fails the next call).

/** Byte offsets in the control block (assembly/threads.ts; CONTROL in pool.ts). */
const PENDING = 4, FAILED = 16, MESSAGE = 192, MESSAGE_BYTES = 64;

const WATCHDOG = `
const threadsModule = ['node', 'worker_threads'].join(':');
import(threadsModule).then(({ parentPort }) => {
  parentPort.on('message', ({ port, memory, control, tid }) => {
    port.on('close', () => {
      const words = new Int32Array(memory, control, 64);
      if (Atomics.compareExchange(words, ${FAILED / 4}, 0, tid + 1) === 0) {
        const msg = new TextEncoder().encode('exited while the pool ran');
        new Uint8Array(memory, control + ${MESSAGE}, ${MESSAGE_BYTES}).set(msg.subarray(0, ${MESSAGE_BYTES - 1}));
      }
      // a change of the word it waits on wakes the main thread for good (the pool is broken)
      Atomics.add(words, ${PENDING / 4}, 1 << 30);
      Atomics.notify(words, ${PENDING / 4});
    });
  });
});
`;

interface NodePort {
  postMessage(m: unknown, transfer?: unknown[]): void;
  close(): void;
}
interface NodeChannel {
  port1: NodePort;
  port2: NodePort;
}
interface WatchdogWorker {
  postMessage(m: unknown, transfer: unknown[]): void;
  unref(): void;
}
/** What the watchdog needs of node:worker_threads. */
export interface WatchdogThreads {
  Worker: new (code: string, opts: { eval: true }) => WatchdogWorker;
  MessageChannel?: new () => NodeChannel;
}

let watchdog: WatchdogWorker | null = null;

/** Whether this runtime gets a watchdog: Node itself (not Deno's or Bun's node:worker_threads). */
function isNode(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string; bun?: string } }; Deno?: unknown };
  return typeof g.process?.versions?.node === 'string' && g.process.versions.bun === undefined && g.Deno === undefined;
}

/** A channel for one worker (its `port2` goes in the worker's data, transferred), or null without a watchdog. */
export function watchChannel(threads: WatchdogThreads): NodeChannel | null {
  return isNode() && threads.MessageChannel ? new threads.MessageChannel() : null;
}

/**
 * Hands `channel.port1` to the watchdog (started on first use) once worker `tid` runs in the
 * pool: from then on, the end of its thread fails the pool's tasks at once.
 */
export function watchWorker(threads: WatchdogThreads, channel: NodeChannel, memory: WebAssembly.Memory, control: number,
  tid: number): void {
  if (!watchdog) {
    watchdog = new threads.Worker(WATCHDOG, { eval: true });
    watchdog.unref();
  }
  watchdog.postMessage({ port: channel.port1, memory: memory.buffer, control, tid }, [channel.port1]);
}
