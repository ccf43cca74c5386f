"""Jepsen-style fault injection for the `qdrant` cluster: real processes in network namespaces,
a seeded fault schedule, concurrent clients recording a history, and checks of that history.

Run through tests/chaos/run.sh (it creates the private namespaces this needs). One "run" is one
cluster of N nodes:

  1. start N nodes (each in its own namespace on a private bridge), create the collection
  2. point clients and topology clients run while the nemesis injects faults
  3. heal everything, stop the clients, wait for the cluster, measure replica convergence
  4. read the final state through every peer and check the history against it

Exit code 0 only if every run found no anomaly and the harness itself worked.
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

import checker
import client
import hosts
import nemesis
import workload
from workload import COLLECTION

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOPOLOGY_NAMES = ["topo_a", "topo_b"]
CONVERGENCE_TIMEOUT = 60.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seed", type=int, default=None, help="replay a run (default: env CHAOS_SEED, else random)")
    p.add_argument("--soak", action="store_true", help="long mode: 10 minutes of faults per cluster")
    p.add_argument("--nodes", default="3,5", help="cluster sizes to run, in order (default 3,5)")
    p.add_argument("--duration", type=float, default=None, help="seconds of faults per cluster (default 90, soak 600)")
    p.add_argument("--clients", type=int, default=6, help="point clients per cluster")
    p.add_argument("--no-faults", action="store_true", help="run the workload without faults (a baseline)")
    p.add_argument("--faults", default=",".join(nemesis.KINDS),
                   help=f"fault kinds to draw from (default all: {','.join(nemesis.KINDS)})")
    p.add_argument("--keep", action="store_true",
                   help="keep the whole run directory, node storage included (by default a failed "
                        "run keeps logs, histories and reports, a passed one nothing)")
    args = p.parse_args()
    if args.seed is None:
        env = os.environ.get("CHAOS_SEED")
        args.seed = int(env) if env else random.SystemRandom().randrange(1, 10**9)
    if args.duration is None:
        args.duration = 600.0 if args.soak else 90.0
    args.sizes = [int(x) for x in args.nodes.split(",") if x.strip()]
    args.kinds = tuple(k for k in args.faults.split(",") if k)
    unknown = set(args.kinds) - set(nemesis.KINDS)
    if unknown or not args.kinds:
        p.error(f"unknown fault kinds {sorted(unknown)}; known: {','.join(nemesis.KINDS)}")
    return args


def get_json(node, path, timeout=3.0):
    r = client.call(node.ip, "GET", path, timeout=timeout)
    return r.result if r.outcome == client.OK else None


def wait_agreed(nodes, timeout):
    """Every node answers GET /cluster with all peers and one leader; returns seconds taken."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        views = [get_json(n, "/cluster") for n in nodes]
        if all(views):
            leaders = {v["raft_info"]["leader"] for v in views}
            if len(leaders) == 1 and None not in leaders and all(
                    len(v["peers"]) == len(nodes) for v in views):
                return time.monotonic() - t0
        time.sleep(0.3)
    raise hosts.HarnessError(f"cluster did not agree in {timeout}s: {views}")


def start_cluster(net, n, run_dir, binary, env):
    nodes = []
    for i in range(n):
        ns, ip = net.add_host(i)
        nodes.append(hosts.Node(i, ns, ip, run_dir, binary, env))
    nodes[0].spawn(["--uri", nodes[0].uri])
    nodes[0].wait_ready(60)
    for node in nodes[1:]:
        node.spawn(["--bootstrap", nodes[0].uri, "--uri", node.uri])
        node.wait_ready(60)
    wait_agreed(nodes, 60)
    return nodes


def replica_view(nodes):
    """(problem or None, {shard: [points count per replica]}) from every peer's
    GET /collections/chaos/cluster."""
    counts = collections.defaultdict(list)
    for node in nodes:
        info = get_json(node, f"/collections/{COLLECTION}/cluster")
        if info is None:
            return f"node {node.i} does not answer /collections/{COLLECTION}/cluster", counts
        if info["shard_transfers"]:
            return f"node {node.i} shows transfers {info['shard_transfers']}", counts
        for s in info["local_shards"] + info["remote_shards"]:
            if s["state"] != "Active":
                return f"node {node.i} sees shard {s['shard_id']} {s['state']}", counts
        for s in info["local_shards"]:
            counts[s["shard_id"]].append(s["points_count"])
    return None, counts


def scroll_all(node, consistency, timeout=10.0):
    """{id: (w, s, vector_ok)} of every point, read through `node`, or None on failure."""
    qs = f"?consistency={consistency}" if consistency else ""
    body = {"limit": 100_000, "with_payload": True, "with_vector": True}
    r = client.call(node.ip, "POST", f"/collections/{COLLECTION}/points/scroll{qs}", body, timeout)
    if r.outcome != client.OK:
        return None
    return {k: tuple(v) for k, v in workload.observe(r.result["points"]).items()}


def wait_converged(nodes, replication, timeout, since=None):
    """Seconds from `since` (default: now) until every replica is Active and all replicas hold
    the same points (None if not within `timeout` from now), and the last problem seen.

    Equality from what the API exposes: a scroll with consistency=all returns the points every
    replica holds identically; if each shard's replicas all count c_s points and the sum of c_s
    equals the number of agreed points, every replica holds exactly the agreed points."""
    t0 = time.monotonic()
    since = t0 if since is None else since
    problem = "not checked"
    while time.monotonic() - t0 < timeout:
        problem, counts = replica_view(nodes)
        if problem is None:
            agreed = scroll_all(nodes[0], "all")
            bad = {s: c for s, c in counts.items() if len(c) != replication or len(set(c)) != 1}
            if agreed is None:
                problem = "scroll with consistency=all failed"
            elif bad:
                problem = f"replica counts differ {dict(bad)}"
            elif sum(c[0] for c in counts.values()) != len(agreed):
                problem = (f"replicas hold {sum(c[0] for c in counts.values())} points, "
                           f"{len(agreed)} of them identical on all replicas")
            else:
                return time.monotonic() - since, None
        time.sleep(0.5)
    return None, problem


def final_state(nodes, anomalies):
    """The final state read with consistency=all through every peer (which must agree); also
    compares each peer's consistency=1 reads with it."""
    states = {}
    for node in nodes:
        for _ in range(5):
            states[node.i] = scroll_all(node, "all")
            if states[node.i] is not None:
                break
            time.sleep(1)
        if states[node.i] is None:
            anomalies.append(checker.Anomaly("unavailable", node.i,
                                             "final read with consistency=all failed 5 times"))
    answered = {i: s for i, s in states.items() if s is not None}
    if not answered:
        return None   # already reported unavailable; no state to judge writes by
    reference = answered[min(answered)]
    for i, s in answered.items():
        if s != reference:
            diff = sorted(k for k in set(s) | set(reference) if s.get(k) != reference.get(k))
            anomalies.append(checker.Anomaly(
                "divergent read", i, f"consistency=all through node {i} differs from node "
                f"{min(answered)} on ids {diff[:10]}: {[(k, s.get(k), reference.get(k)) for k in diff[:3]]}"))
    for node in nodes:
        local = scroll_all(node, None)
        if local is not None and local != reference:
            diff = sorted(k for k in set(local) | set(reference) if local.get(k) != reference.get(k))
            anomalies.append(checker.Anomaly(
                "divergent read", node.i, f"consistency=1 through node {node.i} differs from the "
                f"final state on ids {diff[:10]}"))
    return reference


def create_collection(nodes, n):
    body = {"vectors": {"size": 2, "distance": "Euclid"}, "shard_number": 2 if n <= 3 else 3,
            "replication_factor": 3, "write_consistency_factor": 2}
    r = client.call(nodes[0].ip, "PUT", f"/collections/{COLLECTION}?timeout=30", body, timeout=40)
    if r.outcome != client.OK:
        raise hosts.HarnessError(f"cannot create the collection: {r}")
    took, problem = wait_converged(nodes, 3, 60)
    if took is None:
        raise hosts.HarnessError(f"collection not active on every peer: {problem}")
    return body


def annotate(anomalies, ops, faults, t0_wall):
    """Adds to each anomaly the wall-clock time of its ops (UTC, as in the node logs) and the
    faults active or recently healed then."""
    for a in anomalies:
        spans = [(ops[i].t_invoke, ops[i].t_complete) for i in a.ops if 0 <= i < len(ops)]
        if not spans:
            continue
        lo = min(start for start, _ in spans)
        hi = max(start if end is None else end for start, end in spans)
        near = [f"{f.at:.1f}s {f.describe()}" for f in faults
                if f.at <= hi and f.at + f.duration >= lo - 10]
        wall = [time.strftime("%H:%M:%S", time.gmtime(t0_wall + t)) + f"{(t0_wall + t) % 1:.3f}"[1:]
                for t in (lo, hi)]
        a.message += f" | UTC {wall[0]}..{wall[1]}; faults then: {'; '.join(near) or 'none'}"


def run_cluster(net, n, seed, args, root, binary):
    """One cluster run; returns its report (a dict)."""
    t_start = time.monotonic()
    run_dir = os.path.join(root, f"nodes{n}")
    os.makedirs(run_dir)
    rng = random.Random(f"{seed}/{n}")
    env = {"QDRANT__CLUSTER__ANTI_ENTROPY_INTERVAL_SEC": "2"}
    if os.environ.get("CHAOS_FAKETIME") == "0":
        env["LD_PRELOAD"] = ""
    what = "no faults" if args.no_faults else f"faults: {','.join(args.kinds)}"
    print(f"\n=== chaos: {n} nodes, seed {seed}, {args.duration:.0f}s of workload ({what}), "
          f"dir {run_dir}", flush=True)
    report = {"nodes": n, "seed": seed, "dir": run_dir}
    nodes = []
    try:
        nodes = start_cluster(net, n, run_dir, binary, env)
        config = create_collection(nodes, n)
        print(f"  cluster up in {time.monotonic() - t_start:.1f}s; collection {config}", flush=True)
        faults = [] if args.no_faults else nemesis.plan(rng, n, args.duration, args.kinds)
        with open(os.path.join(run_dir, "schedule.json"), "w") as f:
            json.dump([f.__dict__ for f in faults], f, indent=1)
        t0, report["t0_wall"] = time.monotonic(), time.time()
        history = workload.History(t0)
        stop = threading.Event()
        threads = [workload.PointClient(p, random.Random(f"{seed}/{n}/p{p}"), nodes, history, stop)
                   for p in range(args.clients)]
        threads += [workload.TopologyClient(100 + p, random.Random(f"{seed}/{n}/t{p}"), nodes,
                                            history, stop, TOPOLOGY_NAMES) for p in range(3)]
        for t in threads:
            t.start()
        nem = nemesis.Nemesis(nodes, t0)
        nem.run(faults, t0)
        nem.sleep_until(t0 + args.duration, lambda: False)
        nem.heal_all()
        t_heal = time.monotonic()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        for op in history.ops:
            if op.outcome is None:   # a client stuck past every bound: treat as unknown
                op.outcome, op.t_complete = client.UNKNOWN, history.now()
        report["harness_stuck_clients"] = sum(t.is_alive() for t in threads)
        anomalies = [checker.Anomaly("crash", i, f"node {i} exited by itself with {code} at "
                                     f"{t:.1f}s") for t, i, code in nem.crashes]
        try:
            for node in nodes:
                node.wait_ready(60)
            wait_agreed(nodes, 60)
        except hosts.HarnessError as e:
            anomalies.append(checker.Anomaly("unavailable", "cluster", f"not healthy 60s after healing: {e}"))
        # Measured from the moment every fault was healed (clients stop right after).
        converged, problem = wait_converged(nodes, 3, CONVERGENCE_TIMEOUT, since=t_heal)
        if converged is None:
            anomalies.append(checker.Anomaly("not converged", COLLECTION, f"replicas not equal "
                                             f"{CONVERGENCE_TIMEOUT:.0f}s after quiescence: {problem}"))
        final = final_state(nodes, anomalies)
        history.save(os.path.join(run_dir, "history.jsonl"))
        t_check = time.monotonic()
        if final is not None:
            anomalies += checker.check_final(history.ops, final)
        read_anomalies, stale = checker.check_reads(history.ops)
        anomalies += read_anomalies
        topo_anomalies, topo = checker.check_topology(history.ops)
        anomalies += topo_anomalies
        annotate(anomalies, history.ops, faults, report["t0_wall"])
        report.update({
            "ops": collections.Counter(f"{op.kind} {op.outcome}" for op in history.ops),
            "faults": dict(nem.counts), "crashes": nem.crashes,
            "anomalies": [str(a) for a in anomalies],
            "stale_allowed": stale, "final_points": None if final is None else len(final),
            "convergence_s": None if converged is None else round(converged, 2),
            "topology": {k: {"calls": len(checker.topology_calls(history.ops)[k]),
                             "linearizable": r.ok, "states": r.explored} for k, r in topo.items()},
            "check_s": round(time.monotonic() - t_check, 2),
        })
    except hosts.HarnessError as e:
        report["harness_error"] = str(e)
        for node in nodes:
            print(f"--- node {node.i} log tail ({node.log_path}):\n{node.log_tail(15)}", flush=True)
    finally:
        for node in nodes:
            node.stop()
        net.teardown()
        report["wall_s"] = round(time.monotonic() - t_start, 1)
    with open(os.path.join(run_dir, "report.json"), "w") as f:
        json.dump(report, f, indent=1, default=str)
    return report


def print_report(r):
    print(f"\n--- {r['nodes']} nodes, seed {r['seed']}: wall {r['wall_s']}s", flush=True)
    if "harness_error" in r:
        print(f"  HARNESS ERROR: {r['harness_error']}")
        return
    by_kind = collections.defaultdict(dict)
    for key, count in r["ops"].items():
        kind, outcome = key.split(" ")
        by_kind[kind][outcome] = count
    print("  operations (ok / failed / unknown):")
    for kind in sorted(by_kind):
        c = by_kind[kind]
        print(f"    {kind:12} {c.get('ok', 0):6} / {c.get('failed', 0):5} / {c.get('unknown', 0):5}")
    print(f"  faults: {', '.join(f'{k} {v}' for k, v in sorted(r['faults'].items())) or 'none'}")
    conv = r["convergence_s"]
    print(f"  convergence after healing: {'NOT CONVERGED' if conv is None else f'{conv:.2f}s'}")
    final = "unreadable" if r["final_points"] is None else f"{r['final_points']} points"
    print(f"  final state: {final}; stale reads allowed by the node's "
          f"promises (consistency=1 values, consistency=all misses): {r['stale_allowed']}")
    for name, t in sorted(r["topology"].items()):
        print(f"  topology {name}: {t['calls']} calls, linearizable={t['linearizable']} "
              f"({t['states']} states searched)")
    kinds = collections.Counter(a.split(" on ")[0] for a in r["anomalies"])
    print(f"  anomalies: {len(r['anomalies'])} {dict(kinds) if kinds else ''} "
          f"(history checked in {r['check_s']}s)")
    for a in r["anomalies"][:20]:
        print(f"    ! {a}")
    if len(r["anomalies"]) > 20:
        print(f"    ... {len(r['anomalies']) - 20} more in {r['dir']}/report.json")


def main():
    args = parse_args()
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        # PID 1 of a PID namespace ignores signals without a handler.
        signal.signal(sig, lambda s, _f: sys.exit(128 + s))
    binary = os.environ.get("QDRANT_BIN") or os.path.join(REPO, "target/release/qdrant")
    if not os.access(binary, os.X_OK):
        print(f"chaos: qdrant binary not found: {binary}", file=sys.stderr)
        return 2
    print(f"chaos: seed {args.seed} (replay: CHAOS_SEED={args.seed} tests/chaos/run.sh"
          f"{' --soak' if args.soak else ''}), binary {binary}, "
          f"libfaketime {hosts.faketime_lib() or 'MISSING'}", flush=True)
    if not hosts.faketime_lib():
        print("chaos: libfaketime is missing (apt-get install faketime): no clock faults", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    hosts.Net.setup()
    net = hosts.Net()
    root = tempfile.mkdtemp(prefix="qdrant-chaos-")
    reports = [run_cluster(net, n, args.seed, args, root, binary) for n in args.sizes]
    for r in reports:
        print_report(r)
    failed = [r for r in reports if r.get("harness_error") or r.get("anomalies")
              or r.get("harness_stuck_clients")]
    print(f"\nchaos: seed {args.seed}, total wall time {time.monotonic() - t0:.0f}s")
    if failed:
        if not args.keep:   # ~200 MB per node; logs, histories and reports stay
            for run in os.listdir(root):
                for node in os.listdir(os.path.join(root, run)):
                    shutil.rmtree(os.path.join(root, run, node, "storage"), ignore_errors=True)
        print(f"chaos: FAILED; node logs, histories and reports in {root}")
    elif args.keep:
        print(f"chaos: run directory kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    print(f"chaos: {len(reports) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except hosts.HarnessError as e:
        print(f"chaos: HARNESS ERROR: {e}", file=sys.stderr)
        sys.exit(2)
