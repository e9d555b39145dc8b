// `npm run gen`: writes native/abi.h and assembly/abi.ts from src/backends/abi.ts (the one source
// of the cross-language contract), through src/backends/abi-gen.ts bundled in memory by esbuild.
// `--check` writes nothing and exits 1 when a generated file is stale.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const check = process.argv.includes('--check');

const bundle = await build({
  entryPoints: [join(root, 'src/backends/abi-gen.ts')],
  bundle: true,
  write: false,
  format: 'esm',
  platform: 'neutral',
  logLevel: 'silent',
});
const code = bundle.outputFiles[0].text;
const { renderAll } = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`);

let stale = 0;
for (const [path, text] of Object.entries(renderAll())) {
  const file = join(root, path);
  let old = null;
  try {
    old = readFileSync(file, 'utf8');
  } catch {
    // not there yet
  }
  if (old === text) continue;
  stale++;
  if (check) {
    console.error(`${path} is stale: run \`npm run gen\``);
    continue;
  }
  // whole file or nothing: a build that reads it concurrently never sees half of it
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  console.log(`wrote ${path}`);
}
if (check && stale) process.exit(1);
