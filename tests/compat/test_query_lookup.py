"""`lookup_from` (example ids looked up in another collection, or another vector) and the
`relevance_feedback` query, over REST and gRPC.

Facts (Qdrant 1.19, lib/collection/src/operations/universal_query/collection_query.rs and
lib/segment/src/vector_storage/query/feedback_query.rs):
  * ids in a query or prefetch with `lookup_from` are read from `lookup_from.collection`, vector
    `lookup_from.vector` (default: the query's `using`); they are excluded from the results only
    when that collection is the searched one;
  * a missing lookup collection is a 404;
  * relevance feedback, naive strategy: score = a * sim(target) + sum over ordered pairs of
    feedback items with score_i - score_j > 0 of (score_i - score_j)^b * c * (sim(i) - sim(j)),
    where sim is the raw similarity (dot product for Dot, minus the squared L2 distance for Euclid).
"""

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import brute_force, expect_error

N = 30
RNG = np.random.default_rng(17)
VECS = RNG.normal(size=(N, 4)).round(3)
# The "library" collection: other points, under a named vector, with ids that overlap VECS's.
LIB = RNG.normal(size=(10, 4)).round(3)


def sim(distance, a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if distance == "Dot":
        return float(a @ b)
    return -float(((a - b) ** 2).sum())


@pytest.fixture(params=["Dot", "Euclid"])
def colls(request, client, collection_name):
    distance = request.param
    client.create_collection(collection_name,
                             vectors_config=models.VectorParams(size=4, distance=models.Distance(distance)))
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=VECS[i].tolist()) for i in range(N)])
    lib = collection_name + "_lib"
    client.create_collection(lib, vectors_config={
        "img": models.VectorParams(size=4, distance=models.Distance.DOT),
        "wide": models.VectorParams(size=6, distance=models.Distance.DOT)})
    client.upsert(lib, wait=True, points=[
        models.PointStruct(id=i, vector={"img": LIB[i].tolist(), "wide": [0.1] * 6}) for i in range(len(LIB))])
    yield collection_name, lib, distance
    client.delete_collection(lib)


def expected_nearest(distance, query, limit, exclude=()):
    """[(id, score)] best first, Qdrant's score conventions."""
    ids, scores = brute_force(distance, VECS, query, limit, exclude=exclude)
    return list(zip((int(i) for i in ids), scores))


def check_nearest(hits, distance, query, limit, exclude=()):
    want = expected_nearest(distance, query, limit, exclude)
    assert [h.id for h in hits] == [i for i, _ in want]
    assert [h.score for h in hits] == pytest.approx([s for _, s in want], rel=1e-4, abs=1e-5)


def test_nearest_id_from_another_collection(client, colls):
    name, lib, distance = colls
    hits = client.query_points(name, query=3, limit=5, search_params=models.SearchParams(exact=True),
                               lookup_from=models.LookupLocation(collection=lib, vector="img")).points
    # LIB[3] is the query; point 3 of the searched collection is not an example, so it may be returned.
    check_nearest(hits, distance, LIB[3], 5)
    hits = client.query_points(name, query=3, limit=N, lookup_from=models.LookupLocation(collection=lib, vector="img"),
                               search_params=models.SearchParams(exact=True)).points
    assert 3 in {h.id for h in hits}


def test_lookup_in_the_searched_collection_excludes_the_examples(client, colls):
    name, _, distance = colls
    hits = client.query_points(name, query=4, limit=5, search_params=models.SearchParams(exact=True),
                               lookup_from=models.LookupLocation(collection=name)).points
    check_nearest(hits, distance, VECS[4], 5, exclude=[4])


def test_recommend_and_prefetch_with_lookup(client, colls):
    name, lib, distance = colls
    # best_score recommendation with examples from the library: compare with the same
    # recommendation given the library's vectors inline.
    inline = client.query_points(name, query=models.RecommendQuery(recommend=models.RecommendInput(
        positive=[LIB[1].tolist(), LIB[2].tolist()], negative=[LIB[7].tolist()], strategy="best_score")),
        limit=8, search_params=models.SearchParams(exact=True)).points
    looked_up = client.query_points(name, query=models.RecommendQuery(recommend=models.RecommendInput(
        positive=[1, 2], negative=[7], strategy="best_score")), limit=8,
        search_params=models.SearchParams(exact=True),
        lookup_from=models.LookupLocation(collection=lib, vector="img")).points
    assert [(h.id, round(h.score, 5)) for h in looked_up] == [(h.id, round(h.score, 5)) for h in inline]
    # average_vector: the query is 2 * avg(positive) - avg(negative), searched as nearest
    avg = client.query_points(name, query=models.RecommendQuery(recommend=models.RecommendInput(
        positive=[1, 2], negative=[7])), limit=6, search_params=models.SearchParams(exact=True),
        lookup_from=models.LookupLocation(collection=lib, vector="img")).points
    check_nearest(avg, distance, LIB[1] + LIB[2] - LIB[7], 6)

    # a prefetch with its own lookup_from; the outer query re-scores its candidates by id 0
    # of the searched collection (excluded as an example).
    res = client.query_points(name, prefetch=models.Prefetch(
        query=5, limit=10, lookup_from=models.LookupLocation(collection=lib, vector="img")),
        query=0, limit=4, search_params=models.SearchParams(exact=True)).points
    candidates = {i for i, _ in expected_nearest(distance, LIB[5], 10)} - {0}
    want = sorted(candidates, key=lambda i: -sim(distance, VECS[i], VECS[0]))[:4]
    assert [h.id for h in res] == want


def test_query_groups_with_lookup_from(client, colls):
    name, lib, distance = colls
    for i in range(N):
        client.set_payload(name, payload={"g": i % 3}, points=[i], wait=True)
    res = client.query_points_groups(name, group_by="g", query=2, limit=3, group_size=1,
                                     search_params=models.SearchParams(exact=True),
                                     lookup_from=models.LookupLocation(collection=lib, vector="img"))
    best = expected_nearest(distance, LIB[2], N)
    heads = {}
    for i, _ in best:
        heads.setdefault(i % 3, i)
    assert sorted(g.hits[0].id for g in res.groups) == sorted(heads.values())


def test_lookup_errors(client, colls):
    name, lib, _ = colls
    with expect_error(client, "not_found", "missing_lookup"):
        client.query_points(name, query=1, lookup_from=models.LookupLocation(collection="missing_lookup"))
    # the looked-up vector must fit the searched vector
    with expect_error(client, "invalid_argument", "dim"):
        client.query_points(name, query=1, lookup_from=models.LookupLocation(collection=lib, vector="wide"))
    # a point the lookup collection lacks
    with expect_error(client, "not_found"):
        client.query_points(name, query=77, lookup_from=models.LookupLocation(collection=lib, vector="img"))


def feedback_expected(distance, target, items, a, b, c, exclude):
    out = {}
    for i in range(N):
        if i in exclude:
            continue
        s = a * sim(distance, VECS[i], target)
        for vi, si in items:
            for vj, sj in items:
                conf = si - sj
                if conf > 0:
                    s += conf ** b * c * (sim(distance, VECS[i], vi) - sim(distance, VECS[i], vj))
        out[i] = s
    return out


def test_relevance_feedback(client, colls):
    name, _, distance = colls
    target = [0.3, -0.2, 0.5, 0.1]
    feedback = [(2, 0.9), (5, 0.2), ([0.1, 0.1, -0.4, 0.6], 0.5), (9, 0.5)]
    a, b, c = 0.8, 1.5, 0.6
    q = models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(
        target=target,
        feedback=[models.FeedbackItem(example=e, score=s) for e, s in feedback],
        strategy=models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams(a=a, b=b, c=c))))
    hits = client.query_points(name, query=q, limit=N, search_params=models.SearchParams(exact=True)).points
    items = [(VECS[e] if isinstance(e, int) else np.asarray(e), s) for e, s in feedback]
    expected = feedback_expected(distance, target, items, a, b, c, exclude={2, 5, 9})
    assert {h.id for h in hits} == set(expected)
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-4, abs=1e-4), h.id
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    with expect_error(client, "validation", "must be 0.0 or larger"):
        bad = models.RelevanceFeedbackQuery(relevance_feedback=models.RelevanceFeedbackInput(
            target=target, feedback=[],
            strategy=models.NaiveFeedbackStrategy(naive=models.NaiveFeedbackStrategyParams.model_construct(
                a=1.0, b=-1.0, c=1.0))))
        client.query_points(name, query=bad)
