// model.summary(): the Keras-style table and the same numbers as data.
import { describe, expect, it, vi } from 'vitest';
import { JsBackend } from '../src/backends/js.js';
import { Model } from '../src/model/model.js';

describe('model.summary()', () => {
  const model = new Model({
    inputs: 64, layers: [{ units: 64, activation: 'relu' }, { units: 32, activation: 'tanh' }, { units: 10, activation: 'softmax' }],
    loss: 'categoricalCrossEntropy', optimizer: { type: 'adam', learningRate: 0.01 }, seed: 1,
  }, new JsBackend());

  it('returns each layer with its output shape and parameters (weights + biases), and the total', () => {
    const s = model.summary({ print: false });
    // 64·64 + 64 = 4,160; 64·32 + 32 = 2,080; 32·10 + 10 = 330; total 6,570
    expect(s.layers).toEqual([
      { name: 'dense_1', type: 'dense', activation: 'relu', outputShape: [null, 64], params: 4160 },
      { name: 'dense_2', type: 'dense', activation: 'tanh', outputShape: [null, 32], params: 2080 },
      { name: 'dense_3', type: 'dense', activation: 'softmax', outputShape: [null, 10], params: 330 },
    ]);
    expect(s.totalParams).toBe(6570);
    expect(s.totalParams).toBe(model.paramCount);
    expect(s.trainableParams).toBe(6570);
    expect(s.inputs).toBe(64);
  });

  it('the table: one row per layer as Keras prints it, then the total', () => {
    const lines = model.summary({ print: false }).text.split('\n');
    expect(lines[0]).toBe('Input: (None, 64)');
    expect(lines[2].split(/\s{2,}/)).toEqual(['Layer (activation)', 'Output shape', 'Params']);
    expect(lines[4].split(/\s{2,}/)).toEqual(['dense_1 (relu)', '(None, 64)', '4,160']);
    expect(lines[5].split(/\s{2,}/)).toEqual(['dense_2 (tanh)', '(None, 32)', '2,080']);
    expect(lines[6].split(/\s{2,}/)).toEqual(['dense_3 (softmax)', '(None, 10)', '330']);
    expect(lines).toContain('Total params: 6,570');
    // the parameter column is right-aligned: every row ends at the same column
    const ends = new Set([lines[2], lines[4], lines[5], lines[6]].map((l) => l.length));
    expect(ends.size).toBe(1);
  });

  it('prints the table with console.log by default, or through a function; print: false prints nothing', () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const s = model.summary();
      expect(log).toHaveBeenCalledTimes(1);
      expect(log).toHaveBeenCalledWith(s.text);
      model.summary({ print: false });
      expect(log).toHaveBeenCalledTimes(1);
    } finally {
      log.mockRestore();
    }
    const seen: string[] = [];
    model.summary({ print: (t) => seen.push(t) });
    expect(seen).toEqual([model.summary({ print: false }).text]);
  });

  it('a single layer (logistic regression)', () => {
    const m = new Model({ inputs: 3, layers: [{ units: 1, activation: 'sigmoid' }], loss: 'binaryCrossEntropy', optimizer: { type: 'sgd', learningRate: 0.1 } }, new JsBackend());
    const s = m.summary({ print: false });
    expect(s.totalParams).toBe(4);
    expect(s.text).toMatch(/dense_1 \(sigmoid\) +\(None, 1\) +4\n/);
  });
});
