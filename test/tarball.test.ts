// What the packed tarball ships: exactly the files users need (the builds, the wasm modules, the
// prebuild, the native sources for platforms without one, the data sets, the CLI's benchmark
// peers, the README and the benchmark results it shows), and nothing else.
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { packedPrebuilds, packedTarball, repoRoot, tarballFiles } from './packed.js';

const tracked = (dir: string): string[] =>
  execFileSync('git', ['ls-files', dir], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);

// dist/<module>-<hash>.d.ts is tsup's shared declaration chunk; its name follows its first module
// and its content.
const CHUNK = /^dist\/[a-z]+-[A-Za-z0-9_-]{8}\.d\.ts$/;

function expectedFiles(): string[] {
  const dist = ['index.js', 'index.cjs', 'index.d.ts', 'index.d.cts', 'web.js', 'web.d.ts', 'workerd.js', 'workerd.d.ts',
    'inline.js', 'inline.d.ts', 'cli.js']
    .flatMap((f) => (f.endsWith('.js') || f.endsWith('.cjs') ? [f, `${f}.map`] : [f]))
    // the CSV and model workers and the inference entries ship without source maps (the package's size)
    .concat(['csv-worker.js', 'model-worker.js', 'infer.js', 'infer.d.ts', 'infer-web.js', 'infer-web.d.ts', 'infer-workerd.js', 'infer-workerd.d.ts', 'infer-onnx.js', 'infer-onnx.d.ts'])
    .map((f) => `dist/${f}`);
  return [
    'package.json', 'README.md', 'LICENSE', 'binding.gyp', 'scripts/install-failed.cjs',
    'bench/README.md', // npm ships a README beside shipped files; this one documents `deltaprop bench`
    ...dist,
    'wasm/deltaprop-simd.wasm', 'wasm/deltaprop-relaxed.wasm', 'wasm/deltaprop-simd-threads.wasm', 'wasm/deltaprop-relaxed-threads.wasm',
    ...packedPrebuilds().map((p) => `prebuilds/${p}/deltaprop.glibc.node`),
    ...tracked('native').filter((f) => !f.startsWith('native/test/')),
    ...tracked('data'),
    ...tracked('bench/peers'),
    ...tracked('docs/bench'),
  ].sort();
}

let files: string[] = [];
let tgz = '';

beforeAll(async () => {
  tgz = await packedTarball();
  files = tarballFiles(tgz);
}, 15 * 60_000);

describe('the packed tarball', () => {
  it('holds exactly the expected files', () => {
    const chunks = files.filter((f) => CHUNK.test(f));
    expect(chunks, 'one shared declaration chunk').toHaveLength(1);
    expect(files.filter((f) => !CHUNK.test(f))).toEqual(expectedFiles());
  });

  it('ships no tests, sources, benchmarks or build leftovers', () => {
    for (const f of files) {
      expect(f, f).not.toMatch(/^(test|src|assembly|bench\/(?!peers\/)|native\/test|build|node_modules|\.tmp)\//);
      expect(f, f).not.toMatch(/\.(tgz|log|o|a)$/);
    }
  });

  it('npm pack --dry-run lists the same files: the files field alone decides what ships', () => {
    const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8' });
    const listed = (JSON.parse(out)[0].files as { path: string }[]).map((f) => f.path).sort();
    // the repo may hold an arm64 prebuild from an earlier release pack; the host tarball does not
    // prebuilds/ holds whatever the last pack made here; the tarball's own are checked above
    const notPrebuilt = (l: string[]) => l.filter((f) => !f.startsWith('prebuilds/'));
    expect(notPrebuilt(listed)).toEqual(notPrebuilt(files));
  });

  it('every relative link and image of the README resolves to a shipped file', () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1])
      .filter((t) => !/^[a-z]+:/i.test(t) && !t.startsWith('#')).map((t) => t.split('#')[0]);
    expect(targets.length, 'the README links the benchmark results').toBeGreaterThan(0);
    for (const t of targets) expect(files, `README links ${t}`).toContain(t.replace(/^\.\//, ''));
    // and the pages linked from docs/bench link only shipped files too
    for (const page of files.filter((f) => f.startsWith('docs/bench/') && f.endsWith('.md'))) {
      const text = readFileSync(join(repoRoot, page), 'utf8');
      for (const m of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        const t = m[1].split('#')[0];
        if (!t || /^[a-z]+:/i.test(t)) continue;
        expect(files, `${page} links ${t}`).toContain(join('docs/bench', t));
      }
    }
  });

  // each of the six bundles (with its source map) carries the ONNX schema: about 1.7 MB in all
  it('stays small: under 2 MB packed', () => {
    expect(statSync(tgz).size).toBeLessThan(2e6);
  });
});
