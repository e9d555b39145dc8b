// The table of installs that the install and Node-version tests measure: package manager,
// scripts, Node → backend, ISA, install time. Each row is appended to .tmp/install-table.jsonl
// (and printed), for the release notes.
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

export interface InstallRow {
  manager: string;
  scripts: 'default' | 'ignored';
  prebuild: boolean;
  compiler: boolean;
  node: string;
  backend: string;
  isa: string;
  seconds: number;
  wasmIsa?: string;
}

export function recordInstall(row: InstallRow): void {
  const dir = join(import.meta.dirname, '..', '.tmp');
  mkdirSync(dir, { recursive: true });
  appendFileSync(join(dir, 'install-table.jsonl'), `${JSON.stringify({ ...row, at: new Date().toISOString() })}\n`);
  console.log(`install: ${row.manager} scripts=${row.scripts} prebuild=${row.prebuild} compiler=${row.compiler} node ${row.node}` +
    ` → ${row.backend} ${row.isa}${row.wasmIsa ? ` (wasm ${row.wasmIsa})` : ''}, ${row.seconds.toFixed(1)} s`);
}
