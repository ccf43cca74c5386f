#!/usr/bin/env python3
"""Summarise qbench JSON lines (baseline runs from `qbench baseline` and hnswlib_baseline.py).

For every engine: build rate, memory, and throughput at a target recall, interpolated on the
ef sweep (log-linear in throughput between the two sweep points around the target), plus the
ratio to a reference engine (default: the first one whose name starts with "hnswlib").
Server runs (`qbench search`) are summarised per label, concurrency and oversampling.

With --ref-label L, one more table per server label (a configuration such as f32, scalar,
binary): its quantization, recall@k and QPS per sweep point, QPS at the target recall (the best
oversampling curve), server RSS after upload+indexing and after the searches (VmRSS, with its
anonymous and file-backed parts, and the peak VmHWM), and the ratios to label L.

    python3 summarize.py results.jsonl [--recall 0.95] [--ref hnswlib] [--ref-label f32]
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
        # Oversampling (0 = not swept) keeps each oversampling's ef curve apart.
        groups.setdefault((r["label"], r["dataset"], r["concurrency"], r.get("oversampling") or 0), []).append(
            {"recall": r["recall"], "qps": r["qps"], "q_srv": r.get("q_per_server_cpu_s"),
             "p99": r["latency"]["p99_ms"]})
    print(f"server runs, closed loop, interpolated at recall@{searches[0].get('k', 10)} = {target}")
    print(f"{'label':<16} {'conc':>4} {'os':>4} {'QPS@R':>8} {'q/srv-CPU-s@R':>14} {'p99 ms@R':>9}")
    for (label, _ds, conc, os_), pts in sorted(groups.items()):
        fmt = lambda v, d=0: f"{v:.{d}f}" if v else "-"
        print(f"{label:<16} {conc:>4} {os_ or '-':>4} {fmt(at_recall(pts, 'qps', target)):>8} "
              f"{fmt(at_recall(pts, 'q_srv', target)):>14} {fmt(at_recall(pts, 'p99', target), 2):>9}")
    print()


def mib(b):
    return f"{b / 1048576:.0f}" if b is not None else "-"


def quant_name(q):
    """`quantization_config` of an upload line, short: `scalar`, `binary one_bit`, ..."""
    if not q:
        return "-"
    method, params = next(iter(q.items()))
    extra = [str(params[k]) for k in ("type", "encoding", "compression", "bits") if isinstance(params, dict) and k in params]
    return " ".join([method] + extra)


def summarize_memory(runs, target, ref_label):
    """Per server label: recall, QPS at the target recall and RSS, with ratios to `ref_label`."""
    uploads = {}
    for r in runs:
        if r.get("kind") == "upload":
            uploads[r["label"]] = r  # the last upload of a label
    searches = {}
    for r in runs:
        if r.get("kind") == "search" and r.get("mode") == "closed":
            searches.setdefault(r["label"], []).append(r)
    labels = [l for l in dict.fromkeys(list(uploads) + list(searches))]
    summary = {}
    k = next((r.get("k", 10) for rs in searches.values() for r in rs), 10)
    print(f"quantization: recall@{k}, closed-loop QPS and server RSS per configuration")
    for label in labels:
        up = uploads.get(label, {})
        rs = searches.get(label, [])
        tot = up.get("server_total") or {}
        last = (rs[-1].get("server") or {}) if rs else {}
        peak = max([tot.get("hwm_bytes") or 0] + [(r.get("server") or {}).get("hwm_bytes") or 0 for r in rs]) or None
        curves = {}
        for r in rs:
            curves.setdefault((r["concurrency"], r.get("oversampling") or 0), []).append(
                {"recall": r["recall"], "qps": r["qps"]})
        best = {}
        for (conc, os_), pts in curves.items():
            v = at_recall(pts, "qps", target)
            if v and (conc not in best or v > best[conc][0]):
                best[conc] = (v, os_)
        summary[label] = {"best": best, "rss_indexed": tot.get("rss_bytes"), "rss_search": last.get("rss_bytes"),
                          "peak": peak}
        print(f"{label}: quantization {quant_name(up.get('quantization'))}, on_disk {up.get('on_disk', '-')}, "
              f"indexed after {up.get('to_indexed_s') or 0:.1f} s; RSS MiB after indexing {mib(tot.get('rss_bytes'))} "
              f"(anon {mib(tot.get('rss_anon_bytes'))}, file {mib(tot.get('rss_file_bytes'))}), "
              f"after search {mib(last.get('rss_bytes'))} (anon {mib(last.get('rss_anon_bytes'))}, "
              f"file {mib(last.get('rss_file_bytes'))}), peak {mib(peak)}")
        for r in rs:
            os_ = r.get("oversampling")
            print(f"    c={r['concurrency']} ef={r['ef']:<4} os={os_ if os_ is not None else '-':<4} "
                  f"recall={r['recall'] or 0:.4f} QPS={r['qps']:.0f} p99={r['latency']['p99_ms']:.2f}ms")
    ref = summary.get(ref_label)
    print()
    print(f"at recall@{k} = {target} (QPS interpolated on the best oversampling's ef curve); ratios to {ref_label}")
    hdr = (f"{'label':<16} {'conc':>4} {'QPS@R':>8} {'best os':>7} {'x QPS':>6} {'RSS idx MiB':>11} {'x RSS idx':>9} "
           f"{'RSS srch MiB':>12} {'x RSS srch':>10} {'peak MiB':>8} {'x peak':>6}")
    print(hdr)
    print("-" * len(hdr))
    ratio = lambda a, b: f"{a / b:.2f}" if a and b else "-"
    for label in labels:
        m = summary[label]
        for conc in sorted(set(m["best"]) | set(ref["best"] if ref else ())) or [None]:
            qps, os_ = m["best"].get(conc, (None, None))
            rqps = ref["best"].get(conc, (None, None))[0] if ref else None
            print(f"{label:<16} {conc if conc is not None else '-':>4} {f'{qps:.0f}' if qps else '-':>8} "
                  f"{os_ or '-':>7} {ratio(qps, rqps):>6} {mib(m['rss_indexed']):>11} "
                  f"{ratio(m['rss_indexed'], ref and ref['rss_indexed']):>9} {mib(m['rss_search']):>12} "
                  f"{ratio(m['rss_search'], ref and ref['rss_search']):>10} {mib(m['peak']):>8} "
                  f"{ratio(m['peak'], ref and ref['peak']):>6}")
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="+")
    ap.add_argument("--recall", type=float, default=0.95)
    ap.add_argument("--ref", default="hnswlib")
    ap.add_argument("--ref-label", help="server label the quantization/memory table compares to (e.g. f32)")
    args = ap.parse_args()
    runs = []
    for f in args.files:
        with open(f) as fh:
            runs += [json.loads(l) for l in fh if l.startswith("{")]
    searches = [r for r in runs if r.get("kind") == "search" and r.get("mode") == "closed"]
    if searches:
        summarize_search(searches, args.recall)
    if args.ref_label:
        summarize_memory(runs, args.recall, args.ref_label)
    runs = [r for r in runs if r.get("kind") == "baseline"]
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
