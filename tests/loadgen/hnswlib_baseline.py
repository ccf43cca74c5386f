#!/usr/bin/env python3
"""Reference HNSW baseline: hnswlib on a qbench dataset directory.

Reads base.fvecs / query.fvecs / gt.ivecs written by `qbench gen`, builds an hnswlib index
with the same M / ef_construction, sweeps ef and prints a table plus one JSON line in the
schema of `qbench baseline` ("kind": "baseline").

    python hnswlib_baseline.py --data .cache/qbench/lm-d128-... --m 16 --ef-construct 100 \
        --ef 16,32,64,128,256 --threads 2
"""
import argparse
import importlib.metadata
import json
import os
import sys
import time

import numpy as np
import hnswlib


def read_vecs(path, dtype):
    raw = np.fromfile(path, dtype="<i4")
    if raw.size == 0:
        raise SystemExit(f"{path}: empty")
    dim = int(raw[0])
    rows = raw.reshape(-1, dim + 1)
    if not (rows[:, 0] == dim).all():
        raise SystemExit(f"{path}: inconsistent row lengths")
    return np.ascontiguousarray(rows[:, 1:]).view(dtype)


def hnswlib_version():
    try:
        return importlib.metadata.version("hnswlib")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def rss_bytes():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def recall_at_k(found, gt, k):
    hits = 0
    for row, truth in zip(found, gt):
        hits += len(set(row[:k].tolist()) & set(truth[:k].tolist()))
    return hits / (k * len(gt))


def percentile_ms(samples_ns, q):
    return float(np.percentile(np.asarray(samples_ns), q * 100)) / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="dataset directory written by `qbench gen`")
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construct", type=int, default=100)
    ap.add_argument("--ef", default="16,32,64,128,256")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--passes", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--json-out")
    args = ap.parse_args()

    base = read_vecs(os.path.join(args.data, "base.fvecs"), "<f4")
    queries = read_vecs(os.path.join(args.data, "query.fvecs"), "<f4")
    gt = read_vecs(os.path.join(args.data, "gt.ivecs"), "<i4")
    with open(os.path.join(args.data, "meta.json")) as f:
        meta = json.load(f)
    n, dim = base.shape
    nq = queries.shape[0]
    space = "cosine" if meta.get("distance") == "cosine" else "l2"

    rss0 = rss_bytes()
    index = hnswlib.Index(space=space, dim=dim)
    index.init_index(max_elements=n, M=args.m, ef_construction=args.ef_construct, random_seed=args.seed)
    cpu0, t0 = time.process_time(), time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=args.threads)
    build_wall, build_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    rss_delta = rss_bytes() - rss0
    print(f"hnswlib: built {n} in {build_wall:.1f}s ({n / build_wall:.0f} adds/s, "
          f"{n / build_cpu:.0f} adds/CPU-s)", file=sys.stderr)

    efs = [int(x) for x in args.ef.split(",") if x]
    # Passes are interleaved over ef (pass 1 of every ef, then pass 2, ...) and the median
    # pass counts, as in `qbench baseline`, so background load hits every ef alike.
    single = {ef: [] for ef in efs}
    multi = {ef: [] for ef in efs}
    recall = {}
    for ef in efs:
        index.set_ef(ef)
        index.knn_query(queries[: min(nq, 200)], k=args.k, num_threads=1)  # warm-up
    for p in range(args.passes):
        for ef in efs:
            index.set_ef(ef)
            # Single thread: one batch call runs in this thread (thread CPU time).
            cpu0, t0 = time.thread_time(), time.perf_counter()
            labels, _ = index.knn_query(queries, k=args.k, num_threads=1)
            single[ef].append((time.thread_time() - cpu0, time.perf_counter() - t0))
            if ef not in recall:
                recall[ef] = recall_at_k(labels, gt, args.k)
            if args.threads > 1:
                cpu0, t0 = time.process_time(), time.perf_counter()
                index.knn_query(queries, k=args.k, num_threads=args.threads)
                multi[ef].append((time.process_time() - cpu0, time.perf_counter() - t0))
        print(f"hnswlib: sweep pass {p + 1}/{args.passes} done", file=sys.stderr)

    sweep = []
    for ef in efs:
        index.set_ef(ef)
        # Per-query latency (includes a few microseconds of Python call overhead).
        lat = []
        for q in queries:
            t = time.perf_counter_ns()
            index.knn_query(q, k=args.k, num_threads=1)
            lat.append(time.perf_counter_ns() - t)
        med = lambda v, i: float(np.median([x[i] for x in v]))
        point = {
            "ef": ef, "recall": recall[ef],
            "q_per_cpu_s": nq / med(single[ef], 0),
            "q_per_cpu_s_best": nq / min(x[0] for x in single[ef]),
            "qps_1t": nq / med(single[ef], 1),
            "qps_mt": nq / med(multi[ef], 1) if multi[ef] else None,
            "q_per_cpu_s_mt": nq / med(multi[ef], 0) if multi[ef] else None,
            "latency_1t": {
                "count": len(lat), "mean_ms": float(np.mean(lat)) / 1e6,
                "p50_ms": percentile_ms(lat, 0.5), "p95_ms": percentile_ms(lat, 0.95),
                "p99_ms": percentile_ms(lat, 0.99), "p999_ms": percentile_ms(lat, 0.999),
                "max_ms": float(np.max(lat)) / 1e6,
            },
        }
        sweep.append(point)
        mt = f"{point['qps_mt']:.0f}" if point["qps_mt"] else "-"
        print(f"hnswlib  ef={ef:<4} recall={point['recall']:.4f}  q/CPU-s={point['q_per_cpu_s']:.0f}  "
              f"best={point['q_per_cpu_s_best']:.0f}  QPS 1t={point['qps_1t']:.0f}  QPS mt={mt}  "
              f"p50={point['latency_1t']['p50_ms']:.3f}ms  p99={point['latency_1t']['p99_ms']:.3f}ms")

    record = {
        "kind": "baseline", "engine": f"hnswlib-{hnswlib_version()}/f32/m{args.m}/efc{args.ef_construct}",
        "spec": "hnswlib", "dataset": meta.get("name"), "n": n, "nq": nq, "dim": dim,
        "m": args.m, "ef_construct": args.ef_construct, "threads": args.threads, "k": args.k,
        "passes": args.passes, "timestamp": int(time.time()),
        "build": {"threads": args.threads, "wall_s": build_wall, "cpu_s": build_cpu,
                  "adds_per_s": n / build_wall, "adds_per_cpu_s": n / build_cpu},
        "memory": {"index_bytes": None, "rss_delta_bytes": rss_delta, "index_bytes_per_vector": None,
                   "rss_bytes_per_vector": rss_delta / n},
        "sweep": sweep,
    }
    line = json.dumps(record)
    print(line)
    if args.json_out:
        with open(args.json_out, "a") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
