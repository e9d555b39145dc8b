// A Cloudflare Worker for test/onnx.test.ts: ONNX bytes in (the request body), fromOnnx on the
// wasm backend, predict, toOnnx again; JSON out. workerd refuses eval and `new Function`, so this
// proves the protobuf code is static, and the bundle has no Node module.
import * as lib from '../../src/workerd.ts';

export default {
  async fetch(request) {
    try {
      const x = JSON.parse(decodeURIComponent(new URL(request.url).searchParams.get('x')));
      const bytes = new Uint8Array(await request.arrayBuffer());
      const model = await lib.fromOnnx(bytes, { backend: 'wasm' });
      const predictions = Array.from(model.predict(x).data);
      const again = lib.toOnnx(model);
      let evalAllowed = true;
      try {
        new Function('return 1')();
      } catch {
        evalAllowed = false;
      }
      return Response.json({ backend: model.backend.name, classes: model.spec.classes, predictions, again: Array.from(again), evalAllowed });
    } catch (e) {
      return new Response(String((e && e.stack) || e), { status: 500 });
    }
  },
};
