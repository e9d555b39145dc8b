#!/usr/bin/env python3
"""PyTorch peer of the deltaprop benchmark: the BENCH.md workloads, one JSON object per line.

usage: OPENBLAS_NUM_THREADS=1 python3 pytorch.py '<json config>'
config: {"workloads": [...], "threads": 2, "reps": 5, "target": 0.5, "fashion": dir|null,
         "epochs": 10, "limit": null|{"train": n, "test": n}}
OPENBLAS_NUM_THREADS=1 matters: Debian's torch calls OpenBLAS, whose own threads oversubscribe the
cores against torch's and make it ~10x slower.
Each result is checked before it is timed (the loss on a fixed batch falls after a few steps).
"""
import gzip
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

WORKLOADS = {
    "mnist-mlp": dict(sizes=[784, 128, 10], hidden="relu", output="softmax", opt="sgd", lr=0.1, batch=64),
    "wide-mlp": dict(sizes=[784, 512, 512, 10], hidden="relu", output="softmax", opt="adam", lr=1e-3, batch=256),
    "tiny-xor": dict(sizes=[2, 8, 1], hidden="tanh", output="sigmoid", opt="sgd", lr=0.5, batch=4),
    "fashion": dict(sizes=[784, 256, 128, 10], hidden="relu", output="softmax", opt="adam", lr=1e-3, batch=128),
}


def emit(obj):
    print(json.dumps(obj), flush=True)


def build(w):
    layers = []
    for i in range(len(w["sizes"]) - 1):
        layers.append(torch.nn.Linear(w["sizes"][i], w["sizes"][i + 1]))
        if i < len(w["sizes"]) - 2:
            layers.append(torch.nn.ReLU() if w["hidden"] == "relu" else torch.nn.Tanh())
    model = torch.nn.Sequential(*layers)
    # the softmax / sigmoid is fused into the loss, as a PyTorch user writes it
    loss_fn = torch.nn.CrossEntropyLoss() if w["output"] == "softmax" else torch.nn.BCEWithLogitsLoss()
    opt = torch.optim.SGD(model.parameters(), lr=w["lr"]) if w["opt"] == "sgd" else torch.optim.Adam(model.parameters(), lr=w["lr"])
    return model, loss_fn, opt


def pool(name, w):
    """Random inputs in [0,1) and random labels (XOR's truth table for tiny-xor), ~4 MB."""
    inp, out, b = w["sizes"][0], w["sizes"][-1], w["batch"]
    batches = min(1024, max(4, (1 << 20) // (b * inp)))
    g = torch.Generator().manual_seed(5)
    if name == "tiny-xor":
        x = torch.tensor([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=torch.float32).repeat(batches, 1)
        y = torch.tensor([[0], [1], [1], [0]], dtype=torch.float32).repeat(batches, 1)
    else:
        x = torch.rand(batches * b, inp, generator=g)
        y = torch.randint(0, out, (batches * b,), generator=g)
    return [(x[i * b:(i + 1) * b], y[i * b:(i + 1) * b]) for i in range(batches)]


def step(model, loss_fn, opt, x, y):
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    opt.step()
    return loss


def measure(run, work_per_unit, reps, target):
    """Same protocol as bench/timing.ts: timed warm-up sizes a repetition, one more warm-up, reps."""
    run(1)
    t0 = time.perf_counter()
    run(1)
    one = max(time.perf_counter() - t0, 1e-7)
    units = max(1, round(target / one))
    if one > 2 * target:
        reps = min(reps, 3)
    run(units)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        run(units)
        times.append(time.perf_counter() - t0)
    work = units * work_per_unit
    return dict(samples_per_s=work / statistics.median(times), min=work / max(times), max=work / min(times), reps=reps, units=units)


def train_workload(name, cfg):
    w = WORKLOADS[name]
    torch.manual_seed(1)
    model, loss_fn, opt = build(w)
    batches = pool(name, w)
    cx, cy = batches[0]
    with torch.no_grad():
        before = loss_fn(model(cx), cy).item()
    for _ in range(8):
        step(model, loss_fn, opt, cx, cy)
    with torch.no_grad():
        after = loss_fn(model(cx), cy).item()
    check = dict(loss_before=before, loss_after=after, ok=bool(after < before))
    if not check["ok"]:
        emit(dict(workload=name, system="pytorch", error=f"check failed: loss {before:.4g} -> {after:.4g} did not fall", check=check))
        return
    n = len(batches)

    def run(units):
        for _ in range(units):
            for x, y in batches:
                step(model, loss_fn, opt, x, y)

    r = measure(run, n * w["batch"], cfg["reps"], cfg["target"])
    emit(dict(workload=name, system="pytorch", threads=torch.get_num_threads(), check=check, **r))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        buf = f.read()
    nd = buf[3]
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def fashion(cfg):
    d, limit = cfg["fashion"], cfg.get("limit") or {}
    tx = read_idx(os.path.join(d, "train-images-idx3-ubyte.gz"))
    ty = read_idx(os.path.join(d, "train-labels-idx1-ubyte.gz"))
    vx = read_idx(os.path.join(d, "t10k-images-idx3-ubyte.gz"))
    vy = read_idx(os.path.join(d, "t10k-labels-idx1-ubyte.gz"))
    nt, nv = min(len(tx), limit.get("train", len(tx))), min(len(vx), limit.get("test", len(vx)))
    X = torch.from_numpy(tx[:nt].reshape(nt, 784).astype(np.float32) / 255)
    Y = torch.from_numpy(ty[:nt].astype(np.int64))
    VX = torch.from_numpy(vx[:nv].reshape(nv, 784).astype(np.float32) / 255)
    VY = torch.from_numpy(vy[:nv].astype(np.int64))
    w = WORKLOADS["fashion"]
    torch.manual_seed(1)
    model, loss_fn, opt = build(w)
    g = torch.Generator().manual_seed(3)
    secs, accs, losses = [], [], []
    for _ in range(cfg["epochs"]):
        order = torch.randperm(nt, generator=g)
        t0 = time.perf_counter()
        total = 0.0
        for s in range(0, nt, w["batch"]):
            idx = order[s:s + w["batch"]]
            total += step(model, loss_fn, opt, X[idx], Y[idx]).item() * len(idx)
        secs.append(time.perf_counter() - t0)
        losses.append(total / nt)
        with torch.no_grad():
            accs.append((model(VX).argmax(1) == VY).float().mean().item())
    emit(dict(workload="fashion", system="pytorch", threads=torch.get_num_threads(), epoch_seconds=secs,
              test_accuracy=accs, train_loss=losses, samples_per_s=nt / statistics.median(secs)))


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    emit(dict(info=True, system="pytorch", version=torch.__version__, threads=torch.get_num_threads(),
              openblas_threads=os.environ.get("OPENBLAS_NUM_THREADS")))
    for name in cfg["workloads"]:
        try:
            if name == "fashion":
                fashion(cfg)
            else:
                train_workload(name, cfg)
        except Exception as e:  # one failing workload must not hide the others
            emit(dict(workload=name, system="pytorch", error=f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    main()
