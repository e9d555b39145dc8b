#!/usr/bin/env python3
"""OpenBLAS sgemm through numpy (the approach of shared/tools/openblas-sgemm), one JSON line per shape.

usage: OPENBLAS_NUM_THREADS=T python3 openblas.py '<json config>'
config: {"shapes": [{"m","n","k","transA","transB","label"}], "reps": 5, "target": 0.2}
With "serve": true it times on request instead, for paired rounds with deltaprop's own GEMM: each
line on stdin {"shape": label, "units": u} is answered by {"seconds": time of u products}.
Transposed operands are numpy views of the stored arrays (a.T of a (k,m) array), which numpy hands
to sgemm as a transpose flag, not a copy. Each result is checked on sampled entries against float64.
"""
import json
import os
import statistics
import sys
import time

import numpy as np


def emit(obj):
    print(json.dumps(obj), flush=True)


def serve(cfg, rng):
    ops = {}
    for s in cfg["shapes"]:
        a = rng.random((s["k"], s["m"]) if s["transA"] else (s["m"], s["k"]), dtype=np.float32) * 2 - 1
        b = rng.random((s["n"], s["k"]) if s["transB"] else (s["k"], s["n"]), dtype=np.float32) * 2 - 1
        ops[s["label"]] = (a.T if s["transA"] else a, b.T if s["transB"] else b)
    emit(dict(ready=True))
    for line in sys.stdin:
        req = json.loads(line)
        A, B = ops[req["shape"]]
        t0 = time.perf_counter()
        for _ in range(req["units"]):
            A @ B
        emit(dict(seconds=time.perf_counter() - t0))


def main():
    cfg = json.loads(sys.argv[1])
    threads = int(os.environ.get("OPENBLAS_NUM_THREADS", "0") or 0)
    rng = np.random.default_rng(7)
    if cfg.get("serve"):
        return serve(cfg, rng)
    emit(dict(info=True, system="openblas", numpy=np.__version__, threads=threads))
    for s in cfg["shapes"]:
        m, n, k = s["m"], s["n"], s["k"]
        a = (rng.random((k, m) if s["transA"] else (m, k), dtype=np.float32) * 2 - 1)
        b = (rng.random((n, k) if s["transB"] else (k, n), dtype=np.float32) * 2 - 1)
        A = a.T if s["transA"] else a
        B = b.T if s["transB"] else b
        c = A @ B
        # check 64 entries against float64, relative to sum |a*b| (as the deltaprop check does)
        ii, jj = rng.integers(0, m, 64), rng.integers(0, n, 64)
        A64, B64 = A.astype(np.float64), B.astype(np.float64)
        ref = np.einsum("ij,ji->i", A64[ii, :], B64[:, jj])
        mag = np.einsum("ij,ji->i", np.abs(A64[ii, :]), np.abs(B64[:, jj]))
        err = float(np.max(np.abs(c[ii, jj] - ref) / np.maximum(mag, 1e-30)))
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
        emit(dict(workload="sgemm", system="openblas", shape=s["label"], threads=threads,
                  gflops=flops / statistics.median(times) / 1e9, min=flops / max(times) / 1e9,
                  max=flops / min(times) / 1e9, reps=reps, check=dict(max_rel_err=err, ok=bool(err < 1e-4))))


if __name__ == "__main__":
    main()
