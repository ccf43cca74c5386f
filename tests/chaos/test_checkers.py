"""Unit tests of the history checkers: they must accept valid histories and, above all, flag
invalid ones (a checker that cannot fail proves nothing). Run by tests/chaos/run.sh first."""

import random

import pytest

import checker
import client
import linearizability as lin
from linearizability import Call, CollectionModel
from workload import Op

U = None  # an unknown completion


def lin_ok(calls):
    return lin.check(calls, CollectionModel).ok


# ---- linearizability search -----------------------------------------------------------------

def test_sequential_history_is_linearizable():
    assert lin_ok([Call(0, 1, "create", "created"), Call(2, 3, "exists", True),
                   Call(4, 5, "drop", True), Call(6, 7, "exists", False),
                   Call(8, 9, "drop", False), Call(10, 11, "create", "created"),
                   Call(12, 13, "create", "exists")])


def test_concurrent_calls_may_be_reordered():
    # The read overlaps the create, so it may come first; the later read must see it.
    assert lin_ok([Call(0, 10, "create", "created"), Call(1, 2, "exists", False),
                   Call(3, 4, "exists", True)])
    # Two creates overlap: one created, the other saw it.
    assert lin_ok([Call(0, 5, "create", "exists"), Call(1, 6, "create", "created")])


def test_stale_read_is_not_linearizable():
    res = lin.check([Call(0, 1, "create", "created"), Call(2, 3, "exists", False)], CollectionModel)
    assert res.ok is False
    assert res.stuck.kind == "exists"


def test_double_create_is_not_linearizable():
    assert lin_ok([Call(0, 1, "create", "created"), Call(2, 3, "create", "created")]) is False
    # a drop that says "did not exist" right after a completed create
    assert lin_ok([Call(0, 1, "create", "created"), Call(2, 3, "drop", False)]) is False


def test_reads_cannot_flip_back():
    # Once a later read saw the collection, an even later one cannot miss it without a drop.
    assert lin_ok([Call(0, 10, "create", "created"), Call(1, 2, "exists", True),
                   Call(3, 4, "exists", False)]) is False


def test_unknown_calls_may_take_effect_late_or_never():
    drop_then_seen = [Call(0, 1, "create", "created"), Call(2, 3, "drop", True),
                      Call(4, 5, "exists", True)]
    assert lin_ok(drop_then_seen) is False
    # An earlier create whose outcome is unknown can have taken effect between 3 and 4.
    assert lin_ok(drop_then_seen + [Call(0.5, U, "create")]) is True
    # ... but not if it was invoked after the read completed.
    assert lin_ok(drop_then_seen + [Call(6, U, "create")]) is False
    # An unknown call may also never happen.
    assert lin_ok([Call(0, U, "drop"), Call(1, 2, "exists", False)]) is True
    # One unknown create explains one reappearance, not two.
    twice = [Call(0, 0.5, "create", "created"), Call(0.2, U, "create"), Call(1, 2, "drop", True),
             Call(3, 4, "exists", True), Call(5, 6, "drop", True), Call(7, 8, "exists", True)]
    assert lin_ok(twice) is False
    assert lin_ok(twice + [Call(0.1, U, "create")]) is True


def test_many_unknowns_and_a_long_history_stay_fast():
    rng = random.Random(7)
    calls, state, t = [], False, 0.0
    for _ in range(400):
        kind = rng.choice(["create", "drop", "exists"])
        # each call is applied at t+0.5 but its window overlaps the neighbours' windows
        if kind == "create":
            out = "exists" if state else "created"
            state = True
        elif kind == "drop":
            out, state = state, False
        else:
            out = state
        calls.append(Call(t, t + rng.uniform(0.6, 3.0), kind, out))
        if rng.random() < 0.2:
            calls.append(Call(t, U, rng.choice(["create", "drop"])))
        t += 1.0
    res = lin.check(calls, CollectionModel)
    assert res.ok is True and res.explored < 200_000


# ---- point history checks -------------------------------------------------------------------

def op(index, kind, keys, t0, t1, value=None, outcome=client.OK, wait=True, mode=None, obs=None,
       consistency=None):
    if kind == "upsert" and mode is None:
        mode = "upsert"
    return Op(index=index, proc=0, kind=kind, peer=0, keys=keys, t_invoke=t0, t_complete=t1,
              value=value, mode=mode, wait=wait, outcome=outcome, obs=obs, consistency=consistency)


def kinds(anomalies):
    return sorted(a.kind for a in anomalies)


def test_a_lost_acknowledged_upsert_is_flagged():
    history = [op(0, "upsert", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2)]
    anomalies = checker.check_final(history, {5: (1, None, True)})
    assert kinds(anomalies) == ["lost write"]
    assert anomalies[0].key == 5 and 1 in anomalies[0].ops


def test_overlapping_or_uncertain_writes_explain_the_final_state():
    concurrent = [op(0, "upsert", [5], 0, 2, value=1), op(1, "upsert", [5], 1, 3, value=2)]
    assert checker.check_final(concurrent, {5: (1, None, True)}) == []
    assert checker.check_final(concurrent, {5: (2, None, True)}) == []
    # a later write that was not acknowledged may or may not have happened
    for outcome, wait in ((client.UNKNOWN, True), (client.FAILED, True), (client.UNKNOWN, False)):
        later = [op(0, "upsert", [5], 0, 1, value=1),
                 op(1, "upsert", [5], 2, 3, value=2, outcome=outcome, wait=wait)]
        assert checker.check_final(later, {5: (1, None, True)}) == []
        assert checker.check_final(later, {5: (2, None, True)}) == []
    # ... but an acknowledged wait=false write is acknowledged after it was applied: the write
    # that followed it cannot be overtaken by it
    followed = [op(0, "upsert", [5], 0, 1, value=1, wait=False), op(1, "upsert", [5], 2, 3, value=2)]
    assert kinds(checker.check_final(followed, {5: (1, None, True)})) == ["lost write"]
    lost = [op(0, "upsert", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2, wait=False)]
    assert kinds(checker.check_final(lost, {5: (1, None, True)})) == ["lost write"]


def test_lost_delete_and_lost_upsert_after_delete_are_flagged():
    resurrected = [op(0, "upsert", [5], 0, 1, value=1), op(1, "delete", [5], 2, 3, value=2)]
    assert kinds(checker.check_final(resurrected, {5: (1, None, True)})) == ["lost write"]
    assert checker.check_final(resurrected, {}) == []
    gone = [op(0, "delete", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2)]
    assert kinds(checker.check_final(gone, {})) == ["lost write"]


def test_set_payload_checks():
    h = [op(0, "upsert", [5], 0, 1, value=1), op(1, "set_payload", [5], 2, 3, value=2)]
    assert checker.check_final(h, {5: (1, 2, True)}) == []
    assert kinds(checker.check_final(h, {5: (1, None, True)})) == ["lost write"]
    # set_payload changes nothing on an absent point (the node answers 200 all the same)
    h = [op(0, "set_payload", [5], 0, 1, value=1)]
    assert checker.check_final(h, {}) == []
    # a set_payload that completed before the upsert began cannot survive it
    h = [op(0, "set_payload", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2)]
    assert kinds(checker.check_final(h, {5: (2, 1, True)})) == ["lost write"]


def test_conditional_upserts_need_not_be_visible():
    h = [op(0, "upsert", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2, mode="insert_only")]
    assert checker.check_final(h, {5: (1, None, True)}) == []
    # ... but an update_only upsert alone cannot bring back a deleted point
    h = [op(0, "upsert", [5], 0, 1, value=1), op(1, "delete", [5], 2, 3, value=2),
         op(2, "upsert", [5], 4, 5, value=3, mode="update_only")]
    assert kinds(checker.check_final(h, {5: (3, None, True)})) == ["lost write"]


def test_phantom_and_torn_values_are_flagged():
    h = [op(0, "upsert", [5], 0, 1, value=1)]
    assert kinds(checker.check_final(h, {5: (9, None, True)})) == ["lost write", "phantom"]
    assert kinds(checker.check_final(h, {5: (1, None, False)})) == ["torn"]
    # (and the write to 5 is lost: the point is gone without a delete)
    assert kinds(checker.check_final(h, {6: (1, None, True)})) == ["lost write", "phantom"]


def test_reads_from_the_future_and_stale_reads():
    w1, w2 = op(0, "upsert", [5], 0, 1, value=1), op(1, "upsert", [5], 2, 3, value=2)
    fine = op(2, "retrieve", [5], 4, 5, obs={"points": {5: [2, None, True]}, "absent": []},
              consistency="all")
    future = op(3, "retrieve", [5], 0.2, 0.5, obs={"points": {5: [2, None, True]}, "absent": []})
    stale = op(4, "retrieve", [5], 4, 5, obs={"points": {5: [1, None, True]}, "absent": []},
               consistency="all")
    missing = op(5, "retrieve", [5], 4, 5, obs={"points": {}, "absent": [5]}, consistency="all")
    stale_one = op(6, "scroll", [], 4, 5, obs={"points": {5: [1, None, True]}}, consistency="1")
    concurrent = op(7, "retrieve", [5], 2.5, 5, obs={"points": {5: [1, None, True]}, "absent": []},
                    consistency="all")
    anomalies, n_stale = checker.check_reads([w1, w2, fine, concurrent])
    assert anomalies == [] and n_stale == 0
    anomalies, _ = checker.check_reads([w1, w2, future])
    assert kinds(anomalies) == ["phantom"]
    # an overwritten value at consistency=all: the acknowledged overwrite was lost or undone
    anomalies, _ = checker.check_reads([w1, w2, stale])
    assert kinds(anomalies) == ["stale read"] and anomalies[0].ops == [4, 0, 1]
    # allowed staleness is only counted
    anomalies, n_stale = checker.check_reads([w1, w2, missing, stale_one])
    assert anomalies == [] and n_stale == 2


def test_topology_history_conversion_and_check():
    def top(index, kind, t0, t1, outcome=client.OK, result=None, status=200, error=None):
        return Op(index=index, proc=100, kind=kind, peer=0, keys=["c"], t_invoke=t0, t_complete=t1,
                  outcome=outcome, status=status, error=error,
                  obs=None if result is None else {"result": result})
    good = [top(0, "create", 0, 1, result=True), top(1, "create", 2, 3, client.FAILED, status=409),
            top(2, "exists", 4, 5, result=True), top(3, "drop", 6, 7, client.UNKNOWN, status=None),
            top(4, "exists", 8, 9, result=False)]
    anomalies, results = checker.check_topology(good)
    assert anomalies == [] and results["c"].ok is True
    bad = good + [top(5, "exists", 10, 11, result=True)]
    anomalies, _ = checker.check_topology(bad)
    assert kinds(anomalies) == ["not linearizable"] and 5 in anomalies[0].ops


def test_fault_plan_is_seeded_and_reaches_the_end():
    import nemesis
    a = nemesis.plan(random.Random("7/5"), 5, 90)
    b = nemesis.plan(random.Random("7/5"), 5, 90)
    assert [f.describe() for f in a] == [f.describe() for f in b] and len(a) >= 5
    assert abs(a[-1].at + a[-1].duration - 90) < 0.11
    for f in a:
        assert all(0 <= i < 5 for i in f.nodes)
        if f.kind in ("kill", "pause", "slow"):
            assert 1 <= len(f.nodes) <= 2   # never a majority
    only = nemesis.plan(random.Random(1), 3, 60, kinds=("clock",))
    assert {f.kind for f in only} == {"clock"}


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))
