// scripts/prebuilds.mjs (npm pack's prepack) refuses to make a release package without the arm64
// prebuild: a missing cross compiler fails the pack, naming the Debian package, before anything
// is built or the prebuilds/ folder is touched. The builds themselves are tested through the
// packed tarball (tarball, install and Node-version tests; the arm64 one in npm run test:cross).
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot, run } from './packed.js';

const script = join(repoRoot, 'scripts', 'prebuilds.mjs');
const listing = () => (existsSync(join(repoRoot, 'prebuilds')) ? readdirSync(join(repoRoot, 'prebuilds')).sort() : []);

describe('making the prebuilds', () => {
  it('fails loudly without the arm64 cross compiler, and leaves prebuilds/ alone', async () => {
    const before = listing();
    const r = await run(process.execPath, [script], {
      cwd: repoRoot,
      env: { ...process.env, DELTAPROP_PREBUILDS: '', DELTAPROP_ARM64_TOOLS: '/nonexistent/aarch64-linux-gnu-' },
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/the linux-arm64 prebuild needs a cross compiler/);
    expect(r.stderr).toMatch(/apt-get install g\+\+-aarch64-linux-gnu/);
    expect(r.stderr).toMatch(/DELTAPROP_PREBUILDS=linux-x64/);
    expect(listing()).toEqual(before);
  });

  it('names an unknown target', async () => {
    const r = await run(process.execPath, [script], { cwd: repoRoot, env: { ...process.env, DELTAPROP_PREBUILDS: 'linux-x64,darwin-arm64' } });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/DELTAPROP_PREBUILDS names 'darwin-arm64'; the targets are linux-x64, linux-arm64/);
  });
});
