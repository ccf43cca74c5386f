"""The fault schedule: a seeded random plan of faults, one at a time, each applied for a few
seconds and then undone, and the executor that carries it out on the nodes.

The plan depends only on (seed, cluster size, duration), so `--seed` replays the same faults on
the same nodes at the same offsets; the interleaving with client operations differs run to run.
"""

import collections
import dataclasses
import sys
import time

KINDS = ("kill", "pause", "isolate", "split", "bridge", "slow", "clock")


@dataclasses.dataclass
class Fault:
    at: float          # seconds after the start of the fault phase
    kind: str
    duration: float
    nodes: list        # the nodes it acts on (for partitions: every node with a blocked peer)
    cut: list = dataclasses.field(default_factory=list)  # partitions: [a, b] pairs cut apart
    param: dict = dataclasses.field(default_factory=dict)

    def describe(self):
        extra = ""
        if self.cut:
            extra = " cut " + " ".join(f"{a}-{b}" for a, b in self.cut)
        for k, v in self.param.items():
            extra += f" {k}={v}"
        return f"{self.kind} nodes {self.nodes}{extra} for {self.duration:.1f}s"


def minority(rng, n):
    """1 .. floor((n-1)/2) distinct nodes: the most a majority can lose."""
    return sorted(rng.sample(range(n), rng.randint(1, max(1, (n - 1) // 2))))


def cut_between(a_side, b_side):
    return [[a, b] for a in sorted(a_side) for b in sorted(b_side)]


def make_fault(kind, rng, n, at, duration):
    f = Fault(at=round(at, 1), kind=kind, duration=duration, nodes=[])
    if kind in ("kill", "pause"):
        f.nodes = minority(rng, n)
    elif kind == "isolate":
        v = rng.randrange(n)
        f.cut = cut_between([v], [u for u in range(n) if u != v])
    elif kind == "split":
        small = minority(rng, n)
        f.cut = cut_between(small, [u for u in range(n) if u not in small])
    elif kind == "bridge":
        # One node sees both halves, the halves do not see each other (a majority each way
        # through the bridge node, but no common view).
        order = rng.sample(range(n), n)
        half = (n - 1) // 2
        f.cut = cut_between(order[1:1 + half], order[1 + half:])
        f.param["bridge"] = order[0]
    elif kind == "slow":
        f.nodes = minority(rng, n)
        f.param["rate_kbit"] = rng.choice([32, 64, 128, 256])
        f.param["latency_ms"] = rng.choice([500, 1000, 2000, 4000])
    elif kind == "clock":
        f.nodes = [rng.randrange(n)]
        f.param["offset_s"] = rng.choice([-1, 1]) * rng.randint(30, 3600)
    else:
        raise ValueError(kind)
    if f.cut:
        f.nodes = sorted({x for pair in f.cut for x in pair})
    return f


def plan(rng, n, total_s, kinds=KINDS, min_s=3.0, max_s=10.0):
    """Faults back to back with 1-4 s of calm between them, until `total_s`. The last one lasts
    until the end of the phase, so the convergence measured after healing starts from a fault."""
    faults = []
    t = rng.uniform(2.0, 4.0)
    while t + min_s <= total_s:
        duration = round(min(rng.uniform(min_s, max_s), total_s - t), 1)
        faults.append(make_fault(rng.choice(kinds), rng, n, t, duration))
        t += duration + rng.uniform(1.0, 4.0)
    if faults:
        last = faults[-1]
        last.duration = round(total_s - last.at, 1)
    return faults


class Nemesis:
    """Applies and undoes faults on `nodes` (a list of hosts.Node, index = node number)."""

    def __init__(self, nodes, t0, out=sys.stdout):
        self.nodes, self.t0, self.out = nodes, t0, out
        self.counts = collections.Counter()
        self.events = []   # (time, what)
        self.crashes = []  # (time, node, exit code): processes that died without being killed

    def log(self, what):
        t = time.monotonic() - self.t0
        self.events.append((round(t, 3), what))
        print(f"  [{t:7.2f}s] {what}", file=self.out, flush=True)

    def apply(self, f):
        self.log(f"fault: {f.describe()}")
        self.counts[f.kind] += 1
        if f.kind == "kill":
            for i in f.nodes:
                self.nodes[i].kill9()
        elif f.kind == "pause":
            for i in f.nodes:
                self.nodes[i].pause()
        elif f.cut:
            blocked = collections.defaultdict(set)
            for a, b in f.cut:
                blocked[a].add(self.nodes[b].ip)
                blocked[b].add(self.nodes[a].ip)
            for i, ips in blocked.items():
                self.nodes[i].block(sorted(ips))
        elif f.kind == "slow":
            for i in f.nodes:
                self.nodes[i].slow(f.param["rate_kbit"], f.param["latency_ms"])
        elif f.kind == "clock":
            for i in f.nodes:
                self.nodes[i].set_clock(f.param["offset_s"])

    def undo(self, f):
        self.log(f"heal:  {f.kind} nodes {f.nodes}")
        for i in f.nodes:
            node = self.nodes[i]
            if f.kind == "kill":
                node.spawn(node.args)
            elif f.kind == "pause":
                node.resume()
            elif f.cut:
                node.unblock()
            elif f.kind == "slow":
                node.unslow()
            elif f.kind == "clock":
                node.set_clock(0)

    def run(self, faults, phase_start, should_stop=lambda: False):
        """Carries out `faults` (offsets from `phase_start`, a monotonic time)."""
        for f in faults:
            if not self.sleep_until(phase_start + f.at, should_stop):
                return
            self.apply(f)
            try:
                self.sleep_until(phase_start + f.at + f.duration, should_stop)
            finally:
                self.undo(f)

    def sleep_until(self, t, should_stop):
        while time.monotonic() < t:
            if should_stop():
                return False
            self.check_crashes()
            time.sleep(min(0.2, max(0.0, t - time.monotonic())))
        return True

    def check_crashes(self):
        """Records a node that exited by itself (a finding) and starts it again."""
        for node in self.nodes:
            code = node.crashed()
            if code is not None:
                self.crashes.append((round(time.monotonic() - self.t0, 3), node.i, code))
                self.log(f"CRASH: node {node.i} exited with {code} (log {node.log_path}); restarting")
                node.spawn(node.args)

    def heal_all(self):
        """Every node running, unpaused, connected, at full speed, on the real clock."""
        self.check_crashes()
        self.log("heal all")
        for node in self.nodes:
            node.heal()
