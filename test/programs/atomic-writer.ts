// A separate process that saves with writeFileAtomic, for the tests that need one: killed with
// SIGKILL in the middle of a save, or run as another user.
//   atomic-writer loop PATH MB   save MB megabytes to PATH over and over, until killed
//   atomic-writer once PATH [MB] save once (a line of text, or MB megabytes); print {"ok":true}
//                                or {"error":"…","name":"…"}
import { writeFileAtomic } from '../../src/io/files.js';

const [mode, path, mb] = process.argv.slice(2);
if (mode === 'loop') {
  const bytes = new Uint8Array(Number(mb) * 1024 * 1024).fill(7);
  process.stdout.write('ready\n');
  for (;;) await writeFileAtomic(path, bytes, 'model');
} else {
  try {
    await writeFileAtomic(path, mb ? new Uint8Array(Number(mb) * 1024 * 1024) : 'hello\n', 'model');
    process.stdout.write(`${JSON.stringify({ ok: true })}\n`);
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message, name: (e as Error).name })}\n`);
  }
}
