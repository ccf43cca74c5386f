"""The Query API's `prefetch` and fusion (hybrid search), over REST and gRPC.

Facts (Qdrant 1.19, docs "Hybrid and Multi-Stage Queries" and lib/segment/src/common/score_fusion.rs,
lib/collection/src/operations/universal_query):
  * a query with prefetches re-scores (vector query) or fuses (`fusion`/`rrf`) their candidates;
  * RRF: a point at 0-based position p of a prefetch with weight w earns 1 / ((p + 1) / w + k - 1),
    summed over the prefetches; default k = 2, default weights 1 (then 1 / (p + k));
  * DBSF: each prefetch's scores are mapped to [0, 1] between mean -+ 3 sample standard deviations
    (a single point or equal scores: 0.5), then summed;
  * the outer filter applies to every prefetch; offset/limit/score_threshold apply after fusion;
  * errors: prefetches without a query, fusion with `using`, RRF weights not matching the prefetches.

Every expected answer here is computed from the plain (exact) results of the individual prefetches,
so the test checks the fusion arithmetic and the plumbing, not a recorded answer.
"""

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import expect_error

N = 60
DIM = 4
RNG = np.random.default_rng(1234)
DENSE = RNG.normal(size=(N, DIM)).round(3)
SPARSE = [sorted(RNG.choice(40, size=3, replace=False).tolist()) for _ in range(N)]
SPARSE_VALUES = RNG.uniform(0.1, 2.0, size=(N, 3)).round(3)

DENSE_Q = [0.3, -0.2, 0.9, 0.1]
SPARSE_Q = models.SparseVector(indices=[1, 5, 9, 13, 17, 21, 25], values=[1.0, 0.7, 1.3, 0.4, 0.9, 1.1, 0.5])
EXACT = models.SearchParams(exact=True)


@pytest.fixture
def hybrid(client, collection_name):
    client.create_collection(
        collection_name,
        vectors_config={"dense": models.VectorParams(size=DIM, distance=models.Distance.DOT)},
        sparse_vectors_config={"text": models.SparseVectorParams()},
    )
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(
            id=i,
            vector={"dense": DENSE[i].tolist(),
                    "text": models.SparseVector(indices=SPARSE[i], values=SPARSE_VALUES[i].tolist())},
            payload={"group": i % 3, "n": i})
        for i in range(N)])
    return collection_name


def dense_prefetch(limit=15, flt=None):
    return models.Prefetch(query=DENSE_Q, using="dense", limit=limit, filter=flt, params=EXACT)


def sparse_prefetch(limit=15, flt=None):
    return models.Prefetch(query=SPARSE_Q, using="text", limit=limit, filter=flt)


def plain(client, name, p):
    """The prefetch run on its own: [(id, score)] best first."""
    hits = client.query_points(name, query=p.query, using=p.using, limit=p.limit, query_filter=p.filter,
                               search_params=p.params).points
    return [(h.id, h.score) for h in hits]


def rrf_expected(lists, k=2, weights=None):
    fused = {}
    for i, lst in enumerate(lists):
        w = 1.0 if weights is None else weights[i]
        for pos, (pid, _) in enumerate(lst):
            fused[pid] = fused.get(pid, 0.0) + (1.0 / ((pos + 1) / w + k - 1) if w > 0 else 0.0)
    return fused


def dbsf_expected(lists):
    fused = {}
    for lst in lists:
        scores = np.array([s for _, s in lst], dtype=np.float64)
        if len(scores) == 1:
            norm = [0.5]
        else:
            mean, sigma = scores.mean(), scores.std(ddof=1)
            low, high = mean - 3 * sigma, mean + 3 * sigma
            norm = [0.5 if high == low else (s - low) / (high - low) for s in scores]
        for (pid, _), s in zip(lst, norm):
            fused[pid] = fused.get(pid, 0.0) + s
    return fused


def check_fused(hits, expected, limit):
    """`hits` are the best `limit` of `expected` (id -> score), best first, scores as expected."""
    got = {h.id: h.score for h in hits}
    assert len(hits) == min(limit, len(expected))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for pid, score in got.items():
        assert score == pytest.approx(expected[pid], rel=1e-5, abs=1e-6), pid
    # nothing better was left out (ties at the cut may go either way)
    cut = min(scores) if scores else float("inf")
    assert all(s <= cut + 1e-6 for pid, s in expected.items() if pid not in got)


def test_rrf_fuses_dense_and_sparse(client, hybrid):
    lists = [plain(client, hybrid, dense_prefetch()), plain(client, hybrid, sparse_prefetch())]
    assert len(lists[0]) == 15 and len(lists[1]) > 5
    expected = rrf_expected(lists)
    for limit in (5, 40):
        hits = client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
                                   query=models.FusionQuery(fusion=models.Fusion.RRF), limit=limit).points
        check_fused(hits, expected, limit)
    # one prefetch alone: RRF keeps its order
    hits = client.query_points(hybrid, prefetch=dense_prefetch(),
                               query=models.FusionQuery(fusion=models.Fusion.RRF), limit=15).points
    assert [h.id for h in hits] == [pid for pid, _ in lists[0]]


def test_weighted_rrf_with_k(client, hybrid):
    lists = [plain(client, hybrid, dense_prefetch()), plain(client, hybrid, sparse_prefetch())]
    for k, weights in ((60, None), (5, [3.0, 0.5]), (2, [0.0, 1.0])):
        hits = client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
                                   query=models.RrfQuery(rrf=models.Rrf(k=k, weights=weights)), limit=40).points
        check_fused(hits, rrf_expected(lists, k, weights), 40)


def test_dbsf(client, hybrid):
    lists = [plain(client, hybrid, dense_prefetch()), plain(client, hybrid, sparse_prefetch())]
    hits = client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
                               query=models.FusionQuery(fusion=models.Fusion.DBSF), limit=40).points
    check_fused(hits, dbsf_expected(lists), 40)


def test_nested_prefetch_rescores_candidates(client, hybrid):
    # sparse finds candidates, dense re-scores exactly those
    candidates = [pid for pid, _ in plain(client, hybrid, sparse_prefetch(limit=10))]
    hits = client.query_points(hybrid, prefetch=sparse_prefetch(limit=10), query=DENSE_Q, using="dense",
                               limit=4).points
    scores = {pid: float(DENSE[pid] @ np.array(DENSE_Q)) for pid in candidates}
    best = sorted(candidates, key=lambda pid: -scores[pid])[:4]
    assert [h.id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx([scores[pid] for pid in best], abs=1e-4)

    # two levels deep: fuse(dense, sparse) -> re-score with dense, limit from the inner fusion
    inner = models.Prefetch(prefetch=[dense_prefetch(), sparse_prefetch()],
                            query=models.FusionQuery(fusion=models.Fusion.RRF), limit=6)
    fused_ids = [h.id for h in client.query_points(
        hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
        query=models.FusionQuery(fusion=models.Fusion.RRF), limit=6).points]
    hits = client.query_points(hybrid, prefetch=inner, query=DENSE_Q, using="dense", limit=10).points
    assert sorted(h.id for h in hits) == sorted(fused_ids)
    assert [h.id for h in hits] == sorted(fused_ids, key=lambda pid: -float(DENSE[pid] @ np.array(DENSE_Q)))

    # a prefetch with no query hands on points in id order; the outer query ranks them
    hits = client.query_points(hybrid, prefetch=models.Prefetch(limit=5), query=DENSE_Q, using="dense",
                               limit=10).points
    assert sorted(h.id for h in hits) == [0, 1, 2, 3, 4]


def test_outer_filter_reaches_prefetches(client, hybrid):
    group1 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    hits = client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
                               query=models.FusionQuery(fusion=models.Fusion.RRF), query_filter=group1,
                               limit=40, with_payload=True).points
    assert hits and all(h.payload["group"] == 1 for h in hits)
    lists = [plain(client, hybrid, dense_prefetch(flt=group1)), plain(client, hybrid, sparse_prefetch(flt=group1))]
    check_fused(hits, rrf_expected(lists), 40)

    # a prefetch's own filter combines with the outer one
    not_n = models.Filter(must_not=[models.HasIdCondition(has_id=[lists[0][0][0]])])
    hits = client.query_points(hybrid, prefetch=dense_prefetch(flt=not_n), query=DENSE_Q, using="dense",
                               query_filter=group1, limit=40).points
    assert [h.id for h in hits] == [pid for pid, _ in plain(client, hybrid, dense_prefetch(16, group1))[1:]]


def test_offset_threshold_and_payload_after_fusion(client, hybrid):
    prefetch = [dense_prefetch(), sparse_prefetch()]
    rrf = models.FusionQuery(fusion=models.Fusion.RRF)
    full = client.query_points(hybrid, prefetch=prefetch, query=rrf, limit=12).points
    page = client.query_points(hybrid, prefetch=prefetch, query=rrf, limit=4, offset=3, with_payload=True,
                               with_vectors=["dense"]).points
    assert [(h.id, h.score) for h in page] == [(h.id, h.score) for h in full[3:7]]
    for h in page:
        assert h.payload == {"group": h.id % 3, "n": h.id}
        assert h.vector["dense"] == pytest.approx(DENSE[h.id].tolist(), abs=1e-6)

    threshold = full[5].score
    above = client.query_points(hybrid, prefetch=prefetch, query=rrf, limit=12, score_threshold=threshold).points
    assert [h.id for h in above] == [h.id for h in full if h.score >= threshold]


def test_batch_with_prefetch(client, hybrid):
    rrf = models.FusionQuery(fusion=models.Fusion.RRF)
    single = client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()], query=rrf, limit=5).points
    batch = client.query_batch_points(hybrid, requests=[
        models.QueryRequest(prefetch=[dense_prefetch(), sparse_prefetch()], query=rrf, limit=5),
        models.QueryRequest(query=DENSE_Q, using="dense", limit=3),
    ])
    assert [h.id for h in batch[0].points] == [h.id for h in single]
    assert len(batch[1].points) == 3


def test_prefetch_errors(client, hybrid):
    with expect_error(client, "invalid_argument", "A query is needed to merge the prefetches"):
        client.query_points(hybrid, prefetch=dense_prefetch())
    with expect_error(client, "invalid_argument", "cannot be combined with the 'using' field"):
        client.query_points(hybrid, prefetch=dense_prefetch(), using="dense",
                            query=models.FusionQuery(fusion=models.Fusion.RRF))
    with expect_error(client, "invalid_argument", "Number of weights in RRF should match number of pre-fetches"):
        client.query_points(hybrid, prefetch=[dense_prefetch(), sparse_prefetch()],
                            query=models.RrfQuery(rrf=models.Rrf(weights=[1.0])))
    with expect_error(client, "invalid_argument", "Not existing vector name"):
        client.query_points(hybrid, prefetch=models.Prefetch(query=DENSE_Q, using="nope"),
                            query=models.FusionQuery(fusion=models.Fusion.RRF))


def test_sample_random_and_scroll_scores(client, hybrid):
    # a query without `query` scrolls by id; like Qdrant 1.19, every point scores 1
    hits = client.query_points(hybrid, limit=3).points
    assert [(h.id, h.score) for h in hits] == [(0, 1.0), (1, 1.0), (2, 1.0)]

    sample = models.SampleQuery(sample=models.Sample.RANDOM)
    seen = set()
    for _ in range(10):
        hits = client.query_points(hybrid, query=sample, limit=5).points
        ids = [h.id for h in hits]
        assert len(ids) == 5 == len(set(ids)) and all(0 <= i < N for i in ids)
        assert all(h.score == 1.0 for h in hits)
        seen.update(ids)
    assert len(seen) > 5, "ten random samples of 5 out of 60 were all the same"

    group1 = models.Filter(must=[models.FieldCondition(key="group", match=models.MatchValue(value=1))])
    hits = client.query_points(hybrid, query=sample, query_filter=group1, limit=100, with_payload=True).points
    assert sorted(h.id for h in hits) == [i for i in range(N) if i % 3 == 1]

    # sampling the candidates of a prefetch
    candidates = {pid for pid, _ in plain(client, hybrid, dense_prefetch(limit=8))}
    hits = client.query_points(hybrid, prefetch=dense_prefetch(limit=8), query=sample, limit=4).points
    assert len(hits) == 4 and {h.id for h in hits} <= candidates
