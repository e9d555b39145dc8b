"""Writes ONNX files of small PyTorch MLPs with torch.onnx.export, and PyTorch's own predictions
for a fixed input, for test/onnx-torch.interop.ts. Run with Debian's python3-torch:

    /usr/bin/python3 test/onnx/make_torch_models.py OUT_DIR

OUT_DIR gets one CASE.onnx per case and manifest.json: {case: {file, opset, input, expected}}
(expected is null for the graphs deltaprop must refuse, with the op or shape it must name).
"""
import json
import os
import sys

try:
    import torch
    from torch import nn
except ImportError as e:  # the test shows this line as the reason
    sys.stderr.write(f"make_torch_models.py: PyTorch is not importable ({e}); install Debian's python3-torch\n")
    sys.exit(3)


class Affine(nn.Module):
    """x @ W + b: exports as MatMul + Add (Linear on a matrix exports as Gemm)."""

    def __init__(self, inp, out):
        super().__init__()
        self.w = nn.Parameter(torch.randn(inp, out) * 0.5)
        self.b = nn.Parameter(torch.randn(out) * 0.1)

    def forward(self, x):
        return torch.matmul(x, self.w) + self.b


def cases():
    # (name, model, input features, opset, what deltaprop must say for a refused graph[, export options])
    yield 'relu_softmax', nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3), nn.Softmax(dim=1)), 5, 13, None
    yield 'deep_leaky_tanh_sigmoid', nn.Sequential(
        nn.Linear(4, 16), nn.LeakyReLU(0.1), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1), nn.Sigmoid()), 4, 9, None
    yield 'matmul_add', nn.Sequential(
        nn.Linear(6, 7, bias=False), nn.Sigmoid(), Affine(7, 5), nn.Tanh(), Affine(5, 4), nn.Softmax(dim=-1)), 6, 17, None
    yield 'linear_output', nn.Sequential(nn.Linear(3, 10), nn.ReLU(), nn.Linear(10, 2)), 3, 11, None
    yield 'flatten_first', nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Softmax(dim=1)), 4, 11, None
    yield 'unfolded_transpose', nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 2), nn.Softmax(dim=1)), 3, 13, None, {'do_constant_folding': False}
    yield 'elu', nn.Sequential(nn.Linear(3, 4), nn.ELU(), nn.Linear(4, 2)), 3, 13, 'node 1 (Elu'
    yield 'conv', nn.Sequential(nn.Conv1d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(12, 2)), (1, 8), 13, "shape [?, 1, 8]"


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(1)
    manifest = {}
    for name, model, features, opset, refusal, *options in cases():
        model.eval()
        shape = (7,) + (features if isinstance(features, tuple) else (features,))
        x = torch.randn(*shape) * 2
        path = os.path.join(out_dir, f'{name}.onnx')
        torch.onnx.export(model, (x,), path, input_names=['x'], output_names=['y'], opset_version=opset,
                          dynamic_axes={'x': {0: 'batch'}, 'y': {0: 'batch'}}, **(options[0] if options else {}))
        with torch.no_grad():
            expected = model(x)
        manifest[name] = {
            'file': path, 'opset': opset, 'refusal': refusal,
            'input': {'shape': list(x.shape), 'data': x.flatten().tolist()},
            'expected': {'shape': list(expected.shape), 'data': expected.flatten().tolist()},
            'torch': torch.__version__,
        }
    with open(os.path.join(out_dir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f)


if __name__ == '__main__':
    main()
