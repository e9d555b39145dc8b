// The ready-made sources: CSV and IDX files read as streams, their rows and targets exactly as the
// files say, their problems named with the file and line, and a fit on them.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'tsup';
import { afterAll, describe, expect, it } from 'vitest';
import { csvWorkerBuild, programBuild } from '../tsup.config.js';
import { csvSource, idxSource, InputError, JsBackend, Model, type Batch, type BatchSource, type Matrix } from '../src/index.js';
import { parseIdx } from '../src/cli/data.js';
import { cellNumber } from '../src/io/csv-cells.js';
import { Random } from '../src/random.js';

const dir = mkdtempSync(join(tmpdir(), 'deltaprop-sources-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const at = (name: string): string => join(dir, name);

async function collect(src: BatchSource): Promise<{ x: number[]; y: number[]; batches: number[] }> {
  const x: number[] = [], y: number[] = [], batches: number[] = [];
  for await (const b of src as AsyncIterable<Batch>) {
    const m = b.x as Matrix;
    batches.push(m.shape[0]);
    x.push(...Array.from(m.data));
    y.push(...Array.from(b.y as ArrayLike<number>));
  }
  return { x, y, batches };
}

/** Rows of two features and a 'pos'/'neg' label, as text. */
function blobs(rows: number, seed: number): { text: string; x: number[]; label: string[] } {
  const rng = new Random(seed), lines = ['f0,f1,label'], x: number[] = [], label: string[] = [];
  for (let i = 0; i < rows; i++) {
    const a = Number((2 * rng.uniform() - 1).toFixed(4)), b = Number((2 * rng.uniform() - 1).toFixed(4));
    const l = a - 2 * b > 0 ? 'pos' : 'neg';
    lines.push(`${a},${b},${l}`);
    x.push(Math.fround(a), Math.fround(b));
    label.push(l);
  }
  return { text: `${lines.join('\n')}\n`, x, label };
}

describe('csvSource', () => {
  it('rows, classes and batches as the file has them, plain, gzip, CRLF and with a BOM; a pass per iteration', async () => {
    const d = blobs(1000, 1);
    writeFileSync(at('b.csv'), d.text);
    writeFileSync(at('b.csv.gz'), gzipSync(d.text));
    writeFileSync(at('crlf.csv'), `\ufeff${d.text.replace(/\n/g, '\r\n')}`);
    for (const name of ['b.csv', 'b.csv.gz', 'crlf.csv']) {
      const src = await csvSource(at(name), { target: 'label', classes: ['neg', 'pos'], batchRows: 300 });
      expect(src.featureNames).toEqual(['f0', 'f1']);
      expect(src.targetName).toBe('label');
      const got = await collect(src);
      expect(got.batches).toEqual([300, 300, 300, 100]);
      expect(got.x).toEqual(d.x);
      expect(got.y).toEqual(d.label.map((l) => (l === 'pos' ? 1 : 0)));
      expect((await collect(src)).y).toEqual(got.y); // a second pass starts over
    }
  });

  it('numeric targets without classes; a filter keeps a split of the rows; headerless files', async () => {
    writeFileSync(at('n.csv'), '1,2,0.5\n3,4,1.5\n\n5,6,2.5\n7,8,3.5\n');
    const src = await csvSource(at('n.csv'), { filter: (r) => r % 2 === 1 });
    expect(src.featureNames).toEqual(['column 0', 'column 1']);
    expect(await collect(src)).toEqual({ x: [3, 4, 7, 8], y: [1.5, 3.5], batches: [2] });
  });

  it('a quoted label with line breaks counts its lines; a bad cell deep in the file stops with its line', async () => {
    const lines = ['a,b,label', '1,2,"two\nlines"', ...Array.from({ length: 60_000 }, (_, i) => `${i},${i % 7},x`)];
    lines[50_002] = '5,oops,x'; // file line 50,004 (the label above spans two lines)
    writeFileSync(at('deep.csv'), `${lines.join('\n')}\n`);
    const src = await csvSource(at('deep.csv'), { classes: ['x', 'two\nlines'] });
    await expect(collect(src)).rejects.toThrow(new InputError(`${at('deep.csv')}: line 50004, column 'b': 'oops' is not a number (feature columns must be numeric)`));
    writeFileSync(at('ragged.csv'), 'a,b,c\n1,2,x\n3,4\n');
    await expect(collect(await csvSource(at('ragged.csv'), { classes: ['x'] }))).rejects.toThrow(/ragged\.csv: ragged rows: line 3 has 2 fields, the header has 3/);
    writeFileSync(at('label.csv'), 'a,b,c\n1,2,x\n3,4,y\n');
    await expect(collect(await csvSource(at('label.csv'), { classes: ['x'] }))).rejects.toThrow(/label\.csv: line 3: label 'y' is not one of the classes \(x\)/);
    await expect(collect(await csvSource(at('label.csv')))).rejects.toThrow(/label\.csv: line 2, column 'c': 'x' is not a number \(without classes, the target must be numeric\)/);
    writeFileSync(at('big.csv'), 'a,b\n1e39,2\n');
    await expect(collect(await csvSource(at('big.csv')))).rejects.toThrow(/line 2, column 'a': 1e39 is beyond the float32 range/);
    writeFileSync(at('hex.csv'), 'a,b\n0x10,2\n');
    await expect(collect(await csvSource(at('hex.csv')))).rejects.toThrow(/line 2, column 'a': '0x10' is not a number/);
    writeFileSync(at('quote.csv'), 'a,b\n1,"2\n');
    await expect(collect(await csvSource(at('quote.csv')))).rejects.toThrow(/quote\.csv: not valid CSV near line \d+: Quoted field unterminated/);
  });

  it('a file parsed in many pieces: blank lines and CRLF between them, a bad cell deep in it named with its line', async () => {
    // 300,000 short rows: the file is read 1 MiB at a time and parsed 64 Ki characters at a time
    const lines = ['a,b,label'];
    for (let i = 0; i < 300_000; i++) {
      lines.push(`${(i % 1000) / 8},${-i},${i % 3 === 0 ? 'y' : 'x'}`);
      if (i % 977 === 0) lines.push('', ''); // blank lines, some at the edge of a piece
    }
    const badLine = 280_000;
    const expected = lines[badLine - 1];
    lines[badLine - 1] = expected.replace(/,/, ',?');
    for (const [name, nl] of [['pieces.csv', '\n'], ['pieces-crlf.csv', '\r\n']]) {
      writeFileSync(at(name), `${lines.join(nl)}${nl}`);
      await expect(collect(await csvSource(at(name), { classes: ['x', 'y'] }))).rejects.toThrow(
        new InputError(`${at(name)}: line ${badLine}, column 'b': '?${expected.split(',')[1]}' is not a number (feature columns must be numeric)`));
    }
    // a blank line that is the last line of a read (the 1 MiB read ends on its line break), after a
    // row longer than a piece: the piece it is alone in is empty text, and still a line
    const long = `1.${'0'.repeat(1_048_571 - 4 * 200_000 - 5)},2\n`;
    writeFileSync(at('edge.csv'), `a,b\n${'1,2\n'.repeat(200_000)}${long}\n${'3,4\n'.repeat(1000)}5,x\n`);
    await expect(collect(await csvSource(at('edge.csv')))).rejects.toThrow(`${at('edge.csv')}: line ${200_000 + 1004}, column 'b': 'x' is not a number`);
    lines[badLine - 1] = expected;
    writeFileSync(at('pieces.csv'), `${lines.join('\n')}\n`);
    let rows = 0, sum = 0;
    for await (const b of await csvSource(at('pieces.csv'), { classes: ['x', 'y'], batchRows: 7000 })) {
      const x = (b.x as Matrix).data;
      for (let i = 0; i < x.length; i += 2) sum += x[i + 1];
      rows += (b.x as Matrix).shape[0];
    }
    expect(rows).toBe(300_000);
    expect(sum).toBe(-(299_999 * 300_000) / 2);
  });

  it('cells convert to exactly what Number() makes of them, and the same cells are refused', () => {
    const rng = new Random(4), cells = ['-0', '+0.0', '1.', '.5', '-.5', '00012', '123456789012345', '1234567890123456', '99999999999999999999',
      '0.1', '-9.999999999999999', '1e5', '-2.5E-3', ' 1.5', '1.5 ', '', '.', '-', '+', '1.5.2', '0x10', 'NaN', 'Infinity', '1,2', '١'];
    for (let k = 0; k < 200_000; k++) {
      let c = '';
      for (let j = 0, n = 1 + rng.int(17); j < n; j++) c += String(rng.int(10));
      const dot = rng.int(c.length + 3);
      if (dot <= c.length) c = `${c.slice(0, dot)}.${c.slice(dot)}`;
      cells.push(rng.uniform() < 0.3 ? `-${c}` : c);
    }
    const NUMBER = /^\s*[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
    let wrong = 0;
    for (const c of cells) {
      const want = NUMBER.test(c) ? Number(c) : NaN, got = cellNumber(c);
      if (!(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want)))) wrong++;
    }
    expect(wrong).toBe(0);
  });

  it('parsed in a worker thread (the built layout: csv-worker.js beside the module): the same batches, split and errors', async () => {
    const out = join(fileURLToPath(new URL('..', import.meta.url)), '.tmp', `sources-worker-${process.pid}`);
    try {
      await build({ ...programBuild, config: false, silent: true, outDir: out, entry: { 'csv-stream': 'src/io/csv-stream.ts' } });
      await build({ ...csvWorkerBuild, config: false, silent: true, outDir: out });
      expect(existsSync(join(out, 'csv-worker.js'))).toBe(true);
      const built = await import(pathToFileURL(join(out, 'csv-stream.js')).href) as typeof import('../src/io/csv-stream.js');
      // 200,000 rows (about 3.5 MiB: several 1 MiB blocks for the workers to share), blank lines, CRLF
      const d = blobs(200_000, 3);
      const withBlanks = d.text.replace(/\n(-?0\.1)/g, '\n\n$1');
      writeFileSync(at('w.csv'), withBlanks);
      writeFileSync(at('w-crlf.csv'), withBlanks.replace(/\n/g, '\r\n'));
      // a quoted label: blocks with quotes are parsed by every worker to count their rows
      writeFileSync(at('w-quoted.csv'), withBlanks.replace('\n0.5,', '\n0.5,').replace(/,pos\n/, ',"pos"\n'));
      for (const name of ['w.csv', 'w-crlf.csv', 'w-quoted.csv']) {
        for (const opts of [{ batchRows: 300 }, { batchRows: 4096, split: { seed: 2, from: 0.1, to: 0.7 } }]) {
          const o = { classes: ['neg', 'pos'], ...opts };
          const here = await collect(await csvSource(at(name), { ...o, worker: false }));
          if (!opts.split) expect(here.y.length).toBe(200_000);
          for (const workers of name === 'w.csv' ? [1, 2, 3] : [2]) {
            const threaded = await collect(await built.csvSource(at(name), { ...o, workers }));
            expect(threaded.batches.length).toBeGreaterThan(5);
            expect(threaded).toEqual(here);
          }
        }
      }
      // two bad rows: the first in the file is named, whichever worker finds its own first
      const lines = d.text.split('\n');
      lines[185_001] = lines[185_001].replace(/^[^,]*/, 'n/a');
      lines[130_001] = lines[130_001].replace(/^[^,]*/, '1e99');
      writeFileSync(at('w-bad.csv'), lines.join('\n'));
      for (const workers of [1, 2, 3]) {
        await expect(collect(await built.csvSource(at('w-bad.csv'), { classes: ['neg', 'pos'], workers }))).rejects.toThrow(
          `${at('w-bad.csv')}: line 130002, column 'f0': 1e99 is beyond the float32 range (±3.4e38)`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 120_000);

  it('names the file that cannot be read and the target that does not exist', async () => {
    await expect(csvSource(at('missing.csv'))).rejects.toThrow(/missing\.csv: cannot read data file \(no such file\)/);
    await expect(csvSource(dir)).rejects.toThrow(/cannot read data file \(is a directory\)/);
    writeFileSync(at('t.csv'), 'a,b,c\n1,2,3\n');
    await expect(csvSource(at('t.csv'), { target: 'z' })).rejects.toThrow(/unknown target column 'z' \(known: 'a', 'b', 'c'\)/);
    await expect(csvSource(at('t.csv'), { batchRows: 0 })).rejects.toThrow(/batchRows: must be a positive integer/);
    writeFileSync(at('empty.csv'), '');
    await expect(csvSource(at('empty.csv'))).rejects.toThrow(/empty\.csv: empty file/);
  });

  it('fit on a CSV source learns the task', async () => {
    const d = blobs(4000, 2);
    writeFileSync(at('fit.csv'), d.text);
    const src = await csvSource(at('fit.csv'), { classes: ['neg', 'pos'], batchRows: 512 });
    const model = new Model({ inputs: 2, layers: [{ units: 8, activation: 'relu' }, { units: 2, activation: 'softmax' }],
      loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.02 }, seed: 1 }, new JsBackend());
    const h = await model.fit(src, { epochs: 8, batchSize: 32, shuffleBuffer: 1000 });
    expect(h.epochs[7].accuracy).toBeGreaterThan(0.95);
    expect((await model.evaluate(src)).accuracy).toBeGreaterThan(0.95);
  });
});

function idx(type: number, dims: number[], values: number[]): Buffer {
  const size = { 0x08: 1, 0x0b: 2, 0x0d: 4 }[type]!;
  const b = Buffer.alloc(4 + 4 * dims.length + values.length * size);
  b[2] = type;
  b[3] = dims.length;
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  const o = 4 + 4 * dims.length;
  values.forEach((v, i) => (type === 0x08 ? b.writeUInt8(v, o + i) : type === 0x0b ? b.writeInt16BE(v, o + 2 * i) : b.writeFloatBE(v, o + 4 * i)));
  return b;
}

describe('idxSource', () => {
  const rows = 1000, rng = new Random(3);
  const pixels = Array.from({ length: rows * 12 }, () => rng.int(256)), labels = Array.from({ length: rows }, (_, i) => i % 10);
  writeFileSync(at('img-idx3-ubyte'), idx(0x08, [rows, 3, 4], pixels));
  writeFileSync(at('img-idx3-ubyte.gz'), gzipSync(idx(0x08, [rows, 3, 4], pixels)));
  writeFileSync(at('lab-idx1-ubyte'), idx(0x08, [rows], labels));

  it('items and labels as parseIdx reads them, plain or gzip, in batches', async () => {
    const want = Array.from(parseIdx(idx(0x08, [rows, 3, 4], pixels), 'x').values);
    for (const images of ['img-idx3-ubyte', 'img-idx3-ubyte.gz']) {
      const src = await idxSource(at(images), at('lab-idx1-ubyte'), { batchRows: 256 });
      expect([src.rows, src.inputs, src.dims]).toEqual([rows, 12, [rows, 3, 4]]);
      const got = await collect(src);
      expect(got.batches).toEqual([256, 256, 256, 232]);
      expect(got.x).toEqual(want);
      expect(got.y).toEqual(labels);
    }
  });

  it('float items and int16 labels; truncated, mismatched and bad files are named', async () => {
    writeFileSync(at('f-idx2'), idx(0x0d, [2, 2], [0.5, -1, 2, 3]));
    writeFileSync(at('l-idx1'), idx(0x0b, [2], [1, 0]));
    expect(await collect(await idxSource(at('f-idx2'), at('l-idx1')))).toEqual({ x: [0.5, -1, 2, 3], y: [1, 0], batches: [2] });
    writeFileSync(at('short-idx3'), idx(0x08, [rows, 3, 4], pixels).subarray(0, 5000));
    await expect(collect(await idxSource(at('short-idx3'), at('lab-idx1-ubyte')))).rejects.toThrow(/short-idx3: IDX size mismatch: .* the file ends after 5000 \(truncated\?\)/);
    writeFileSync(at('long-idx1'), Buffer.concat([idx(0x08, [rows], labels), Buffer.from([1])]));
    await expect(collect(await idxSource(at('img-idx3-ubyte'), at('long-idx1')))).rejects.toThrow(/long-idx1: IDX size mismatch: bytes after the 1000 labels/);
    writeFileSync(at('few-idx1'), idx(0x08, [10], labels.slice(0, 10)));
    await expect(idxSource(at('img-idx3-ubyte'), at('few-idx1'))).rejects.toThrow(/few-idx1: 10 labels for 1000 images/);
    writeFileSync(at('junk-idx1'), 'not an idx file');
    await expect(idxSource(at('img-idx3-ubyte'), at('junk-idx1'))).rejects.toThrow(/junk-idx1: not an IDX file \(bad magic number\)/);
    await expect(idxSource(at('lab-idx1-ubyte'), at('lab-idx1-ubyte'))).rejects.toThrow(/a 1-dimensional IDX file/);
    await expect(idxSource(at('nope-idx3'), at('lab-idx1-ubyte'))).rejects.toThrow(/nope-idx3: cannot read IDX images file \(no such file\)/);
  });
});
