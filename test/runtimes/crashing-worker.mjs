// A model worker that crashes: the real one (dist/model-worker.js), plus an uncaught error thrown
// 100 ms after a fit starts, as a bug or an engine failure would. test/runtimes/worker-model.test.ts
// checks that the page's promises reject instead of waiting forever.
import '/dist/model-worker.js';

self.addEventListener('message', (event) => {
  if (event.data.op === 'fit') setTimeout(() => { throw new Error('the model worker fell over'); }, 100);
});
