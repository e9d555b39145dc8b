// The README's example, as a TypeScript user compiles it against the built package: tsc (this
// repository's typescript) on three consumer projects, each with the package's package.json and
// dist/ copied into its node_modules: ESM under `module: nodenext`, ESM under `moduleResolution:
// bundler`, and CommonJS (a .cts file under nodenext). Each must type-check and resolve the Node
// entry's declarations; a browser project (customConditions: browser) gets the web entry's, where
// the Node-only helpers do not exist. Needs the built package (`npm run compile`: dist/).
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const work = join(root, '.tmp/typescript-consumers');

/** The README's "Example" code block: its import lines, and the rest. */
function readmeExample(): { imports: string; body: string } {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Example'));
  const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (!code) throw new Error('README.md: no ```ts block under "## Example"');
  const lines = code.split('\n');
  const imports = lines.filter((l) => /^import\s/.test(l)).join('\n');
  expect(imports).toMatch(/from 'deltaprop'/);
  return { imports, body: lines.filter((l) => !/^import\s/.test(l)).join('\n') };
}

interface Consumer {
  name: string;
  packageType: 'module' | 'commonjs';
  compilerOptions: Record<string, unknown>;
  file: string;
  source: string;
}

/** A consumer project: tsconfig, package.json, the source, and the package in node_modules. */
function makeConsumer(c: Consumer): string {
  const dir = join(work, c.name);
  rmSync(dir, { recursive: true, force: true });
  const pkgDir = join(dir, 'node_modules/deltaprop');
  mkdirSync(pkgDir, { recursive: true });
  cpSync(join(root, 'package.json'), join(pkgDir, 'package.json'));
  cpSync(join(root, 'dist'), join(pkgDir, 'dist'), { recursive: true, filter: (f) => !f.endsWith('.map') });
  // @types/node, as a consumer has it installed
  symlinkSync(join(root, 'node_modules/@types'), join(dir, 'node_modules/@types'), 'dir');
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `consumer-${c.name}`, private: true, type: c.packageType }));
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, skipLibCheck: true, types: ['node'], ...c.compilerOptions },
    files: [c.file],
  }, null, 2));
  writeFileSync(join(dir, c.file), c.source);
  return dir;
}

/** tsc -p on the project; --traceResolution tells which declaration file 'deltaprop' became. */
async function typecheck(dir: string): Promise<{ ok: boolean; output: string; resolved: string | undefined }> {
  const tsc = join(root, 'node_modules/typescript/bin/tsc');
  let stdout = '', ok = true;
  try {
    ({ stdout } = await run(process.execPath, [tsc, '-p', dir, '--traceResolution'], { cwd: dir, maxBuffer: 64 << 20 }));
  } catch (e) {
    ok = false;
    stdout = (e as { stdout: string }).stdout;
  }
  const resolved = /Module name 'deltaprop' was successfully resolved to '([^']+)'/.exec(stdout)?.[1];
  const errors = stdout.split('\n').filter((l) => /error TS\d+/.test(l)).join('\n');
  return { ok, output: errors, resolved: resolved?.slice(dir.length + 1) };
}

beforeAll(() => {
  for (const f of ['dist/index.d.ts', 'dist/index.d.cts', 'dist/web.d.ts']) {
    if (!existsSync(join(root, f))) throw new Error(`${f} is missing: run \`npm run compile\` first`);
  }
  rmSync(work, { recursive: true, force: true });
});

describe('the README example type-checks against the built package', () => {
  const { imports, body } = readmeExample();
  const esm = `${imports}\n${body}\nexport {};\n`;
  // CommonJS has no top-level await: the same statements in an async function
  const cjs = `${imports}\nasync function main(): Promise<void> {\n${body}\n}\nvoid main();\n`;

  it.each<[Consumer, string]>([
    // this one also checks the package's own declaration files (skipLibCheck off; slower)
    [{ name: 'nodenext-esm', packageType: 'module', file: 'example.ts', source: esm,
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', skipLibCheck: false } }, 'node_modules/deltaprop/dist/index.d.ts'],
    [{ name: 'bundler', packageType: 'module', file: 'example.ts', source: esm,
      compilerOptions: { module: 'esnext', moduleResolution: 'bundler', target: 'es2022' } }, 'node_modules/deltaprop/dist/index.d.ts'],
    [{ name: 'nodenext-cts', packageType: 'commonjs', file: 'example.cts', source: cjs,
      compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022' } }, 'node_modules/deltaprop/dist/index.d.cts'],
  ])('$name', async (consumer, want) => {
    const r = await typecheck(makeConsumer(consumer));
    expect(r.output).toBe('');
    expect(r.ok).toBe(true);
    expect(r.resolved).toBe(want);
  }, 60_000);

  it('a browser project (bundler, customConditions: browser) gets the web declarations, without the Node-only helpers', async () => {
    const source = `import { createModel, loadModel, modelToBytes } from 'deltaprop';
      const model = await createModel({ inputs: 2, layers: [{ units: 1, activation: 'sigmoid' }], loss: 'mse',
        optimizer: { type: 'sgd', learningRate: 0.1 } }, { wasm: new URL('https://example.com/k.wasm') });
      const again = await loadModel(modelToBytes(model));
      again.predict([[0, 1]]);
      export {};\n`;
    const compilerOptions = { module: 'esnext', moduleResolution: 'bundler', target: 'es2022', customConditions: ['browser'], lib: ['es2022', 'dom'] };
    // and there, the README's Node example is refused for what the browser entry lacks
    const [browser, node] = await Promise.all([
      typecheck(makeConsumer({ name: 'browser', packageType: 'module', file: 'app.ts', source, compilerOptions })),
      typecheck(makeConsumer({ name: 'browser-readme', packageType: 'module', file: 'example.ts', source: esm, compilerOptions })),
    ]);
    expect(browser.output).toBe('');
    expect(browser.resolved).toBe('node_modules/deltaprop/dist/web.d.ts');
    expect(node.ok).toBe(false);
    expect(node.output).toMatch(/'loadBuiltin'/);
  }, 60_000);
});
