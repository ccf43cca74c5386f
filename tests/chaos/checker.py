"""Checks of a recorded history (workload.Op lists) against the final state and itself.

Point writes. A write that was acknowledged ("definite", wait=true or wait=false: the node
acknowledges either only once every Active replica appended and applied it) took effect between
its invocation and its completion. Any other write (failed, unknown) may have taken effect at any
time after its invocation: a 4xx or 5xx can follow a partial application that anti-entropy
spreads later. So a write is
"orderable after" W when it is not definite-and-completed before W was invoked.

  lost write     a definite write whose effect is not in the final state although nothing that
                 could overwrite it is orderable after it (precisely: the operation that produced
                 the final state of the point, or a delete if the point is gone, is not)
  phantom        a value (final or read) that no write to that point carried, or a read that saw
                 a value whose write was invoked after the read completed
  torn           a point whose vector is not the one its payload's write wrote
  stale read     a read with consistency majority, quorum, 2 or all that returned a value
                 definitely overwritten (by a definite plain upsert or delete that began after the
                 value's write completed) before the read was invoked: replicas that missed an
                 acknowledged write are marked Dead before the acknowledgement, and such reads
                 return a point only when enough replicas hold it identically, so this means the
                 overwriting write was lost or undone (possibly masked later by newer writes).
                 The same at consistency=1 (a Dead replica may serve its own peer for a while)
                 and points missing from consistency=all reads (replicas may disagree while a
                 write is in flight) are only counted, as "stale (allowed)".

Collection topology: create / drop / exists calls, partitioned by collection name, go through
the linearizability search (linearizability.CollectionModel).
"""

import collections
import dataclasses

import client
import linearizability

INF = float("inf")
# Read consistencies that return a point only when several replicas hold it identically.
STRONG_READS = ("all", "majority", "quorum", "2")


@dataclasses.dataclass
class Anomaly:
    kind: str
    key: object
    message: str
    ops: list = dataclasses.field(default_factory=list)   # indices of the ops involved

    def __str__(self):
        return f"{self.kind} on {self.key}: {self.message} (ops {self.ops})"


def definite(op):
    # wait=false too: this node acknowledges a write only once every Active replica appended it
    # to its shard's write-ahead log and applied it (stricter than Qdrant, which acknowledges
    # wait=false on receipt), so an acknowledged wait=false write must not be lost either.
    return op.outcome == client.OK


def eff_complete(op):
    """The latest time `op` may take effect."""
    return op.t_complete if definite(op) else INF


def orderable_after(x, w):
    """Could write `x` have taken effect after write `w`?"""
    return eff_complete(x) > w.t_invoke


def writes_by_key(ops):
    by_key = collections.defaultdict(list)
    for op in ops:
        if op.is_write:
            for k in op.keys:
                by_key[k].append(op)
    return by_key


def describe(op):
    extra = f" mode={op.mode}" if op.mode else ""
    return (f"#{op.index} {op.kind}{extra} value={op.value} via node {op.peer} wait={op.wait} "
            f"ordering={op.ordering} [{op.t_invoke:.3f}s, {op.t_complete:.3f}s] {op.outcome}"
            f"{f' {op.status}' if op.status else ''}")


def check_final(ops, final):
    """Lost writes and unexplainable values. `final`: {id: (w, s, vector_ok)} of the points
    present after healing (read with consistency=all)."""
    anomalies = []
    by_key = writes_by_key(ops)
    for key in sorted(set(by_key) | set(final)):
        writes = by_key.get(key, [])
        state = final.get(key)
        producer = setter = None
        if state is not None:
            w, s, vector_ok = state
            producer = next((o for o in writes if o.kind == "upsert" and o.value == w), None)
            setter = next((o for o in writes if o.kind == "set_payload" and o.value == s), None)
            if producer is None:
                anomalies.append(Anomaly("phantom", key, f"final value w={w} was never written "
                                         "to this point"))
            elif not vector_ok:
                anomalies.append(Anomaly("torn", key, f"final vector is not the one of w={w}",
                                         [producer.index]))
            if s is not None and setter is None:
                anomalies.append(Anomaly("phantom", key, f"final s={s} was never set on this point"))
            if producer and setter and not orderable_after(setter, producer):
                anomalies.append(Anomaly(
                    "lost write", key, f"final state has s={s} from a set_payload that completed "
                    f"before the upsert w={w} (which replaces the payload) was invoked",
                    [setter.index, producer.index]))
        last_delete = max((eff_complete(o) for o in writes if o.kind == "delete"), default=-INF)
        for wr in writes:
            if definite(wr):
                why = lost(wr, state, producer, setter, writes, last_delete)
                if why:
                    ops_involved = [wr.index] + [o.index for o in (producer, setter) if o]
                    anomalies.append(Anomaly("lost write", key, f"{describe(wr)}: {why}",
                                             ops_involved))
    return anomalies


def lost(wr, state, producer, setter, writes, last_delete):
    """Why the definite write `wr` is lost in final `state` (None if it is not).
    `last_delete`: the latest time a delete of the point may have taken effect."""
    def deleted_after():
        return last_delete > wr.t_invoke

    if wr.kind == "upsert":
        if wr.mode != "upsert":
            return None   # conditional: it may rightly have changed nothing
        if state is not None and state[0] == wr.value:
            return None
        if state is None:
            return None if deleted_after() else "the point is gone and no delete is orderable after it"
    elif wr.kind == "delete":
        if state is None:
            return None
    else:  # set_payload
        if state is None:
            return None   # it changes nothing on a point that is absent (the node answers 200)
        if state[1] == wr.value:
            return None
        if state[1] is not None:
            if setter is None or orderable_after(setter, wr):
                return None
            return f"final s={state[1]} comes from {describe(setter)}, which completed before it"
    # The point exists with a value from `producer`: that upsert must be orderable after `wr`.
    if producer is None or not orderable_after(producer, wr):
        return (f"final w={state[0]} comes from "
                f"{describe(producer) if producer else 'nowhere'}, which completed before it")
    if wr.kind == "delete" and producer.mode == "update_only":
        # An update_only upsert cannot bring back a deleted point: something else must have.
        if not any(o.kind == "upsert" and o.mode != "update_only" and orderable_after(o, wr)
                   and o.t_invoke < eff_complete(producer) for o in writes):
            return "the point came back through an update_only upsert with no insert after the delete"
    return None


def check_reads(ops):
    """(anomalies, stale read count) over the reads of the history."""
    anomalies, stale = [], 0
    by_key = writes_by_key(ops)
    by_value = {(k, o.kind, o.value): o for k, writes in by_key.items() for o in writes}
    for r in ops:
        if r.outcome != client.OK or not r.obs or "points" not in r.obs:
            continue
        for key, (w, s, vector_ok) in r.obs["points"].items():
            key = int(key)
            writes = by_key.get(key, [])
            up = by_value.get((key, "upsert", w))
            if up is None or up.t_invoke > r.t_complete:
                anomalies.append(Anomaly("phantom", key, f"read #{r.index} {r.kind} via node "
                                         f"{r.peer} saw w={w}, not written to it before the read "
                                         "completed", [r.index]))
                continue
            if not vector_ok:
                anomalies.append(Anomaly("torn", key, f"read #{r.index} saw a vector not of w={w}",
                                         [r.index, up.index]))
            if s is not None:
                st = by_value.get((key, "set_payload", s))
                if st is None or st.t_invoke > r.t_complete:
                    anomalies.append(Anomaly("phantom", key, f"read #{r.index} saw s={s}, not set "
                                             "before the read completed", [r.index]))
            newer = overwriter(up, writes, r.t_invoke)
            if newer is not None and r.consistency in STRONG_READS:
                anomalies.append(Anomaly(
                    "stale read", key, f"read #{r.index} {r.kind} consistency={r.consistency} via "
                    f"node {r.peer} [{r.t_invoke:.3f}s, {r.t_complete:.3f}s] returned w={w} of "
                    f"{describe(up)}, overwritten before the read by {describe(newer)}",
                    [r.index, up.index, newer.index]))
            elif newer is not None:
                stale += 1
        if r.consistency == "all":
            for key in r.obs.get("absent", []):
                if any(definite(o) and o.kind == "upsert" and o.mode == "upsert"
                       and o.t_complete < r.t_invoke and not any(
                           d.kind == "delete" and orderable_after(d, o) and d.t_invoke < r.t_complete
                           for d in by_key[key]) for o in by_key.get(key, [])):
                    stale += 1
    return anomalies, stale


def overwriter(up, writes, t):
    """A definite plain upsert or delete, invoked after upsert `up` completed and completed
    before time `t` (so `up`'s value was certainly replaced by `t`), or None."""
    return next((o for o in writes if definite(o) and o is not up
                 and (o.kind == "delete" or (o.kind == "upsert" and o.mode == "upsert"))
                 and o.t_invoke > eff_complete(up) and o.t_complete < t), None)


DELETED_WHILE_CREATING = "deleted while it was being created"


def topology_calls(ops):
    """{collection name: [linearizability.Call]} of the create / drop / exists ops."""
    calls = collections.defaultdict(list)
    for op in ops:
        if op.kind not in ("create", "drop", "exists"):
            continue
        if op.outcome == client.FAILED and op.status is None:
            continue   # refused at connect: it never reached a node
        ret, output = op.t_complete, None
        result = (op.obs or {}).get("result")
        if op.kind == "create":
            if op.outcome == client.OK:
                output = "created"
            elif op.status == 409:
                output = "exists"
            elif op.status == 400 and DELETED_WHILE_CREATING in (op.error or ""):
                output = "created"   # it was created, then a concurrent drop removed it
            else:
                ret = None
        elif op.kind == "drop":
            if op.outcome == client.OK and isinstance(result, bool):
                output = result
            else:
                ret = None
        else:
            if op.outcome != client.OK or not isinstance(result, bool):
                continue   # a read without an answer constrains nothing
            output = result
        calls[op.keys[0]].append(linearizability.Call(op.t_invoke, ret, op.kind, output, op))
    return calls


def check_topology(ops, max_states=2_000_000):
    """(anomalies, {name: Result}) of the topology history."""
    results = linearizability.check_by_key(topology_calls(ops), linearizability.CollectionModel,
                                           max_states)
    anomalies = []
    for name, res in results.items():
        if res.ok is False:
            stuck = res.stuck.ref
            tail = [c.ref.index for c in res.linearized[-6:] if c.ref is not None]
            anomalies.append(Anomaly(
                "not linearizable", name,
                f"no linearization places #{stuck.index} {stuck.kind} via node {stuck.peer} "
                f"[{stuck.t_invoke:.3f}s, {stuck.t_complete:.3f}s] -> "
                f"{(stuck.obs or {}).get('result', stuck.status)}; longest linearizable prefix "
                f"has {len(res.linearized)} calls, ending with ops {tail}",
                tail + [stuck.index]))
        elif res.ok is None:
            anomalies.append(Anomaly("inconclusive", name, f"search budget ran out after "
                                     f"{res.explored} states"))
    return anomalies, results
