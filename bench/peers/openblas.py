#!/usr/bin/env python3
"""OpenBLAS sgemm through numpy, one JSON line per shape.

usage: OPENBLAS_NUM_THREADS=T python3 openblas.py '<json config>'
config: {"shapes": [{"m","n","k","transA","transB","label"}], "reps": 5, "target": 0.2}
With "serve": true it times on request instead, for paired rounds with deltaprop's own GEMM: it
checks every shape (one line each), prints {"ready": true, ...}, then answers each stdin line
"i units" with {"seconds": time of `units` products of shape i}.
Transposed operands are numpy views of the stored arrays (a.T of a (k,m) array), which numpy hands
to sgemm as a transpose flag, not a copy. Each result is checked on sampled entries against float64
before it is timed. Every line names the kernel OpenBLAS picked (threadpoolctl's "architecture"):
the bench runs this without OPENBLAS_CORETYPE, so that it is the one this CPU is best served by.
"""
import json
import os
import statistics
import sys
import time

import numpy as np


def emit(obj):
    print(json.dumps(obj), flush=True)


def blas_info():
    """OpenBLAS's version, kernel and threads as this process loaded it (threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return dict(kernel="unknown (python3-threadpoolctl not installed)")
    for i in threadpoolctl.threadpool_info():
        if i.get("internal_api") == "openblas":
            return dict(kernel=i.get("architecture") or "unknown", openblas=i.get("version"),
                        blas_threads=i.get("num_threads"), threading=i.get("threading_layer"))
    return dict(kernel="unknown (numpy is not linked to OpenBLAS)")


def operands(s, rng):
    a = rng.random((s["k"], s["m"]) if s["transA"] else (s["m"], s["k"]), dtype=np.float32) * 2 - 1
    b = rng.random((s["n"], s["k"]) if s["transB"] else (s["k"], s["n"]), dtype=np.float32) * 2 - 1
    return (a.T if s["transA"] else a), (b.T if s["transB"] else b)


def check(A, B, rng):
    """64 entries against float64, relative to sum |a*b| (as the deltaprop check does)."""
    c = A @ B
    m, n = c.shape
    ii, jj = rng.integers(0, m, 64), rng.integers(0, n, 64)
    A64, B64 = A.astype(np.float64), B.astype(np.float64)
    ref = np.einsum("ij,ji->i", A64[ii, :], B64[:, jj])
    mag = np.einsum("ij,ji->i", np.abs(A64[ii, :]), np.abs(B64[:, jj]))
    err = float(np.max(np.abs(c[ii, jj] - ref) / np.maximum(mag, 1e-30)))
    if not np.isfinite(err):
        err = float("inf")
    return dict(max_rel_err=err, ok=bool(err < 1e-4))


def serve(cfg, rng, info):
    ops = []
    for s in cfg["shapes"]:
        A, B = operands(s, rng)
        ops.append((A, B))
        emit(dict(shape=s["label"], check=check(A, B, rng)))
    emit(dict(ready=True, **info))
    for line in sys.stdin:
        if not line.strip():
            continue
        i, units = (int(v) for v in line.split())
        A, B = ops[i]
        t0 = time.perf_counter()
        for _ in range(units):
            A @ B
        emit(dict(seconds=time.perf_counter() - t0))


def main():
    cfg = json.loads(sys.argv[1])
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0)
    rng = np.random.default_rng(7)
    info = blas_info()
    if cfg.get("serve"):
        return serve(cfg, rng, info)
    emit(dict(info=True, system="openblas", numpy=np.__version__, threads=threads, **info))
    for s in cfg["shapes"]:
        m, n, k = s["m"], s["n"], s["k"]
        A, B = operands(s, rng)
        chk = check(A, B, rng)
        base = dict(workload="sgemm", system="openblas", shape=s["label"], threads=threads, kernel=info["kernel"], check=chk)
        if not chk["ok"]:
            emit(dict(base, error=f"check failed: relative error {chk['max_rel_err']:.2e} against float64"))
            continue
        flops = 2.0 * m * n * k
        t0 = time.perf_counter()
        A @ B
        one = max(time.perf_counter() - t0, 1e-7)
        units = max(1, round(cfg["target"] / one))
        reps = cfg["reps"]
        for _ in range(units):
            A @ B
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            for _ in range(units):
                A @ B
            times.append((time.perf_counter() - t0) / units)
        emit(dict(base, gflops=flops / statistics.median(times) / 1e9, min=flops / max(times) / 1e9,
                  max=flops / min(times) / 1e9, reps=reps))


if __name__ == "__main__":
    main()
