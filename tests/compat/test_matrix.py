"""The distance matrix (`points/search/matrix/pairs` and `/offsets`), over REST and gRPC.

Facts (Qdrant 1.19 docs "Explore / Distance Matrix"): `sample` random points matching `filter`
(default 10), and for each its `limit` nearest (default 3) among the sampled points, itself
excluded, scored with the collection's distance; pairs list (a, b, score), offsets index into `ids`.
The sample is random, so the checks recompute every neighbour list from the returned sample.
"""

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import expect_error

N = 50
RNG = np.random.default_rng(3)
VECS = RNG.normal(size=(N, 4)).round(3)


@pytest.fixture(params=["Dot", "Euclid"])
def coll(request, client, collection_name):
    client.create_collection(collection_name, vectors_config={
        "v": models.VectorParams(size=4, distance=models.Distance(request.param))})
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector={"v": VECS[i].tolist()}, payload={"even": i % 2 == 0}) for i in range(N)])
    return collection_name, request.param


def score(distance, a, b):
    a, b = VECS[a].astype(np.float64), VECS[b].astype(np.float64)
    return float(a @ b) if distance == "Dot" else float(np.sqrt(((a - b) ** 2).sum()))


def check(distance, ids, rows, limit):
    """rows: {a: [(b, score)]} in answer order; each is a's `limit` best among `ids`."""
    assert len(set(ids)) == len(ids)
    for a in ids:
        others = [b for b in ids if b != a]
        want = sorted((score(distance, a, b) for b in others), reverse=(distance == "Dot"))[:limit]
        got = rows.get(a, [])
        assert [s for _, s in got] == pytest.approx(want, rel=1e-4, abs=1e-4), a
        for b, s in got:
            assert s == pytest.approx(score(distance, a, b), rel=1e-4, abs=1e-4)


def test_matrix_pairs_and_offsets(client, coll):
    name, distance = coll
    res = client.search_matrix_pairs(name, sample=12, limit=4, using="v")
    rows = {}
    for p in res.pairs:
        rows.setdefault(p.a, []).append((p.b, p.score))
    ids = list(rows)
    assert len(ids) == 12
    check(distance, ids, rows, 4)

    even = models.Filter(must=[models.FieldCondition(key="even", match=models.MatchValue(value=True))])
    res = client.search_matrix_offsets(name, query_filter=even, sample=100, limit=2, using="v")
    assert sorted(res.ids) == list(range(0, N, 2))
    rows = {}
    for r, c, s in zip(res.offsets_row, res.offsets_col, res.scores):
        rows.setdefault(res.ids[r], []).append((res.ids[c], s))
    check(distance, res.ids, rows, 2)


def test_matrix_errors(client, coll):
    name, _ = coll
    with expect_error(client, "invalid_argument", "Not existing vector name"):
        client.search_matrix_pairs(name, using="nope")
