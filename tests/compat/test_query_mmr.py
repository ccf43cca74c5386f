"""`nearest` with `mmr` (maximal marginal relevance), over REST and gRPC.

Facts (Qdrant 1.19, lib/collection/src/collection/mmr/mod.rs): the `candidates_limit` nearest points
(default: `limit`) are re-ranked; the first pick is the most relevant, each next maximises
lambda * sim(query, c) - (1 - lambda) * max sim(c, picked), lambda = 1 - diversity (default 0.5),
with the collection's raw similarity; points keep their original scores, in pick order.
"""

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import expect_error, normalize

N = 60
RNG = np.random.default_rng(21)
VECS = RNG.normal(size=(N, 4)).round(3)
Q = [0.3, 0.5, -0.2, 0.8]
EXACT = models.SearchParams(exact=True)


@pytest.fixture
def coll(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=VECS[i].tolist(), payload={"i": i}) for i in range(N)])
    return collection_name


def mmr_expected(candidates, diversity, limit):
    unit = normalize(VECS)
    q = normalize(np.array(Q))
    rel = {i: float(unit[i] @ q) for i in candidates}
    lam = 1.0 - diversity
    picked, remaining = [], list(candidates)
    while remaining and len(picked) < limit:
        def score(i):
            if not picked:
                return rel[i]
            return lam * rel[i] - (1 - lam) * max(float(unit[i] @ unit[p]) for p in picked)
        best = max(remaining, key=score)
        picked.append(best)
        remaining.remove(best)
    return picked, rel


def nearest_ids(k, keep=lambda i: True):
    unit = normalize(VECS)
    q = normalize(np.array(Q))
    return sorted((i for i in range(N) if keep(i)), key=lambda i: -float(unit[i] @ q))[:k]


def test_mmr_reranks_for_diversity(client, coll):
    for diversity in (0.3, 0.6, 0.9):
        hits = client.query_points(coll, query=models.NearestQuery(
            nearest=Q, mmr=models.Mmr(diversity=diversity, candidates_limit=20)), limit=6, search_params=EXACT).points
        want, rel = mmr_expected(nearest_ids(20), diversity, 6)
        assert [h.id for h in hits] == want, diversity
        assert [h.score for h in hits] == pytest.approx([rel[i] for i in want], abs=1e-5)
    # no diversity: plain nearest order
    hits = client.query_points(coll, query=models.NearestQuery(
        nearest=Q, mmr=models.Mmr(diversity=0.0, candidates_limit=20)), limit=6, search_params=EXACT).points
    assert [h.id for h in hits] == nearest_ids(6)


def test_mmr_over_prefetch_and_payload(client, coll):
    even = models.Filter(must=[models.FieldCondition(key="i", range=models.Range(lt=30))])
    pre = models.Prefetch(query=Q, limit=15, filter=even, params=EXACT)
    hits = client.query_points(coll, prefetch=pre, query=models.NearestQuery(
        nearest=Q, mmr=models.Mmr(diversity=0.7, candidates_limit=15)), limit=4, with_payload=True).points
    want, _ = mmr_expected(nearest_ids(15, lambda i: i < 30), 0.7, 4)
    assert [h.id for h in hits] == want
    assert all(h.payload == {"i": h.id} for h in hits)


def test_mmr_errors(client, coll):
    with expect_error(client, "validation", "diversity"):
        client.query_points(coll, query=models.NearestQuery(nearest=Q, mmr=models.Mmr(diversity=1.5)))
