// Giving the event loop its turn during a fit, and the clock the fit's time slices are measured by.

export const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/**
 * Lets timers, I/O and rendering run: setImmediate where it exists (Node, Bun, Deno), else a
 * message to ourselves (browsers, workerd), else a zero timeout. Browsers clamp a zero timeout
 * nested in timer tasks to 4 ms, which would idle an on-page fit for 4 ms of every 10 ms slice;
 * a message task is not clamped.
 */
export function yieldToEventLoop(): Promise<void> {
  const g = globalThis as { setImmediate?: (cb: () => void) => void };
  if (g.setImmediate) return new Promise((resolve) => g.setImmediate!(resolve));
  if (typeof MessageChannel === 'function') return new Promise(postToSelf);
  return new Promise((resolve) => setTimeout(resolve, 0));
}

let selfChannel: InstanceType<typeof MessageChannel> | null = null;
const selfWaiting: (() => void)[] = [];

/** Calls `resolve` from a message task of its own (one channel, messages answered in order). */
function postToSelf(resolve: () => void): void {
  if (!selfChannel) {
    selfChannel = new MessageChannel();
    // the web's onmessage (it also starts the port), which Node's typings of MessagePort leave out
    (selfChannel.port1 as unknown as { onmessage: (() => void) | null }).onmessage = () => selfWaiting.shift()?.();
  }
  selfWaiting.push(resolve);
  selfChannel.port2.postMessage(null);
}
