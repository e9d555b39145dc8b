// `deltaprop info`: which backend runs and why, and the status of every backend.
import { Command } from 'commander';
import { backendInfo } from '../index.js';
import { out } from './common.js';

export function infoCommand(version: string): Command {
  return new Command('info')
    .summary('which backend runs here, its instruction set and threads, and why the others do not')
    .description('Probe every backend (native, wasm, js) and report the one chosen by default and why. '
      + 'DELTAPROP_BACKEND, DELTAPROP_THREADS and DELTAPROP_ISA are honoured as in the library.')
    .option('--json', 'print one JSON object: {"backend","isa","threads","why","backends":{"native":{"ok",…},…}}')
    .addHelpText('after', `
Examples:
  $ deltaprop info
  $ deltaprop info --json
  $ DELTAPROP_BACKEND=wasm deltaprop info`)
    .action(async (flags: { json?: boolean }) => {
      const r = await backendInfo();
      if (flags.json) {
        out(JSON.stringify({ backend: r.backend, isa: r.isa, threads: r.threads, why: r.why, backends: r.backends }));
        return;
      }
      out(`deltaprop ${version} on Node ${process.versions.node} (${process.platform}-${process.arch})`);
      out(`backend: ${r.backend} (${r.isa}, ${r.threads} thread${r.threads === 1 ? '' : 's'}): ${r.why}`);
      for (const [name, s] of Object.entries(r.backends)) {
        out(s.ok ? `  ${name.padEnd(6)} ok   ${s.isa ?? ''}${s.threads ? `, ${s.threads} thread${s.threads === 1 ? '' : 's'}` : ''}${s.threadsReason ? ` (${s.threadsReason})` : ''}`
          : `  ${name.padEnd(6)} no   ${s.reason ?? ''}`);
      }
    });
}
