"""Concurrent clients that drive the cluster and record a history.

Every operation is recorded with its invocation and completion times (time.monotonic(), seconds
since the run started) and its outcome: ok, failed (definite 4xx) or unknown (timeout,
connection error, 408, 5xx). Every write carries a value unique in the run (its `value`), stored
in the point's payload (`w` for upserts, `s` for set_payload) and encoded in the vector, so every
state a read or the final scan observes names the one operation that produced it.
"""

import dataclasses
import itertools
import json
import threading
import time

import client

COLLECTION = "chaos"
CONSISTENCIES = (None, "1", "2", "majority", "quorum", "all")
ORDERINGS = (None, "weak", "medium", "strong")
UPSERT_MODES = ("upsert", "upsert", "upsert", "insert_only", "update_only", "filtered")
# `update_filter` of "filtered" upserts: update only points whose current value is even.
EVEN_FILTER = {"must": [{"key": "par", "match": {"value": 0}}]}
TOPOLOGY_BODY = {"vectors": {"size": 2, "distance": "Dot"}, "shard_number": 1,
                 "replication_factor": 1}


def vector_of(value):
    """The vector an upsert with `value` writes (checked on read: no torn records)."""
    return [((value * 7919) % 1009) / 1009.0, ((value * 104729) % 1013) / 1013.0]


def vector_matches(value, vec):
    if not isinstance(value, int) or not isinstance(vec, list) or len(vec) != 2:
        return False
    return all(abs(a - b) < 1e-4 for a, b in zip(vector_of(value), vec))


@dataclasses.dataclass
class Op:
    index: int
    proc: int                  # client thread
    kind: str                  # upsert delete set_payload retrieve scroll count search | create drop exists
    peer: int                  # node the request went to
    keys: list                 # point ids, or [collection name]
    t_invoke: float
    value: int = None          # writes: the unique value
    mode: str = None           # upserts: upsert insert_only update_only filtered
    wait: bool = None
    ordering: str = None
    consistency: str = None
    t_complete: float = None   # None until completed (and for ops cut off by the end of the run)
    outcome: str = None
    status: int = None
    error: str = None
    obs: dict = None           # reads: {"points": {id: [w, s, vector_ok]}, "absent": [ids], "count": n}

    @property
    def is_write(self):
        return self.kind in ("upsert", "delete", "set_payload")


class History:
    """The ops of a run; thread-safe."""

    def __init__(self, t0):
        self.t0 = t0
        self.ops = []
        self._lock = threading.Lock()
        self._values = itertools.count(1)

    def now(self):
        return time.monotonic() - self.t0

    def value(self):
        with self._lock:
            return next(self._values)

    def invoke(self, **fields):
        with self._lock:
            op = Op(index=len(self.ops), t_invoke=self.now(), **fields)
            self.ops.append(op)
            return op

    def complete(self, op, reply):
        op.t_complete = self.now()
        op.outcome, op.status, op.error = reply.outcome, reply.status, reply.error

    def save(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(dataclasses.asdict(op)) + "\n")


def observe(records):
    """{id: [w, s, vector_ok]} of the points a read returned."""
    seen = {}
    for r in records or []:
        payload = r.get("payload") or {}
        w = payload.get("w")
        seen[r["id"]] = [w, payload.get("s"), vector_matches(w, r.get("vector"))]
    return seen


class PointClient(threading.Thread):
    """One client: random writes and reads on a small id space through random peers."""

    def __init__(self, proc, rng, nodes, history, stop, ids=200, timeout=10.0):
        super().__init__(name=f"points-{proc}", daemon=True)
        self.proc, self.rng, self.nodes, self.history, self.stop = proc, rng, nodes, history, stop
        self.ids, self.timeout = ids, timeout
        self.hot = max(10, ids // 8)

    def key(self):
        # Most operations on a hot set so that they conflict; the rest anywhere.
        hi = self.hot if self.rng.random() < 0.7 else self.ids
        return self.rng.randint(1, hi)

    def keys(self):
        return sorted({self.key() for _ in range(self.rng.choice((1, 1, 1, 2, 3)))})

    def run(self):
        kinds = ["upsert"] * 5 + ["delete"] * 2 + ["set_payload"] * 2 + \
                ["retrieve"] * 3 + ["scroll", "count", "search"]
        while not self.stop.is_set():
            self.one(self.rng.choice(kinds))
            time.sleep(self.rng.uniform(0.0, 0.01))

    def one(self, kind):
        rng, peer = self.rng, self.rng.randrange(len(self.nodes))
        host = self.nodes[peer].ip
        base = f"/collections/{COLLECTION}/points"
        if kind in ("upsert", "delete", "set_payload"):
            value, wait, ordering = self.history.value(), rng.random() < 0.7, rng.choice(ORDERINGS)
            keys = self.keys()
            qs = f"?wait={'true' if wait else 'false'}" + (f"&ordering={ordering}" if ordering else "")
            op = self.history.invoke(proc=self.proc, kind=kind, peer=peer, keys=keys, value=value,
                                     wait=wait, ordering=ordering)
            if kind == "upsert":
                op.mode = rng.choice(UPSERT_MODES)
                body = {"points": [{"id": k, "vector": vector_of(value),
                                    "payload": {"w": value, "par": value % 2}} for k in keys]}
                if op.mode == "filtered":
                    body["update_filter"] = EVEN_FILTER
                elif op.mode != "upsert":
                    body["update_mode"] = op.mode
                reply = client.call(host, "PUT", base + qs, body, self.timeout)
            elif kind == "delete":
                reply = client.call(host, "POST", f"{base}/delete{qs}", {"points": keys}, self.timeout)
            else:
                reply = client.call(host, "POST", f"{base}/payload{qs}",
                                    {"payload": {"s": value}, "points": keys}, self.timeout)
            self.history.complete(op, reply)
            return
        consistency = rng.choice(CONSISTENCIES)
        qs = f"?consistency={consistency}" if consistency else ""
        keys = self.keys() if kind == "retrieve" else []
        op = self.history.invoke(proc=self.proc, kind=kind, peer=peer, keys=keys,
                                 consistency=consistency)
        full = {"with_payload": True, "with_vector": True}
        if kind == "retrieve":
            reply = client.call(host, "POST", base + qs, {"ids": keys, **full}, self.timeout)
        elif kind == "scroll":
            start = rng.randint(1, self.ids)
            reply = client.call(host, "POST", f"{base}/scroll{qs}",
                                {"offset": start, "limit": 20, **full}, self.timeout)
        elif kind == "count":
            reply = client.call(host, "POST", f"{base}/count{qs}", {"exact": True}, self.timeout)
        else:
            reply = client.call(host, "POST", f"{base}/query{qs}",
                                {"query": vector_of(rng.randint(1, 10**6)), "limit": 5, **full},
                                self.timeout)
        self.history.complete(op, reply)
        if reply.outcome == client.OK:
            op.obs = self.observation(kind, keys, reply.result)

    @staticmethod
    def observation(kind, keys, result):
        if kind == "count":
            return {"count": result.get("count")}
        records = result if kind == "retrieve" else result.get("points", [])
        seen = observe(records)
        obs = {"points": seen}
        if kind == "retrieve":
            obs["absent"] = [k for k in keys if k not in seen]
        return obs


class TopologyClient(threading.Thread):
    """Creates, deletes and checks the existence of a few collections through random peers."""

    def __init__(self, proc, rng, nodes, history, stop, names, timeout=15.0):
        super().__init__(name=f"topology-{proc}", daemon=True)
        self.proc, self.rng, self.nodes, self.history, self.stop = proc, rng, nodes, history, stop
        self.names, self.timeout = names, timeout

    def run(self):
        while not self.stop.is_set():
            self.one(self.rng.choice(("create", "create", "drop", "drop", "exists", "exists")))
            time.sleep(self.rng.uniform(0.05, 0.3))

    def one(self, kind):
        peer = self.rng.randrange(len(self.nodes))
        host, name = self.nodes[peer].ip, self.rng.choice(self.names)
        op = self.history.invoke(proc=self.proc, kind=kind, peer=peer, keys=[name])
        path = f"/collections/{name}"
        if kind == "create":
            reply = client.call(host, "PUT", path + "?timeout=5", TOPOLOGY_BODY, self.timeout)
        elif kind == "drop":
            reply = client.call(host, "DELETE", path + "?timeout=5", None, self.timeout)
        else:
            reply = client.call(host, "GET", path + "/exists", None, self.timeout)
        self.history.complete(op, reply)
        if reply.outcome == client.OK:
            r = reply.result
            op.obs = {"result": r.get("exists") if isinstance(r, dict) else r}
        elif reply.error is not None:
            op.obs = {"error": reply.error}
