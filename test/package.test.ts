// The built package as users load it: `import` (ESM) and `require` (CommonJS) of dist/, with
// type declarations. `npm install` builds dist/ (the prepare script).
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const run = (code: string, type: 'module' | 'commonjs'): string =>
  execFileSync(process.execPath, [type === 'module' ? '--input-type=module' : '--input-type=commonjs', '-e', code], { cwd: root, encoding: 'utf8' });

const program = (load: string): string => `${load}
(async () => {
  const model = await deltaprop.createModel({ inputs: 2, layers: [{ units: 8, activation: 'tanh' }, { units: 1, activation: 'sigmoid' }],
    loss: 'binaryCrossEntropy', optimizer: { type: 'adam', learningRate: 0.05 }, seed: 1 });
  await model.fit([[0, 0], [0, 1], [1, 0], [1, 1]], [0, 1, 1, 0], { epochs: 300, batchSize: 4 });
  console.log(JSON.stringify({ backend: model.backend.name, classes: Array.from(model.predictClasses([[0, 0], [0, 1], [1, 0], [1, 1]])) }));
})();`;

describe('the built package', () => {
  it('has ESM, CommonJS and type declarations', () => {
    for (const f of ['index.js', 'index.cjs', 'index.d.ts']) expect(existsSync(join(root, 'dist', f)), `dist/${f}`).toBe(true);
  });

  it("import('deltaprop') trains", () => {
    const out = JSON.parse(run(program("import * as deltaprop from 'deltaprop';"), 'module'));
    expect(out).toEqual({ backend: 'native', classes: [0, 1, 1, 0] });
  });

  it("require('deltaprop') trains", () => {
    const out = JSON.parse(run(program("const deltaprop = require('deltaprop');"), 'commonjs'));
    expect(out).toEqual({ backend: 'native', classes: [0, 1, 1, 0] });
  });
});
