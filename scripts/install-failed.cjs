#!/usr/bin/env node
// deltaprop's install script runs this when node-gyp-build found no addon that loads and could
// not compile one (no C++ toolchain, most often). The install still succeeds: the library runs
// on wasm. It leaves build/install-failed.json, so that the native loader can tell "the script
// ran and the build failed" from "the package manager skipped the script", and names the
// package manager from its user agent. Package managers hide a dependency's output unless it
// fails, so `deltaprop info` is where users see the full reason and the fix.
'use strict';
const { mkdirSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const record = {
  userAgent: process.env.npm_config_user_agent || '',
  target: `${process.platform}-${process.arch}`,
};
try {
  mkdirSync(join(root, 'build'), { recursive: true });
  writeFileSync(join(root, 'build', 'install-failed.json'), `${JSON.stringify(record)}\n`);
} catch (e) {
  console.warn(`deltaprop: could not record the failed build (${e.message})`);
}
console.warn(`deltaprop: native addon not built (no prebuild for ${record.target} loads and the compile failed); ` +
  'the wasm and js backends will be used. `npx deltaprop info` says why and how to fix it.');
