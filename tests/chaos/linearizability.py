"""A Wing & Gong style linearizability search (the just-in-time variant Lowe and Porcupine use),
written for this harness.

A history is a list of `Call`s on one key (histories of independent keys are checked
separately: linearizability is compositional). A completed call took effect at one instant
between its invocation and its completion, with the output it returned. A call whose outcome is
unknown (timeout, connection lost, 5xx) has no completion: it took effect at some instant after
its invocation, with any output, or never.

Search: depth-first over partial linearizations. The next call to linearize must have been
invoked before the earliest completion among the completed calls not linearized yet (otherwise
that one would have to come first). Visited (linearized set, model state, unknown calls used)
triples are memoised. Unknown calls of the same kind are interchangeable once invoked (none of
them has an output or a completion), so the search counts how many of each kind it used rather
than which ones: that keeps the state space small when faults leave many calls unknown, and an
unknown call is only ever placed where it changes the state.
"""

import bisect
import dataclasses
from typing import Any, Optional


@dataclasses.dataclass
class Call:
    call: float                 # invocation time
    ret: Optional[float]        # completion time; None: outcome unknown
    kind: str
    output: Any = None          # ignored when ret is None
    ref: Any = None             # whatever the caller wants back in reports (e.g. the history op)


@dataclasses.dataclass
class Result:
    ok: Optional[bool]          # True linearizable, False not, None: search budget ran out
    explored: int
    stuck: Optional[Call] = None        # the call the deepest partial linearization could not place
    linearized: list = dataclasses.field(default_factory=list)  # that partial linearization


class CollectionModel:
    """One collection name: does it exist? Outputs: create -> "created" | "exists" (409),
    drop -> True (deleted) | False (did not exist), exists -> bool."""

    init = False

    @staticmethod
    def step(state, kind, output):
        """The state after `kind` returned `output` in `state`, or None if it could not."""
        if kind == "create":
            if output == "created":
                return True if not state else None
            if output == "exists":
                return state if state else None
        elif kind == "drop":
            if output is True:
                return False if state else None
            if output is False:
                return state if not state else None
        elif kind == "exists":
            return state if output == state else None
        raise ValueError(f"unexpected {kind} -> {output!r}")

    @staticmethod
    def step_unknown(state, kind):
        """Every state `kind` may leave behind, whatever it returned."""
        if kind == "create":
            return [True]
        if kind == "drop":
            return [False]
        return [state]


def check(calls, model, max_states=2_000_000):
    """Is `calls` (one key's history) linearizable with respect to `model`?"""
    done = sorted((c for c in calls if c.ret is not None), key=lambda c: (c.ret, c.call))
    unknown = {}
    for c in calls:
        if c.ret is None:
            unknown.setdefault(c.kind, []).append(c.call)
    classes = sorted(unknown)
    invoked_at = [sorted(unknown[k]) for k in classes]
    m = len(done)
    full = (1 << m) - 1
    start = (0, model.init, (0,) * len(classes))
    stack, seen = [start], set()
    best_mask, best_bits = 0, -1
    parent = {start: None}
    best_node = start
    while stack:
        node = stack.pop()
        mask, state, used = node
        if mask == full:
            return Result(True, len(seen))
        if node in seen:
            continue
        seen.add(node)
        if len(seen) > max_states:
            return Result(None, len(seen))
        bits = bin(mask).count("1")
        if bits > best_bits:
            best_bits, best_mask, best_node = bits, mask, node
        first = (~mask & (mask + 1)).bit_length() - 1   # lowest call not linearized yet
        horizon = done[first].ret
        for j in range(first, m):
            c = done[j]
            if mask >> j & 1 or c.call >= horizon:
                continue
            nxt = model.step(state, c.kind, c.output)
            if nxt is not None:
                child = (mask | 1 << j, nxt, used)
                if child not in seen:
                    parent.setdefault(child, (node, c))
                    stack.append(child)
        for ci, kind in enumerate(classes):
            if used[ci] >= bisect.bisect_left(invoked_at[ci], horizon):
                continue
            for nxt in model.step_unknown(state, kind):
                if nxt == state:
                    continue
                child = (mask, nxt, used[:ci] + (used[ci] + 1,) + used[ci + 1:])
                if child not in seen:
                    parent.setdefault(child, (node, Call(None, None, kind)))
                    stack.append(child)
    first = (~best_mask & (best_mask + 1)).bit_length() - 1
    return Result(False, len(seen), stuck=done[first], linearized=_path(parent, best_node))


def _path(parent, node):
    """The calls (unknown ones with call=None) that led the search to `node`."""
    out = []
    while parent.get(node) is not None:
        node, c = parent[node]
        out.append(c)
    return out[::-1]


def check_by_key(calls_by_key, model, max_states=2_000_000):
    """{key: Result} for histories partitioned by key."""
    return {k: check(v, model, max_states) for k, v in sorted(calls_by_key.items())}
