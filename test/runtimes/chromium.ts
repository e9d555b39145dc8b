// Headless Chromium for the browser tests, from npm only: the binary shipped (brotli-compressed)
// inside @sparticuz/chromium, driven by playwright-core. Extracted once per package version into
// the repository's .tmp/ (not the shared /tmp/chromium that the package's own executablePath()
// uses, where another checkout's half-written copy could be picked up).
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createBrotliDecompress } from 'node:zlib';
import { chromium, type Browser } from 'playwright-core';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The path of the extracted Chromium binary of the installed @sparticuz/chromium. */
export async function chromiumPath(): Promise<string> {
  const require = createRequire(import.meta.url);
  // the package's exports have no ./package.json: find its folder from the main file
  const pkgDir = resolve(dirname(require.resolve('@sparticuz/chromium')), '..');
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')) as { version: string };
  const dir = join(root, '.tmp', `sparticuz-chromium-${version}`);
  const exe = join(dir, 'chromium');
  if (existsSync(exe)) return exe;
  mkdirSync(dir, { recursive: true });
  const partial = `${exe}.${process.pid}.part`;
  await pipeline(createReadStream(join(pkgDir, 'bin/chromium.br')), createBrotliDecompress(), createWriteStream(partial, { mode: 0o755 }));
  renameSync(partial, exe); // atomic: a concurrent run sees no file or the whole one
  return exe;
}

/**
 * Launches it headless. This machine has no network beyond the npm registry: every background
 * service that would call out is off. As root, Chromium refuses to start with its sandbox.
 */
export async function launchChromium(): Promise<Browser> {
  const args = ['--disable-gpu', '--disable-quic', '--no-first-run', '--no-default-browser-check',
    '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-domain-reliability',
    '--disable-breakpad', '--disable-dev-shm-usage', '--metrics-recording-only', '--mute-audio'];
  if (process.getuid?.() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: await chromiumPath(), headless: true, args, timeout: 60_000 });
}
