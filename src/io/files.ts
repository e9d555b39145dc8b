// Model files on disk (Node): written atomically, so a crash or a full disk never leaves a
// half-written model where a good one was.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Backend } from '../backends/backend.js';
import type { Model } from '../model.js';
import { ModelFileError, modelFromBytes, modelToBytes } from './modelFile.js';

/**
 * Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to disk, then
 * renamed over the target. On any error the temporary file is removed and the target untouched.
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
}

/** Saves the model (spec and weights) to `path`, atomically. */
export async function saveModel(model: Model, path: string): Promise<void> {
  await writeFileAtomic(path, modelToBytes(model));
}

/** Reads a model file into a model on `backend`; a bad file is a ModelFileError naming the path. */
export async function readModelFile(path: string, backend: Backend): Promise<Model> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new ModelFileError(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    return modelFromBytes(bytes, backend);
  } catch (e) {
    if (e instanceof ModelFileError) throw new ModelFileError(`${path}: ${e.message}`);
    throw e;
  }
}
