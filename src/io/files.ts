// Model files on disk (Node): written atomically, so a crash or a full disk never leaves a
// half-written model where a good one was.
import { createHash, randomBytes } from 'node:crypto';
import { access, constants, type FileHandle, lstat, open, readdir, readlink, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Backend } from '../backends/backend.js';
import type { Model } from '../model/model.js';
import { ModelFileError, modelFromBytes, modelToBytes } from './modelFile.js';

/** A file that could not be written: the message names the path the caller gave, and why. */
export class FileWriteError extends Error {
  override name = 'FileWriteError';
  /** The path as given; `target` is where it resolved to (the end of its symlinks). */
  constructor(message: string, readonly path: string, readonly target: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied', EPERM: 'operation not permitted', EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device', EDQUOT: 'disk quota exceeded', ENOENT: 'its folder does not exist',
  ENOTDIR: 'a parent is not a directory', EISDIR: 'is a directory', ELOOP: 'too many levels of symbolic links',
  EMFILE: 'too many open files', EIO: 'input/output error', ENAMETOOLONG: 'file name too long',
  EXDEV: 'the temporary file and the target are on different file systems', EFBIG: 'file too large for this process or file system',
};

const reason = (e: unknown): string => {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && REASONS[code]) || (e as Error).message;
};

/** What stands at a path, for the refusal message. */
function kind(st: { isDirectory(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean; isSocket(): boolean }): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isFIFO()) return 'a named pipe';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

const MAX_LINKS = 40; // as Linux's own limit on symlinks followed in one lookup

/**
 * The file a write to `path` lands in: the end of its chain of symlinks (which need not exist yet),
 * with what is there now, if anything.
 */
async function resolveTarget(path: string): Promise<{ target: string; mode: number | null; uid: number; gid: number }> {
  let p = resolve(path);
  for (let hops = 0; ; hops++) {
    let st;
    try {
      st = await lstat(p);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { target: p, mode: null, uid: -1, gid: -1 };
      throw e;
    }
    if (st.isSymbolicLink()) {
      if (hops >= MAX_LINKS) throw Object.assign(new Error('too many levels of symbolic links'), { code: 'ELOOP' });
      p = resolve(dirname(p), await readlink(p));
      continue;
    }
    if (!st.isFile()) throw new RefusedTarget(kind(st), p);
    return { target: p, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  }
}

class RefusedTarget extends Error {
  constructor(readonly what: string, readonly target: string) {
    super(what);
  }
}

// Temporary files are `.NAME.<pid>-<host>.<random>.tmp` beside the target: recognisably ours, and
// with the writer's pid and host so that a later save can tell an orphan (its writer was killed)
// from a save in progress.
const HOST = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/**
 * A temporary untouched for this long is abandoned whatever its name says: a save in progress
 * writes to its temporary all along, while pids are reused (a container's process often has the
 * same pid every run) and other hosts' pids cannot be checked. Also the rule for the temporaries
 * of deltaprop before they carried a pid.
 */
const ABANDONED_AFTER_MS = 60 * 60 * 1000;

function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}-${HOST}.${randomBytes(6).toString('hex')}.tmp`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists, under another user
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temporaries of `target` left by writers that died mid-save (kill -9, power loss): ours by
 * name, and from this host with its process gone, or untouched for an hour. A save in progress
 * is never touched. Best effort: a temporary that cannot be removed is left for the next save.
 */
async function removeOrphans(target: string): Promise<void> {
  const dir = dirname(target), name = escapeRegExp(basename(target));
  const current = new RegExp(`^\\.${name}\\.(\\d+)-([0-9a-f]{8})\\.[0-9a-f]{12}\\.tmp$`);
  const legacy = new RegExp(`^\\.${name}\\.[0-9a-f]{12}\\.tmp$`);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return;
  }
  for (const entry of entries) {
    const m = current.exec(entry);
    if (!m && !legacy.test(entry)) continue;
    try {
      const st = await lstat(join(dir, entry));
      if (!st.isFile()) continue;
      const pid = m ? Number(m[1]) : NaN;
      // this host's writer is gone (our own pid: a save in progress here, perhaps in a worker)
      const writerGone = m !== null && m[2] === HOST && pid !== process.pid && !isAlive(pid);
      if (!writerGone && Date.now() - st.mtimeMs < ABANDONED_AFTER_MS) continue;
      await unlink(join(dir, entry));
    } catch {
      // gone already, or not ours to remove
    }
  }
}

/** Flushes a folder's entries (the rename) to disk; file systems that cannot are skipped. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EBADF') throw e;
  } finally {
    await fh?.close();
  }
}

/** A FileWriteError for `path` (which resolved to `target`). */
const failure = (path: string, target: string, what: string) => (why: string, cause?: unknown): FileWriteError => {
  const at = target !== resolve(path) ? ` (the symlink points to ${target})` : '';
  return new FileWriteError(`${path}: cannot write ${what}${at} (${why})`, path, target, { cause });
};

/** Resolves where a write to `path` lands and refuses what cannot be written there (FileWriteError). */
async function prepareTarget(path: string, what: string): Promise<Awaited<ReturnType<typeof resolveTarget>>> {
  let existing;
  try {
    existing = await resolveTarget(path);
  } catch (e) {
    if (e instanceof RefusedTarget) throw failure(path, e.target, what)(`${e.what} is there, not a regular file`);
    throw failure(path, resolve(path), what)(reason(e), e);
  }
  try {
    if (!(await stat(dirname(existing.target))).isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  } catch (e) {
    throw failure(path, existing.target, what)(reason(e), e);
  }
  return existing;
}

/**
 * Checks, before any long work, that `path` could be saved to: where it resolves is a regular file
 * or nothing, in a folder this process may write. Throws the FileWriteError a save would.
 */
export async function checkWritableFile(path: string, what = 'file'): Promise<void> {
  const { target } = await prepareTarget(path, what);
  try {
    await access(dirname(target), constants.W_OK);
  } catch (e) {
    throw failure(path, target, what)(reason(e), e);
  }
}

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk, then
 * renamed over the target, and the folder flushed. A symlink is followed (the file it points to is
 * replaced; the link stays); anything but a regular file at the end is refused. An existing file
 * keeps its permissions (and owner, where allowed); a new one gets the umask's, as any created
 * file. On any error the temporary is removed, the target is untouched, and the FileWriteError
 * names `path`. Temporaries orphaned by earlier writers that were killed are removed first.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string, what = 'file'): Promise<void> {
  const existing = await prepareTarget(path, what);
  const target = existing.target;
  const fail = failure(path, target, what);
  await removeOrphans(target);
  const tmp = tempName(target);
  let created = false;
  try {
    // a new file: 0o666 less the umask, as open() gives any new file; an existing file's mode is
    // set before the rename, and until then the temporary is private
    const fh = await open(tmp, 'wx', existing.mode === null ? 0o666 : 0o600);
    created = true;
    try {
      if (existing.mode !== null) {
        await fh.chown(existing.uid, existing.gid).catch(() => {}); // only root may give a file away
        await fh.chmod(existing.mode);
      }
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, target);
    created = false;
    await syncDir(dirname(target));
  } catch (e) {
    if (created) await unlink(tmp).catch(() => {});
    // the folder was there a moment ago: ENOENT now means it takes no new files (/proc) or is gone
    const code = (e as NodeJS.ErrnoException).code;
    throw fail(code === 'ENOENT' && !created ? `cannot create a file in ${dirname(target)}` : reason(e), e);
  }
}

/** Saves the model (spec and weights) to `path`, atomically; a failure is a ModelFileError naming `path`. */
export async function saveModel(model: Model, path: string): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = modelToBytes(model);
  } catch (e) {
    if (e instanceof ModelFileError) throw new ModelFileError(`${path}: ${e.message}`);
    throw e;
  }
  try {
    await writeFileAtomic(path, bytes, 'model');
  } catch (e) {
    if (e instanceof FileWriteError) throw new ModelFileError(e.message, { cause: e });
    throw e;
  }
}

/** Reads a model file into a model on `backend`; a bad file is a ModelFileError naming the path. */
export async function readModelFile(path: string, backend: Backend): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await readAll(path);
  } catch (e) {
    if (e instanceof ModelFileError) throw e;
    throw new ModelFileError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return modelFromBytes(bytes, backend);
  } catch (e) {
    if (e instanceof ModelFileError) throw new ModelFileError(`${path}: ${e.message}`);
    throw e;
  }
}

/** Node's readFile stops at 2 GiB; a model file may be up to 4 GiB (see MAX_PARAMS): read in chunks. */
async function readAll(path: string): Promise<Uint8Array> {
  const fh = await open(path, 'r');
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new ModelFileError(`${path}: cannot read (${kind(st)}, not a model file)`);
    if (st.size > 2 ** 32) throw new ModelFileError(`${path}: ${st.size} bytes is larger than any model file (4 GiB at most)`);
    const bytes = new Uint8Array(st.size);
    for (let at = 0; at < bytes.length;) {
      const { bytesRead } = await fh.read(bytes, at, Math.min(bytes.length - at, 1 << 30), at);
      if (bytesRead === 0) throw new ModelFileError(`${path}: the file shrank while it was read`);
      at += bytesRead;
    }
    return bytes;
  } finally {
    await fh.close();
  }
}
