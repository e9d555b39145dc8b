// Paired, alternating rounds of the benchmark on two builds of deltaprop (two checkouts, each with
// its dist/ and addon built), so a change is judged against the code before it on the same machine
// in the same minutes. Each round runs every (workload, backend) once on each build, in ABAB order
// one round and BABA the next, so drift in the machine's speed falls on both sides alike.
//   node bench/paired.mjs --base ../before --new . [--rounds 5] [--workload tiny-xor,mnist-mlp]
//        [--backend native,wasm] [--reps 3] [--epochs 2]
// Prints a markdown table: each build's median samples/s, the median of the per-round ratios
// new ÷ base and their range, and whether the two builds agree on the checked results.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command } from 'commander';

const program = new Command('paired')
  .requiredOption('--base <dir>', 'checkout of the code before the change')
  .requiredOption('--new <dir>', 'checkout of the change')
  .option('--rounds <n>', 'paired rounds', (v) => Number.parseInt(v, 10), 5)
  .option('--workload <names>', 'comma-separated workloads', 'tiny-xor,mnist-mlp,wide-mlp,fashion')
  .option('--backend <names>', 'comma-separated backends', 'native,wasm')
  .option('--reps <n>', 'timed repetitions per run', '3')
  .option('--epochs <n>', 'Fashion-MNIST epochs per run', '2')
  .parse();
const opts = program.opts();
const builds = { base: resolve(opts.base), new: resolve(opts.new) };
for (const [name, dir] of Object.entries(builds)) {
  if (!existsSync(join(dir, 'dist', 'bench.js'))) program.error(`--${name} ${dir}: no dist/bench.js (run npm run bench there once, or tsup)`);
}
if (!(opts.rounds >= 1)) program.error(`--rounds must be a positive integer, got ${opts.rounds}`);

function runOnce(dir, workload, backend) {
  const out = execFileSync(process.execPath, [join(dir, 'dist', 'bench.js'), '--json', '--no-out', '--peers', 'none',
    '--workload', workload, '--backend', backend, '--reps', opts.reps, '--epochs', opts.epochs], {
    cwd: dir, encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'pipe'],
  });
  // a workload may report one thread and all threads: the all-threads row is the one compared
  const rows = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    .filter((r) => r.workload === workload && r.system === `deltaprop-${backend}` && r.samples_per_s > 0)
    .sort((a, b) => (b.threads ?? 1) - (a.threads ?? 1));
  if (rows.length === 0) throw new Error(`${dir}: ${workload} on ${backend} gave no result: ${out.slice(0, 400)}`);
  return rows[0];
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const h = s.length >> 1; return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2; };
const pairs = opts.workload.split(',').flatMap((w) => opts.backend.split(',').map((b) => [w, b]));
const results = new Map(pairs.map(([w, b]) => [`${w}/${b}`, { base: [], new: [], ratios: [], sameResult: true }]));

for (let round = 0; round < opts.rounds; round++) {
  const order = round % 2 === 0 ? ['base', 'new'] : ['new', 'base'];
  for (const [w, b] of pairs) {
    const r = results.get(`${w}/${b}`);
    const got = {};
    for (const build of order) got[build] = runOnce(builds[build], w, b);
    r.base.push(got.base.samples_per_s);
    r.new.push(got.new.samples_per_s);
    r.ratios.push(got.new.samples_per_s / got.base.samples_per_s);
    // Same bits give the same checked numbers: the loss after the checked steps, or the test accuracy.
    const key = (x) => JSON.stringify(x.test_accuracy ?? x.check?.loss_after ?? null);
    if (key(got.base) !== key(got.new)) r.sameResult = false;
    process.stderr.write(`round ${round + 1}/${opts.rounds} ${w} ${b}: ${(r.ratios.at(-1)).toFixed(3)}\n`);
  }
}

console.log(`| workload | backend | base samples/s | new samples/s | new ÷ base (median) | range over ${opts.rounds} rounds | same checked result |`);
console.log('|---|---|---|---|---|---|---|');
for (const [w, b] of pairs) {
  const r = results.get(`${w}/${b}`);
  const fmt = (x) => Math.round(x).toLocaleString('en-US');
  console.log(`| ${w} | ${b} | ${fmt(median(r.base))} | ${fmt(median(r.new))} | ${median(r.ratios).toFixed(3)} | ` +
    `${Math.min(...r.ratios).toFixed(3)}–${Math.max(...r.ratios).toFixed(3)} | ${r.sameResult ? 'yes' : 'no'} |`);
}
