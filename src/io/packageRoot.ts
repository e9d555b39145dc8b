// The package's root folder (Node), found from this module's location. Works from the sources
// (vitest), the ESM bundle and the CommonJS bundle (tsup shims import.meta.url there).
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | null = null;

export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if (JSON.parse(readFileSync(pkg, 'utf8')).name === 'deltaprop') return (root = dir);
      } catch {
        // not ours, keep looking
      }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`deltaprop: cannot find the package root above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}
