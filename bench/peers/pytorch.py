#!/usr/bin/env python3
"""PyTorch peer of the deltaprop benchmark: the benchmark workloads (bench/README.md), one JSON object per line.

usage: OPENBLAS_NUM_THREADS=T python3 pytorch.py '<json config>'
config: {"workloads": [...], "threads": 2, "reps": 5, "target": 0.5, "fashion": dir|null,
         "epochs": 10, "limit": null|{"train": n, "test": n}, "probe": true, "probe_only": false}
Debian's torch does its GEMMs in the system OpenBLAS, whose threads are its own: torch's
set_num_threads does not reach them. OpenBLAS at T threads beside torch at T oversubscribes the
cores (~10x slower on a busy machine), OpenBLAS at 1 leaves the GEMMs on one core. So the process
starts with OpenBLAS's pool at T threads and, with "probe", times a few steps of each split (torch
T / OpenBLAS 1, torch 1 / OpenBLAS T, both T) in alternating rounds and trains with the fastest;
every row says which it used. With "probe_only" it only reports each workload's samples/s at its
best split on random data (the bench runs that once per SIMD level of torch's own kernels,
ATEN_CPU_CAPABILITY, and trains with the faster).
Each result is checked before it is timed: OpenBLAS's kernel multiplies correctly (against float64),
and the loss on a fixed batch falls after a few steps.
"""
import gzip
import json
import os
import re
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


def blas():
    """threadpoolctl's view of the OpenBLAS torch loaded (None without threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    for i in threadpoolctl.threadpool_info():
        if i.get("internal_api") == "openblas":
            return i
    return None


def set_blas_threads(n):
    try:
        import threadpoolctl
        threadpoolctl.threadpool_limits(limits=n, user_api="blas")
    except ImportError:
        pass


def build_settings():
    """Torch's build, from torch.__config__.show(): its BLAS, oneDNN (mkldnn), build type, and the
    SIMD level of its own (non-GEMM) kernels, which ATEN_CPU_CAPABILITY can raise."""
    text = torch.__config__.show()

    def field(name):
        m = re.search(r"\b" + name + r"=([^,\n]*)", text)
        return m.group(1).strip() if m else None

    cap = re.search(r"CPU capability usage: (\S+)", text)
    return dict(blas_info=field("BLAS_INFO"), build_type=field("BUILD_TYPE"), debug=bool(torch.version.debug),
                cpu_capability=cap.group(1) if cap else None, aten_cpu_capability_env=os.environ.get("ATEN_CPU_CAPABILITY"),
                mkldnn=dict(built=field("USE_MKLDNN"), available=bool(torch.backends.mkldnn.is_available()),
                            enabled=bool(torch.backends.mkldnn.enabled)))


def kernel_check():
    """torch.mm (OpenBLAS's sgemm underneath) against float64 on the shapes a step uses."""
    g = torch.Generator().manual_seed(9)
    worst = 0.0
    for m, k, n in [(64, 784, 128), (256, 512, 512), (128, 256, 10)]:
        a = torch.rand(m, k, generator=g) * 2 - 1
        b = torch.rand(k, n, generator=g) * 2 - 1
        for x, y in [(a, b), (a.t().contiguous().t(), b), (a, b.t().contiguous().t())]:
            c = torch.mm(x, y).double()
            ref = torch.mm(x.double(), y.double())
            mag = torch.mm(x.double().abs(), y.double().abs()).clamp_min(1e-30)
            err = float(((c - ref).abs() / mag).max())
            worst = max(worst, err if err == err else float("inf"))
    return dict(max_rel_err=worst, ok=bool(worst < 1e-4))


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


def splits(threads):
    """(torch threads, OpenBLAS threads) to try; one thread has only one."""
    if threads <= 1:
        return [(1, 1)]
    return [(threads, 1), (1, threads), (threads, threads)]


def apply_split(split):
    torch.set_num_threads(split[0])
    set_blas_threads(split[1])


def probe(make_run, threads, target):
    """Seconds per unit of each thread split, median of 3 alternating rounds; the fastest split first."""
    candidates = splits(threads)
    if len(candidates) == 1:
        return candidates[0], {}
    run = make_run()
    apply_split(candidates[0])
    run(1)
    t0 = time.perf_counter()
    run(1)
    units = max(1, round(target / 3 / max(time.perf_counter() - t0, 1e-7)))
    times = {c: [] for c in candidates}
    for r in range(3):
        for c in (candidates if r % 2 == 0 else candidates[::-1]):
            apply_split(c)
            run(1)
            t0 = time.perf_counter()
            run(units)
            times[c].append(time.perf_counter() - t0)
    med = {c: statistics.median(v) for c, v in times.items()}
    best = min(med, key=med.get)
    return best, {f"torch {c[0]} / openblas {c[1]}": round(med[best] / v, 3) for c, v in med.items()}


def probe_rate(name, cfg):
    """Samples/s of the workload on a throwaway model with random data, at its fastest thread
    split: how the bench compares torch's SIMD levels (ATEN_CPU_CAPABILITY is read at start-up,
    so each level is its own process)."""
    w = WORKLOADS[name]
    torch.manual_seed(2)
    model, loss_fn, opt = build(w)
    batches = pool(name, w)[:32]

    def make():
        def run(units):
            for _ in range(units):
                for x, y in batches:
                    step(model, loss_fn, opt, x, y)
        return run

    split, _ = probe(make, cfg["threads"], cfg["target"])
    apply_split(split)
    run = make()
    run(1)
    t0 = time.perf_counter()
    run(1)
    units = max(1, round(cfg["target"] / 3 / max(time.perf_counter() - t0, 1e-7)))
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        run(units)
        times.append(time.perf_counter() - t0)
    emit(dict(workload=name, system="pytorch", probe=True, samples_per_s=units * len(batches) * w["batch"] / statistics.median(times),
              torch_threads=split[0], blas_threads=split[1]))


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

    def runner(m, o):
        def run(units):
            for _ in range(units):
                for x, y in batches:
                    step(m, loss_fn, o, x, y)
        return run

    def throwaway():
        torch.manual_seed(2)
        m, _, o = build(w)
        return runner(m, o)

    split, tried = probe(throwaway, cfg["threads"], cfg["target"]) if cfg.get("probe", True) else (splits(cfg["threads"])[0], {})
    apply_split(split)
    r = measure(runner(model, opt), n * w["batch"], cfg["reps"], cfg["target"])
    emit(dict(workload=name, system="pytorch", threads=max(split), torch_threads=split[0], blas_threads=split[1],
              **({"split_speeds": tried} if tried else {}), check=check, **r))


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

    def throwaway():
        torch.manual_seed(2)
        m, lf, o = build(w)
        batches = [(X[s:s + w["batch"]], Y[s:s + w["batch"]]) for s in range(0, min(nt, 32 * w["batch"]), w["batch"])]
        def run(units):
            for _ in range(units):
                for x, y in batches:
                    step(m, lf, o, x, y)
        return run

    split, tried = probe(throwaway, cfg["threads"], cfg["target"]) if cfg.get("probe", True) else (splits(cfg["threads"])[0], {})
    apply_split(split)
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
    emit(dict(workload="fashion", system="pytorch", threads=max(split), torch_threads=split[0], blas_threads=split[1],
              **({"split_speeds": tried} if tried else {}), epoch_seconds=secs,
              test_accuracy=accs, train_loss=losses, samples_per_s=nt / statistics.median(secs)))


def main():
    cfg = json.loads(sys.argv[1])
    cfg["threads"] = int(cfg.get("threads", 2))
    torch.set_num_threads(cfg["threads"])
    # Subnormals as 0 (FTZ/DAZ), PyTorch's own switch for speed: over a long run Adam's moments for
    # always-zero inputs decay into the subnormal range, where every x86 multiply takes an assist.
    flush_denormal = torch.set_flush_denormal(True)
    b = blas()
    kernel = (b.get("architecture") or "unknown") if b else "unknown (python3-threadpoolctl not installed)"
    chk = kernel_check()
    emit(dict(info=True, system="pytorch", version=torch.__version__, kernel=kernel,
              openblas=b.get("version") if b else None, threads=cfg["threads"],
              interop_threads=torch.get_num_interop_threads(), flush_denormal=flush_denormal, openblas_pool=b.get("num_threads") if b else None,
              kernel_check=chk, **build_settings()))
    if not chk["ok"]:
        for name in cfg["workloads"]:
            emit(dict(workload=name, system="pytorch", kernel=kernel, check=dict(kernel_check=chk, ok=False),
                      error=f"check failed: OpenBLAS kernel {kernel}: torch.mm off by {chk['max_rel_err']:.2e} relative to float64"))
        return
    for name in cfg["workloads"]:
        try:
            if cfg.get("probe_only"):
                probe_rate(name, cfg)
            elif name == "fashion":
                fashion(cfg)
            else:
                train_workload(name, cfg)
        except Exception as e:  # one failing workload must not hide the others
            emit(dict(workload=name, system="pytorch", error=f"{type(e).__name__}: {e}"))


if __name__ == "__main__":
    main()
