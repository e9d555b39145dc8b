// Saving files: atomic, and only ever into a regular file. A symlink is followed, a device node, a
// folder or a pipe is refused, the existing file's permissions are kept, a failed save names the
// target (never the temporary), and a save killed with SIGKILL leaves a temporary that the next
// save removes, while a save in progress in another process is left alone.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync,
  symlinkSync, utimesSync, writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { programBuild } from '../tsup.config.js';
import { JsBackend } from '../src/backends/js.js';
import { checkWritableFile, FileWriteError, readModelFile, saveModel, writeFileAtomic } from '../src/io/files.js';
import { ModelFileError, modelToBytes } from '../src/io/modelFile.js';
import { Model } from '../src/model/model.js';
import type { ModelSpec } from '../src/spec.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const spec: ModelSpec = {
  inputs: 3, layers: [{ units: 4, activation: 'tanh' }, { units: 2, activation: 'softmax' }],
  loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 2,
};
const model = new Model(spec, new JsBackend());
const bytes = Buffer.from(modelToBytes(model));
const made: string[] = [];
const tmp = (): string => {
  const d = mkdtempSync(join(tmpdir(), 'deltaprop-save-'));
  made.push(d);
  return d;
};
afterAll(() => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});
const isRoot = process.getuid?.() === 0;
/** Files in a folder besides the ones named: temporaries left behind would show here. */
const others = (dir: string, ...known: string[]): string[] => readdirSync(dir).filter((f) => !known.includes(f));

describe('saving follows symlinks and refuses what is not a regular file', () => {
  it('a symlink: the file it points to is replaced, the link stays a link', async () => {
    const dir = tmp(), real = join(dir, 'real.dpm'), link = join(dir, 'link.dpm');
    writeFileSync(real, 'old');
    symlinkSync('real.dpm', link);
    await saveModel(model, link);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readlinkSync(link)).toBe('real.dpm');
    expect(readFileSync(real).equals(bytes)).toBe(true);
    expect(others(dir, 'real.dpm', 'link.dpm')).toEqual([]);
  });

  it('a chain of symlinks into another folder, and a dangling one (its target is created)', async () => {
    const dir = tmp(), sub = join(dir, 'models');
    mkdirSync(sub);
    symlinkSync(join(sub, 'final.dpm'), join(dir, 'b.dpm'));
    symlinkSync('b.dpm', join(dir, 'a.dpm'));
    await saveModel(model, join(dir, 'a.dpm'));
    expect(lstatSync(join(dir, 'a.dpm')).isSymbolicLink() && lstatSync(join(dir, 'b.dpm')).isSymbolicLink()).toBe(true);
    expect(readFileSync(join(sub, 'final.dpm')).equals(bytes)).toBe(true);
    expect((await readModelFile(join(dir, 'a.dpm'), new JsBackend())).spec).toEqual(model.spec);
    expect(readdirSync(sub)).toEqual(['final.dpm']);
  });

  it('a symlink loop is a clear error', async () => {
    const dir = tmp();
    symlinkSync('l2', join(dir, 'l1'));
    symlinkSync('l1', join(dir, 'l2'));
    await expect(saveModel(model, join(dir, 'l1'))).rejects.toThrow(`${join(dir, 'l1')}: cannot write model (too many levels of symbolic links)`);
  });

  it.each(['/dev/null', '/dev/full'])('%s: refused, and the device node stays a device node', async (dev) => {
    if (!existsSync(dev)) return expect.fail(`${dev} is missing on this machine`);
    const before = statSync(dev);
    const err = await saveModel(model, dev).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as Error).message).toBe(`${dev}: cannot write model (a device is there, not a regular file)`);
    const after = lstatSync(dev);
    expect(after.isCharacterDevice()).toBe(true);
    expect(after.rdev).toBe(before.rdev);
    expect(readdirSync('/dev').filter((f) => f.startsWith(`.${dev.slice(5)}.`))).toEqual([]);
  });

  it('a symlink to a device node is refused, naming both', async () => {
    const dir = tmp(), link = join(dir, 'm.dpm');
    symlinkSync('/dev/null', link);
    await expect(saveModel(model, link)).rejects.toThrow(`${link}: cannot write model (the symlink points to /dev/null) (a device is there, not a regular file)`);
    expect(readlinkSync(link)).toBe('/dev/null');
  });

  it('a folder and a named pipe are refused; nothing is written', async () => {
    const dir = tmp(), folder = join(dir, 'taken'), fifo = join(dir, 'pipe');
    mkdirSync(folder);
    execFileSync('mkfifo', [fifo]);
    await expect(saveModel(model, folder)).rejects.toThrow(`${folder}: cannot write model (a directory is there, not a regular file)`);
    await expect(saveModel(model, fifo)).rejects.toThrow(`${fifo}: cannot write model (a named pipe is there, not a regular file)`);
    await expect(checkWritableFile(fifo, 'model')).rejects.toThrow(FileWriteError);
    expect(lstatSync(fifo).isFIFO()).toBe(true);
    expect(readdirSync(folder)).toEqual([]);
    expect(others(dir, 'taken', 'pipe')).toEqual([]);
  });
});

describe('saving keeps permissions', () => {
  it.each([0o600, 0o640, 0o400, 0o755])('an existing file of mode %o keeps it', async (mode) => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    writeFileSync(path, 'old');
    chmodSync(path, mode);
    await saveModel(model, path);
    expect(statSync(path).mode & 0o7777).toBe(mode);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  });

  it('a new file gets the mode of any newly created file (0666 less the umask)', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm'), reference = join(dir, 'reference');
    writeFileSync(reference, '');
    await saveModel(model, path);
    expect(statSync(path).mode & 0o7777).toBe(statSync(reference).mode & 0o7777);
  });

  it('through a symlink, the mode is the pointed-to file\'s', async () => {
    const dir = tmp(), real = join(dir, 'real.dpm');
    writeFileSync(real, 'old');
    chmodSync(real, 0o600);
    symlinkSync('real.dpm', join(dir, 'link.dpm'));
    await saveModel(model, join(dir, 'link.dpm'));
    expect(statSync(real).mode & 0o7777).toBe(0o600);
  });
});

describe('a failed save names the target', () => {
  it('a missing folder, and a folder that takes no files, name the path given', async () => {
    const missing = join(tmp(), 'no', 'm.dpm');
    await expect(saveModel(model, missing)).rejects.toThrow(`${missing}: cannot write model (its folder does not exist)`);
    // sysfs refuses new files even to root
    const err = await saveModel(model, '/sys/m.dpm').catch((e: unknown) => e) as Error;
    expect(err).toBeInstanceOf(ModelFileError);
    expect(err.message).toMatch(/^\/sys\/m\.dpm: cannot write model \(permission denied|operation not permitted\)/);
    expect(err.message).not.toMatch(/\.tmp/);
  });

  it('writeFileAtomic throws a FileWriteError with the path and where it resolved', async () => {
    const dir = tmp();
    symlinkSync(join(dir, 'nowhere', 'x'), join(dir, 'link'));
    const err = await writeFileAtomic(join(dir, 'link'), 'x', 'plot').catch((e: unknown) => e) as FileWriteError;
    expect(err).toBeInstanceOf(FileWriteError);
    expect(err.path).toBe(join(dir, 'link'));
    expect(err.target).toBe(join(dir, 'nowhere', 'x'));
    expect(err.message).toBe(`${join(dir, 'link')}: cannot write plot (the symlink points to ${join(dir, 'nowhere', 'x')}) (its folder does not exist)`);
  });
});

// ---------------------------------------------------------------------------------------------
// In other processes: a writer killed mid-save, and a writer without permission

describe('other processes', () => {
  const out = join(ROOT, '.tmp', `atomic-writer-${process.pid}`);
  // a copy any user can run (the worktree may not be readable by the unprivileged user)
  const shared = mkdtempSync(join(tmpdir(), 'deltaprop-writer-'));
  const program = join(shared, 'atomic-writer.js');
  beforeAll(async () => {
    await build({ ...programBuild, config: false, sourcemap: false, entry: { 'atomic-writer': 'test/programs/atomic-writer.ts' }, outDir: out, silent: true });
    copyFileSync(join(out, 'atomic-writer.js'), program);
    chmodSync(shared, 0o755);
    chmodSync(program, 0o644);
  }, 60_000);
  afterAll(() => {
    rmSync(out, { recursive: true, force: true });
    rmSync(shared, { recursive: true, force: true });
  });

  const exited = (child: ChildProcess): Promise<void> => new Promise((done) => {
    if (child.exitCode !== null || child.signalCode !== null) done();
    else child.once('exit', () => done());
  });

  it('a save killed with SIGKILL leaves a temporary; the next save removes it', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    const temps = (): string[] => readdirSync(dir).filter((f) => f.startsWith('.m.dpm.') && f.endsWith('.tmp'));
    let orphans: string[] = [];
    // the kill may land between a rename and the next temporary: then try again
    for (let attempt = 0; attempt < 10 && orphans.length === 0; attempt++) {
      const child = spawn(process.execPath, [program, 'loop', path, '48'], { stdio: ['ignore', 'pipe', 'inherit'] });
      await new Promise<void>((done) => child.stdout!.once('data', () => done()));
      const deadline = Date.now() + 10_000;
      while (temps().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1));
      child.kill('SIGKILL');
      await exited(child);
      expect(child.signalCode).toBe('SIGKILL');
      orphans = temps();
    }
    expect(orphans.length, 'a kill mid-save should leave its temporary').toBeGreaterThan(0);
    expect(orphans[0]).toMatch(/^\.m\.dpm\.\d+-[0-9a-f]{8}\.[0-9a-f]{12}\.tmp$/);
    await saveModel(model, path);
    expect(temps()).toEqual([]);
    expect(readFileSync(path).equals(bytes)).toBe(true);
  }, 60_000);

  it('the temporary of a save in progress in a live process is left alone', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const live = `.m.dpm.${sleeper.pid}-${host}.0123456789ab.tmp`;
      const otherHost = `.m.dpm.999999999-${host === 'deadbeef' ? 'feedface' : 'deadbeef'}.0123456789ab.tmp`;
      const notOurs = '.m.dpm.keep.tmp';
      const otherTarget = `.n.dpm.999999999-${host}.0123456789ab.tmp`;
      for (const f of [live, otherHost, notOurs, otherTarget]) writeFileSync(join(dir, f), 'partial');
      await saveModel(model, path);
      expect(readdirSync(dir).sort()).toEqual([live, otherTarget, otherHost, notOurs, 'm.dpm'].sort());
      sleeper.kill('SIGKILL');
      await exited(sleeper);
      await saveModel(model, path);
      expect(readdirSync(dir).sort()).toEqual([otherTarget, otherHost, notOurs, 'm.dpm'].sort());
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('a write that fails halfway (over the file size limit) leaves the old file and no temporary', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    writeFileSync(path, 'old');
    // ulimit -f: the kernel stops the write at 64 KiB with EFBIG (Node ignores SIGXFSZ)
    const child = spawn('sh', ['-c', 'ulimit -f 128; exec "$0" "$@"', process.execPath, program, 'once', path, '4'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    await exited(child);
    expect(JSON.parse(stdout.trim())).toEqual({ name: 'FileWriteError', error: `${path}: cannot write model (file too large for this process or file system)` });
    expect(readdirSync(dir)).toEqual(['m.dpm']);
    expect(readFileSync(path, 'utf8')).toBe('old');
  });

  it('a temporary untouched for over an hour is abandoned whatever its pid (pids are reused), older names too', async () => {
    const dir = tmp(), path = join(dir, 'm.dpm');
    const host = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    const ownPid = `.m.dpm.${process.pid}-${host}.0123456789ab.tmp`; // a previous process with this pid
    const livePid = `.m.dpm.${process.ppid}-${host}.0123456789ab.tmp`;
    const legacyOld = '.m.dpm.0123456789ab.tmp', legacyFresh = '.m.dpm.ba9876543210.tmp';
    const freshOwn = `.m.dpm.${process.pid}-${host}.ffffffffffff.tmp`; // as a save in a worker thread now
    for (const f of [ownPid, livePid, legacyOld, legacyFresh, freshOwn]) writeFileSync(join(dir, f), 'partial');
    for (const f of [ownPid, livePid, legacyOld]) utimesSync(join(dir, f), twoHoursAgo, twoHoursAgo);
    await saveModel(model, path);
    expect(readdirSync(dir).sort()).toEqual([freshOwn, legacyFresh, 'm.dpm'].sort());
  });

  it('a read-only folder: the error names the target, and nothing is left in it', async () => {
    const dir = tmp(), ro = join(dir, 'ro');
    mkdirSync(ro);
    writeFileSync(join(ro, 'm.dpm'), 'old');
    chmodSync(dir, 0o755);
    chmodSync(ro, 0o555);
    chmodSync(join(ro, 'm.dpm'), 0o666);
    // root writes anywhere: the writer runs as nobody there
    const child = spawn(process.execPath, [program, 'once', join(ro, 'm.dpm')], { stdio: ['ignore', 'pipe', 'inherit'], ...(isRoot ? { uid: 65534, gid: 65534 } : {}) });
    let stdout = '';
    child.stdout!.on('data', (d) => (stdout += d));
    await exited(child);
    const result = JSON.parse(stdout.trim());
    expect(result).toEqual({ name: 'FileWriteError', error: `${join(ro, 'm.dpm')}: cannot write model (permission denied)` });
    expect(readdirSync(ro)).toEqual(['m.dpm']);
    expect(readFileSync(join(ro, 'm.dpm'), 'utf8')).toBe('old');
  });
});
