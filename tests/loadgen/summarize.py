#!/usr/bin/env python3
"""Summarise qbench JSON lines (baseline runs from `qbench baseline` and hnswlib_baseline.py).

For every engine: build rate, memory, and throughput at a target recall, interpolated on the
ef sweep (log-linear in throughput between the two sweep points around the target), plus the
ratio to a reference engine (default: the first one whose name starts with "hnswlib").

    python3 summarize.py results.jsonl [--recall 0.95] [--ref hnswlib]
"""
import argparse
import json
import math
import sys


def at_recall(sweep, key, target):
    pts = sorted((p["recall"], p[key]) for p in sweep if p.get(key))
    for (r0, v0), (r1, v1) in zip(pts, pts[1:]):
        if r0 <= target <= r1 and r1 > r0:
            t = (target - r0) / (r1 - r0)
            return math.exp(math.log(v0) + t * (math.log(v1) - math.log(v0)))
    for r, v in pts:
        if abs(r - target) < 1e-9:
            return v
    return None


def summarize_search(searches, target):
    """Closed-loop server runs: QPS and queries per server CPU-second at the target recall."""
    groups = {}
    for r in searches:
        groups.setdefault((r["label"], r["dataset"], r["concurrency"]), []).append(
            {"recall": r["recall"], "qps": r["qps"], "q_srv": r.get("q_per_server_cpu_s"),
             "p99": r["latency"]["p99_ms"]})
    print(f"server runs, closed loop, interpolated at recall@{searches[0].get('k', 10)} = {target}")
    print(f"{'label':<16} {'conc':>4} {'QPS@R':>8} {'q/srv-CPU-s@R':>14} {'p99 ms@R':>9}")
    for (label, _ds, conc), pts in sorted(groups.items()):
        fmt = lambda v, d=0: f"{v:.{d}f}" if v else "-"
        print(f"{label:<16} {conc:>4} {fmt(at_recall(pts, 'qps', target)):>8} "
              f"{fmt(at_recall(pts, 'q_srv', target)):>14} {fmt(at_recall(pts, 'p99', target), 2):>9}")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--recall", type=float, default=0.95)
    ap.add_argument("--ref", default="hnswlib")
    args = ap.parse_args()
    runs = []
    for f in args.files:
        with open(f) as fh:
            runs += [json.loads(l) for l in fh if l.startswith("{")]
    searches = [r for r in runs if r.get("kind") == "search" and r.get("mode") == "closed"]
    runs = [r for r in runs if r.get("kind") == "baseline"]
    if searches:
        summarize_search(searches, args.recall)
    if not runs:
        return
    ref = next((r for r in runs if r["engine"].startswith(args.ref)), None)

    def metrics(r):
        return {
            "q_cpu": at_recall(r["sweep"], "q_per_cpu_s", args.recall),
            "q_cpu_best": at_recall(r["sweep"], "q_per_cpu_s_best", args.recall),
            "qps_mt": at_recall(r["sweep"], "qps_mt", args.recall),
            "adds_cpu": r["build"]["adds_per_cpu_s"],
            "adds_wall": r["build"]["adds_per_s"],
        }

    refm = metrics(ref) if ref else None
    hdr = f"{'engine':<58} {'adds/CPU-s':>10} {'adds/s':>8} {'RSS B/vec':>9} {'q/CPU-s@R':>10} {'best@R':>8} {'QPS(mt)@R':>10} {'x ref q/CPU':>11} {'x ref best':>10} {'x ref build':>11}"
    print(f"target recall@{runs[0].get('k', 10)} = {args.recall}; reference = {ref['engine'] if ref else '-'}")
    print(hdr)
    print("-" * len(hdr))
    for r in runs:
        m = metrics(r)
        mem = r["memory"].get("rss_bytes_per_vector")  # RSS growth over the build
        ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
        fmt = lambda v: f"{v:.0f}" if v else "-"
        print(f"{r['engine']:<58} {m['adds_cpu']:>10.0f} {m['adds_wall']:>8.0f} {fmt(mem):>9} {fmt(m['q_cpu']):>10} {fmt(m['q_cpu_best']):>8} "
              f"{fmt(m['qps_mt']):>10} {ratio(m['q_cpu'], refm and refm['q_cpu']):>11} "
              f"{ratio(m['q_cpu_best'], refm and refm['q_cpu_best']):>10} "
              f"{ratio(m['adds_cpu'], refm and refm['adds_cpu']):>11}")
        for p in r["sweep"]:
            mt = f"{p['qps_mt']:.0f}" if p.get("qps_mt") else "-"
            print(f"    ef={p['ef']:<4} recall={p['recall']:.4f} q/CPU-s={p['q_per_cpu_s']:.0f} "
                  f"best={p.get('q_per_cpu_s_best') or 0:.0f} "
                  f"QPS1t={p['qps_1t']:.0f} QPSmt={mt} p50={p['latency_1t']['p50_ms']:.3f}ms "
                  f"p99={p['latency_1t']['p99_ms']:.3f}ms")


if __name__ == "__main__":
    main()
