"""Runs the ONNX project's checker (Debian's python3-onnx) on ONNX files and prints one JSON line
per file: {"file", "ok", "error", "opset", "ir_version", "metadata"}. Used by test/onnx-torch.interop.ts.

    /usr/bin/python3 test/onnx/check_onnx.py FILE...
"""
import json
import sys

try:
    import onnx
except ImportError as e:
    sys.stderr.write(f"check_onnx.py: onnx is not importable ({e}); install Debian's python3-onnx\n")
    sys.exit(3)

for path in sys.argv[1:]:
    result = {'file': path, 'ok': False, 'error': None}
    try:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        result.update(ok=True, ir_version=model.ir_version,
                      opset={o.domain or 'ai.onnx': o.version for o in model.opset_import},
                      metadata={p.key: p.value for p in model.metadata_props},
                      inputs=[i.name for i in model.graph.input], outputs=[o.name for o in model.graph.output])
    except Exception as e:  # the checker's own message is what the test reports
        result['error'] = f'{type(e).__name__}: {e}'
    print(json.dumps(result))
