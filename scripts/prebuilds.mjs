#!/usr/bin/env node
// Makes the N-API prebuilds that ship in the package (npm pack runs this as `prepack`):
//   prebuilds/linux-x64/deltaprop.glibc.node      built with the host compiler
//   prebuilds/linux-arm64/deltaprop.glibc.node  cross-compiled with Debian's g++-aarch64-linux-gnu
// A release needs both, so a missing cross compiler fails the pack, naming the Debian package.
// DELTAPROP_PREBUILDS=linux-x64 asks for the host prebuild alone (tests, local packs); the
// script then says, last, that the package has no arm64 prebuild.
//
// Each build runs in a staging copy of binding.gyp and native/ so that the repo's own build/
// (the addon the tests and benchmarks load) is never replaced by a cross build. A prebuild needs
// what Debian 12 builds against: glibc >= 2.34 and GCC 12's libstdc++ (GLIBCXX_3.4.30), as on
// Debian 12 and Ubuntu 22.04 or later. (Linking libstdc++ statically would need glibc 2.36.)
// Elsewhere the install script finds that the prebuild does not load and compiles instead.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

/** Every prebuild a release carries: folder name, node-gyp arch, tool prefix ('' = host tools). */
const TARGETS = [
  { name: 'linux-x64', arch: 'x64', tools: '' },
  { name: 'linux-arm64', arch: 'arm64', tools: process.env.DELTAPROP_ARM64_TOOLS ?? 'aarch64-linux-gnu-' },
];

function fail(message) {
  console.error(`deltaprop prebuilds: error: ${message}`);
  process.exit(1);
}

function onPath(cmd) {
  if (cmd.includes('/')) return existsSync(cmd);
  return (process.env.PATH ?? '').split(delimiter).some((d) => d && existsSync(join(d, cmd)));
}

function run(cmd, args, opts) {
  return new Promise((resolve) => {
    const out = [];
    const child = spawn(cmd, args, { ...opts, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => out.push(d));
    child.on('error', (e) => resolve({ code: -1, out: `${e.message}\n` }));
    child.on('close', (code) => resolve({ code: code ?? -1, out: Buffer.concat(out).toString() }));
  });
}

const wanted = (process.env.DELTAPROP_PREBUILDS || TARGETS.map((t) => t.name).join(','))
  .split(',').map((s) => s.trim()).filter(Boolean);
for (const w of wanted) {
  if (!TARGETS.some((t) => t.name === w)) fail(`DELTAPROP_PREBUILDS names '${w}'; the targets are ${TARGETS.map((t) => t.name).join(', ')}`);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  fail(`prebuilds are made on linux-x64 (this is ${process.platform}-${process.arch})`);
}
const targets = TARGETS.filter((t) => wanted.includes(t.name));
for (const t of targets) {
  if (!t.tools) continue;
  const missing = ['g++', 'gcc', 'ar', 'strip'].map((tool) => `${t.tools}${tool}`).filter((c) => !onPath(c));
  if (missing.length) {
    fail(`the ${t.name} prebuild needs a cross compiler: ${missing.join(', ')} not found. Install Debian's ` +
      'g++-aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu), or set DELTAPROP_PREBUILDS=linux-x64 ' +
      'for a package without the arm64 prebuild (not for a release).');
  }
}
for (const tool of ['prebuildify', 'node-gyp']) {
  if (!existsSync(bin(tool))) fail(`${bin(tool)} is missing: run npm install first`);
}

/**
 * Node's headers: npm's `nodedir` when set, else the running Node's own (include/node beside its
 * bin/), so that node-gyp never downloads them. N-API headers are the same for every arch.
 */
function nodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = dirname(dirname(process.execPath));
  if (existsSync(join(prefix, 'include', 'node', 'node_api.h'))) return prefix;
  fail(`Node's headers are not in ${join(prefix, 'include', 'node')}: set npm_config_nodedir to a folder holding include/node`);
}

async function build(t) {
  const stage = mkdtempSync(join(tmpdir(), `deltaprop-prebuild-${t.name}-`));
  try {
    cpSync(join(root, 'binding.gyp'), join(stage, 'binding.gyp'));
    cpSync(join(root, 'native'), join(stage, 'native'), { recursive: true, filter: (src) => !src.startsWith(join(root, 'native', 'test')) });
    writeFileSync(join(stage, 'package.json'), JSON.stringify({ name: 'deltaprop', private: true }));
    // binding.gyp finds node-addon-api's headers with require() from the staging folder
    symlinkSync(join(root, 'node_modules'), join(stage, 'node_modules'));
    const env = { ...process.env, npm_config_nodedir: nodeDir() };
    if (t.tools) Object.assign(env, { CC: `${t.tools}gcc`, CXX: `${t.tools}g++`, LINK: `${t.tools}g++`, AR: `${t.tools}ar` });
    const args = ['--napi', '--strip', '--tag-libc', '--arch', t.arch, '--target', process.versions.node,
      '--node-gyp', bin('node-gyp'), '--cwd', stage];
    if (t.tools) args.push('--strip-bin', `${t.tools}strip`);
    const started = Date.now();
    const r = await run(bin('prebuildify'), args, { cwd: stage, env });
    if (r.code !== 0) return { t, error: `prebuildify for ${t.name} failed (exit ${r.code}):\n${r.out.slice(-4000)}` };
    const dir = join(stage, 'prebuilds', t.name);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
    if (files.length !== 1) return { t, error: `prebuildify for ${t.name} left ${files.length} .node files in ${dir}` };
    return { t, dir, file: files[0], seconds: (Date.now() - started) / 1000 };
  } catch (e) {
    return { t, error: `${t.name}: ${e.message}` };
  }
}

const results = await Promise.all(targets.map(build));
const errors = results.filter((r) => r.error);
if (errors.length) fail(errors.map((r) => r.error).join('\n'));
// Replace prebuilds/ as a whole, so that no prebuild of older sources rides along.
rmSync(join(root, 'prebuilds'), { recursive: true, force: true });
for (const r of results) {
  mkdirSync(join(root, 'prebuilds', r.t.name), { recursive: true });
  cpSync(join(r.dir, r.file), join(root, 'prebuilds', r.t.name, r.file));
  rmSync(dirname(dirname(r.dir)), { recursive: true, force: true });
  console.error(`deltaprop prebuilds: prebuilds/${r.t.name}/${r.file} (${r.seconds.toFixed(0)} s)`);
}
const skipped = TARGETS.filter((t) => !wanted.includes(t.name)).map((t) => t.name);
if (skipped.length) {
  console.error(`deltaprop prebuilds: WARNING: no prebuild for ${skipped.join(', ')} (DELTAPROP_PREBUILDS=${wanted.join(',')}): ` +
    'users there compile at install or run on wasm. Not a release package.');
}
