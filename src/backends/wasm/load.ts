/// <reference lib="dom" />
// Loading the wasm backend: feature detection, finding and reading the packaged .wasm files (Node,
// Bun, Deno, browsers, workerd), compiling and instantiating over a memory of the asked size. No
// Node-only import at the top level: this file loads in browsers, Deno, Bun and workerd; Node's fs
// is reached only when a file: URL or a path has to be read.
import type { Backend } from '../backend.js';
import { env } from '../select.js';
import { PAGE } from './arena.js';
import { WasmBackend } from './backend.js';
import { hardwareThreads, mayBlock, threadsUnavailableReason, WasmPool } from './pool.js';

/** One build: a compiled module (what Cloudflare Workers need), bytes, or a URL / path to fetch or read. */
export type WasmSource = WebAssembly.Module | BufferSource | URL | string;

/**
 * Both builds, so that feature detection can pick; `simd` is the fallback. The threads builds
 * (shared memory and atomics) run the kernels on several threads where the runtime allows it.
 */
export interface WasmSources {
  simd: WasmSource;
  relaxed?: WasmSource;
  simdThreads?: WasmSource;
  relaxedThreads?: WasmSource;
}

export interface WasmBackendOptions {
  /** Use the relaxed-SIMD build: true forces it (fails where unsupported), false forbids it; default: detect. */
  relaxed?: boolean;
  /** Upper bound on the module's memory in MB (default 2048, at most 4096). */
  maxMemoryMB?: number;
  /**
   * Threads for the kernels (default: DELTAPROP_THREADS, else every hardware thread,
   * `hardwareThreads()`, at most MAX_WASM_THREADS). More than 1 needs shared memory and workers
   * (Node, Bun, Deno, cross-origin isolated pages); elsewhere the backend runs on one thread and
   * its `threadsReason` says why. The workers start with the first kernel that splits its work.
   */
  threads?: number;
}

export const WASM_FILES = {
  simd: 'deltaprop-simd.wasm',
  relaxed: 'deltaprop-relaxed.wasm',
  simdThreads: 'deltaprop-simd-threads.wasm',
  relaxedThreads: 'deltaprop-relaxed-threads.wasm',
} as const;
type BuildName = keyof typeof WASM_FILES;

// The smallest modules using one SIMD op (v128.const) and one relaxed-SIMD op (f32x4.relaxed_madd):
// validating them tells what this engine supports without compiling the real module twice.
function probeModule(body: number[]): Uint8Array<ArrayBuffer> {
  const code = [0x00, ...body, 0x0b]; // no locals, body, end
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // type: () -> v128
    0x03, 0x02, 0x01, 0x00, // one function of type 0
    0x0a, code.length + 2, 0x01, code.length, ...code,
  ]);
}
const V128_ZERO = [0xfd, 0x0c, ...new Array<number>(16).fill(0)];

/** True where WebAssembly SIMD (v128) is supported. */
export function simdSupported(): boolean {
  try {
    return WebAssembly.validate(probeModule(V128_ZERO));
  } catch {
    return false;
  }
}

/** True where relaxed SIMD is supported (f32x4.relaxed_madd). */
export function relaxedSimdSupported(): boolean {
  try {
    return WebAssembly.validate(probeModule([...V128_ZERO, ...V128_ZERO, ...V128_ZERO, 0xfd, 0x85, 0x02]));
  } catch {
    return false;
  }
}

interface NodeFs {
  readFileSync(path: string | URL): Uint8Array;
  existsSync(path: string | URL): boolean;
}

// Node's fs, registered by the Node entry (src/index.ts imports node:fs statically: it is never
// bundled for a browser), so that every Node >= 20.0 reads the packaged files.
let registeredFs: NodeFs | null = null;

/** Gives the loader Node's fs (called once by the Node entry). */
export function registerNodeFs(fs: NodeFs): void {
  registeredFs = fs;
}

// Otherwise Node's fs (also Bun's and Deno's) without an import statement: bundlers for browsers
// and workerd must not see one, and workerd's module loader rejects computed dynamic imports too.
// process.getBuiltinModule exists from Node 20.16; older Nodes reach this only through the web
// entry and must pass bytes or a module there.
function nodeFs(): NodeFs | null {
  if (registeredFs) return registeredFs;
  const proc = (globalThis as { process?: { versions?: { node?: string }; getBuiltinModule?: (id: string) => unknown } }).process;
  if (!proc?.versions?.node) return null;
  const fs = proc.getBuiltinModule?.('node:fs') as NodeFs | undefined;
  // Deno (whose `process` may lack it) has Deno.readFile and fetch of file: URLs instead
  if (!fs && (globalThis as { Deno?: unknown }).Deno) return null;
  if (!fs) throw new Error(`wasm backend: reading .wasm files from this entry needs Node >= 20.16 (process.getBuiltinModule); this is ${proc.versions.node}: import 'deltaprop' (the Node entry) or 'deltaprop/inline', or pass the bytes or a WebAssembly.Module`);
  return fs;
}

// Server-side runtimes (Node, Bun, Deno) compile and instantiate the ~30 KB module synchronously.
// The promise of WebAssembly.compile settles from a task V8 posts to the embedder's event loop,
// and Node holds no reference to the loop for it (nodejs/node#36616): a loader awaiting it must
// not depend on what else keeps the process alive. Browsers keep the asynchronous path (Chrome
// refuses synchronous compilation of modules over 4 KB on the main thread).
function compilesSynchronously(): boolean {
  const g = globalThis as { process?: { versions?: { node?: string } }; Deno?: unknown; window?: unknown };
  return (typeof g.process?.versions?.node === 'string' || g.Deno !== undefined) && g.window === undefined;
}

const SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;

async function readSource(src: URL | string): Promise<Uint8Array | ArrayBuffer> {
  const isUrl = src instanceof URL || SCHEME.test(src) || src.startsWith('data:') || src.startsWith('blob:');
  const url = isUrl ? new URL(String(src)) : null;
  if (url === null || url.protocol === 'file:') {
    const fs = nodeFs();
    if (fs) return fs.readFileSync(url ?? src);
    const deno = (globalThis as { Deno?: { readFile(p: string | URL): Promise<Uint8Array> } }).Deno;
    if (deno) return deno.readFile(url ?? src);
    if (url === null) throw new Error(`wasm backend: cannot read the file '${String(src)}' in this runtime (pass a URL, bytes or a WebAssembly.Module)`);
  }
  const res = await fetch(url!);
  if (!res.ok) throw new Error(`wasm backend: fetching ${url!.href} failed: ${res.status} ${res.statusText}`);
  return res.arrayBuffer();
}

// A module read from a file or URL is compiled once per program and instantiated for every backend:
// each compile leaves its code and metadata to a later collection, about 1 KB of RSS per backend
// that a program creating many models never gets back, and costs the compile time again. The
// bytes are kept beside it for workers of runtimes that cannot be passed a compiled module.
interface Compiled {
  module: WebAssembly.Module;
  bytes: Uint8Array | null;
}
const compiled = new Map<string, Promise<Compiled>>();

async function compileKeeping(src: WasmSource): Promise<Compiled> {
  if (src instanceof WebAssembly.Module) return { module: src, bytes: null };
  if (typeof src !== 'string' && !(src instanceof URL)) {
    const bytes = ArrayBuffer.isView(src) ? new Uint8Array(src.buffer, src.byteOffset, src.byteLength) : new Uint8Array(src);
    return { module: await compileBytes(src), bytes };
  }
  const key = String(src);
  let entry = compiled.get(key);
  if (!entry) {
    entry = readSource(src).then(async (b) => ({ module: await compileBytes(b), bytes: new Uint8Array(b) }));
    compiled.set(key, entry);
    entry.catch(() => compiled.delete(key)); // a failed read or compile is tried again next time
  }
  return entry;
}

async function compile(src: WasmSource): Promise<WebAssembly.Module> {
  return (await compileKeeping(src)).module;
}

function compileBytes(bytes: BufferSource | Uint8Array): WebAssembly.Module | Promise<WebAssembly.Module> {
  return compilesSynchronously() ? new WebAssembly.Module(bytes as BufferSource) : WebAssembly.compile(bytes as BufferSource);
}

// How to give a bundle its kernels when the packaged files cannot be found from it.
const BUNDLE_HINT = "import from 'deltaprop/inline' (the .wasm inside the bundle), or pass the .wasm files' URLs as the `wasm` option";

// The package's wasm/ files: next to dist/ in the package (dist/*.js is one level down), at the
// repository root for a program bundled two levels down in it, or when running from the sources
// (src/backends/wasm/load.ts is three levels down). The first URLs are literal
// `new URL('…', import.meta.url)` so that bundlers (Vite, webpack) emit the .wasm as an asset; the
// others are computed so that they do not try to resolve them.
function packagedCandidates(build: BuildName): URL[] {
  const here: unknown = import.meta.url;
  const file = WASM_FILES[build];
  // an IIFE or CommonJS bundle made for browsers has no module URL (esbuild makes import.meta {})
  if (typeof here !== 'string' || here === '') {
    throw new Error(`wasm backend: this bundle has no import.meta.url to locate ${file} from (an IIFE or CommonJS bundle): ${BUNDLE_HINT}`);
  }
  const inPackage = build === 'relaxed' ? new URL('../wasm/deltaprop-relaxed.wasm', import.meta.url)
    : build === 'simd' ? new URL('../wasm/deltaprop-simd.wasm', import.meta.url)
      : build === 'relaxedThreads' ? new URL('../wasm/deltaprop-relaxed-threads.wasm', import.meta.url)
        : new URL('../wasm/deltaprop-simd-threads.wasm', import.meta.url);
  return [inPackage, new URL(['..', '..', 'wasm', file].join('/'), here), new URL(['..', '..', '..', 'wasm', file].join('/'), here)];
}

/** The packaged files' URLs (`packaged`: not given by the caller, so a failure names the bundle fix). */
interface PackagedUrl {
  url: URL;
  packaged: true;
}

async function packagedWasmUrl(build: BuildName): Promise<URL | PackagedUrl> {
  const candidates = packagedCandidates(build);
  if (candidates[0].protocol === 'file:') {
    const fs = nodeFs();
    if (fs) {
      const found = candidates.find((u) => fs.existsSync(u));
      if (!found) throw new Error(`wasm backend: ${candidates[0].pathname.split('/').pop()} not found (looked in ${candidates.map((u) => u.pathname).join(', ')}); run \`npm run build:wasm\``);
      return found;
    }
  }
  return { url: candidates[0], packaged: true };
}

function isPackagedUrl(s: unknown): s is PackagedUrl {
  return typeof s === 'object' && s !== null && (s as Partial<PackagedUrl>).packaged === true && (s as PackagedUrl).url instanceof URL;
}

function isSources(s: unknown): s is WasmSources {
  return typeof s === 'object' && s !== null && !(s instanceof WebAssembly.Module) && !(s instanceof URL) &&
    !ArrayBuffer.isView(s) && !(s instanceof ArrayBuffer) && 'simd' in s;
}

/**
 * The thread count asked for: the option, else DELTAPROP_THREADS, else every hardware thread (as
 * native). A backend of several threads starts no worker before a kernel splits its work (pool.ts),
 * so tiny models, and programs making backend after backend, pay nothing for the default.
 */
function threadsAsked(opts: WasmBackendOptions): { threads: number; why: string } {
  const te = env('DELTAPROP_THREADS');
  const threads = opts.threads ?? (te === undefined || te === '' ? Math.min(hardwareThreads(), MAX_WASM_THREADS) : Number(te));
  if (!(Number.isInteger(threads) && threads >= 1)) {
    throw new RangeError(`wasm backend: threads must be a positive integer, got ${String(opts.threads ?? te)}${opts.threads === undefined ? ' (from DELTAPROP_THREADS)' : ''}`);
  }
  const why = opts.threads !== undefined ? `threads: ${threads} was asked`
    : te !== undefined && te !== '' ? `DELTAPROP_THREADS=${te}`
      : 'one hardware thread (the default is every hardware thread)';
  return { threads, why };
}

/** The most threads a wasm backend starts (each has 2.2 MB of GEMM scratch in the one memory). */
export const MAX_WASM_THREADS = 64;

/**
 * Loads the wasm backend. `source` is one build (module, bytes, URL or path) or the builds
 * `{ simd, relaxed, simdThreads, relaxedThreads }`; without it the package's own `wasm/` files are
 * read (Node, Bun, Deno) or fetched next to the bundle (browsers). With both builds available,
 * relaxed SIMD is used where the engine validates it, unless `opts.relaxed` says otherwise. With
 * more than one thread (`opts.threads`, DELTAPROP_THREADS, default every hardware thread) and a
 * runtime with shared memory and workers, the threads build runs on a pool of workers, started
 * with the first kernel that splits its work; otherwise the backend runs on one thread and its
 * `threadsReason` says why.
 */
export async function loadWasmBackend(source?: WasmSource | WasmSources,
  opts: WasmBackendOptions = {}): Promise<Backend> {
  if (!simdSupported()) throw new Error('wasm backend: this engine has no WebAssembly SIMD (v128)');
  const maxMB = opts.maxMemoryMB ?? 2048;
  if (!(maxMB > 0 && maxMB <= 4096)) throw new RangeError(`wasm backend: maxMemoryMB must be in (0, 4096], got ${maxMB}`);
  const asked = threadsAsked(opts);
  const threads = Math.min(asked.threads, MAX_WASM_THREADS);
  const canRelax = relaxedSimdSupported();
  if (opts.relaxed === true && !canRelax) throw new Error('wasm backend: relaxed SIMD was requested but this engine does not support it');
  // why the kernels run on one thread (null: they may run on `threads`)
  // (what the runtime lacks first: on workerd the "hardware" is one thread because of it)
  let oneThread: string | null = threadsUnavailableReason() ?? (threads > 1 ? null : asked.why);
  let src: WasmSource | PackagedUrl;
  let threadSrc: WasmSource | PackagedUrl | null = null;
  if (source === undefined || isSources(source)) {
    const relaxed = opts.relaxed ?? canRelax;
    const both: WasmSources = source ?? {
      simd: await packagedWasmUrl('simd'),
      relaxed: await packagedWasmUrl('relaxed'),
    };
    if (relaxed && both.relaxed === undefined) {
      if (opts.relaxed === true) throw new Error('wasm backend: relaxed SIMD was requested but no relaxed build was given');
    }
    const useRelaxed = relaxed && both.relaxed !== undefined;
    src = useRelaxed ? both.relaxed! : both.simd;
    if (oneThread === null) {
      try {
        threadSrc = source === undefined ? await packagedWasmUrl(useRelaxed ? 'relaxedThreads' : 'simdThreads')
          : (useRelaxed ? source.relaxedThreads : source.simdThreads) ?? null;
        if (threadSrc === null) oneThread = `no threads build was given (WasmSources.${useRelaxed ? 'relaxedThreads' : 'simdThreads'})`;
      } catch (e) {
        oneThread = (e as Error).message;
      }
    }
  } else {
    src = source;
    if (oneThread === null) oneThread = 'one wasm build was given: threads need the threads builds ({ simd, relaxed, simdThreads, relaxedThreads })';
  }
  const maxPages = Math.floor((maxMB * 1048576) / PAGE);
  if (threadSrc !== null) {
    try {
      return await loadThreaded(threadSrc, threads, maxPages);
    } catch (e) {
      oneThread = `the threads build did not start: ${(e as Error).message}`;
    }
  }
  const module = await compileSource(src);
  const memory = new WebAssembly.Memory({ initial: Math.min(40, maxPages), maximum: maxPages });
  const instance = await instantiate(module, memory);
  const backend = new WasmBackend(instance, memory, maxPages * PAGE);
  backend.threadsReason = oneThread ?? undefined;
  return backend;
}

async function compileSource(src: WasmSource | PackagedUrl): Promise<WebAssembly.Module> {
  return (await compileSourceKeeping(src)).module;
}

async function compileSourceKeeping(src: WasmSource | PackagedUrl): Promise<Compiled> {
  if (!isPackagedUrl(src)) return compileKeeping(src);
  try {
    return await compileKeeping(src.url);
  } catch (e) {
    // fetched next to a bundle that does not carry the file (esbuild emits no .wasm assets)
    throw new Error(`${(e as Error).message} (the packaged ${src.url.pathname.split('/').pop()}, located from the bundle's import.meta.url): ${BUNDLE_HINT}`);
  }
}

async function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  const need = WebAssembly.Module.imports(module).find((i) => i.kind === 'memory');
  if (!need) throw new Error('wasm backend: the module does not import env.memory: not a deltaprop kernel build');
  // The module declares a small minimum (its static data); the GEMM scratch after it (about 2.2 MB
  // a thread, heapBase() says exactly) is covered by the initial size or grown by the constructor.
  const imports = { env: { memory } };
  return compilesSynchronously() ? new WebAssembly.Instance(module, imports) : WebAssembly.instantiate(module, imports);
}

interface PoolExports {
  poolInit(threads: number, mainWaits: number): void;
  poolControl(): number;
  heapBaseFor(threads: number): number;
}

// Pages a threads build needs below its arena, by module and thread count (known after one load).
const scratchPages = new WeakMap<WebAssembly.Module, Map<number, number>>();

// The threads build on a shared memory, with a pool of `threads − 1` workers that start when a
// kernel first splits its work (pool.ts).
async function loadThreaded(src: WasmSource | PackagedUrl, threads: number, maxPages: number): Promise<Backend> {
  const { module, bytes } = await compileSourceKeeping(src);
  // sized for the scratch of every thread at once: growing a shared memory after costs more than
  // the rest of the load (0.4 ms), and a program may load backend after backend
  const known = scratchPages.get(module)?.get(threads) ?? 40;
  const memory = new WebAssembly.Memory({ initial: Math.min(known, maxPages), maximum: maxPages, shared: true });
  const instance = await instantiate(module, memory);
  const k = instance.exports as unknown as PoolExports;
  if (typeof k.poolInit !== 'function') throw new Error('not a deltaprop threads build (no poolInit export)');
  k.poolInit(threads, mayBlock() ? 1 : 0);
  const base = k.heapBaseFor(threads);
  if (!scratchPages.has(module)) scratchPages.set(module, new Map());
  scratchPages.get(module)!.set(threads, Math.ceil(base / PAGE) + 1);
  // the arena (and so the memory) first: the workers' scratch lies below its base
  const backend = new WasmBackend(instance, memory, maxPages * PAGE, base);
  backend.attachPool(new WasmPool(threads, module, bytes, memory, k.poolControl()));
  return backend;
}
