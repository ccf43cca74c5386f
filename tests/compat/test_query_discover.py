"""Discovery and context search: the `discover` / `context` queries of `points/query` and the legacy
`points/discover` (+ batch), over REST and gRPC.

Facts (Qdrant 1.19, lib/segment/src/vector_storage/query/{discovery_query,context_query}.rs):
  * similarity is the raw metric, higher better: dot product (Cosine on normalised vectors),
    minus the squared L2 distance (Euclid), minus the L1 distance (Manhattan);
  * discover: sum over pairs of +1 / -1 / 0 (nearer the positive / the negative / tie), plus
    0.5 * (fast_sigmoid(sim(target)) + 1), fast_sigmoid(x) = x / (1 + |x|);
  * context: sum over pairs of fast_sigmoid(min(sim(positive) - sim(negative) - f32::EPSILON, 0));
  * example points given by id are not returned.
"""

import numpy as np
import pytest
from qdrant_client import models

from qdrant_client import grpc as qgrpc
from qdrant_client.http.exceptions import UnexpectedResponse

from compat_helpers import expect_error, ok_result, rest, scaled_fast_sigmoid, transport_of

N = 40
RNG = np.random.default_rng(5)
VECS = RNG.normal(size=(N, 4)).round(3)
EPS = float(np.finfo(np.float32).eps)


def sim(distance, a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if distance == "Dot":
        return float(a @ b)
    return -float(((a - b) ** 2).sum())


def fast_sigmoid(x):
    return x / (1.0 + abs(x))


@pytest.fixture(params=["Dot", "Euclid"])
def coll(request, client, collection_name):
    distance = request.param
    client.create_collection(collection_name,
                             vectors_config=models.VectorParams(size=4, distance=models.Distance(distance)))
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=VECS[i].tolist()) for i in range(N)])
    return collection_name, distance


def check(hits, expected, limit):
    """The best `limit` of expected {id: score}, best first (ties at the cut either way)."""
    want = sorted(expected.values(), reverse=True)[:limit]
    assert len(hits) == len(want)
    assert [h.score for h in hits] == pytest.approx(want, rel=1e-4, abs=1e-5)
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-4, abs=1e-5), h.id


TARGET = [0.4, 0.1, -0.7, 0.2]
PAIRS = [(3, 17), (25, 8)]


def discover_expected(distance, target, pairs):
    vec = lambda e: VECS[e] if isinstance(e, int) else np.asarray(e)  # noqa: E731
    examples = {e for p in pairs for e in p if isinstance(e, int)} | ({target} if isinstance(target, int) else set())
    out = {}
    for i in range(N):
        if i in examples:
            continue
        rank = sum(np.sign(sim(distance, VECS[i], vec(p)) - sim(distance, VECS[i], vec(n))) for p, n in pairs)
        out[i] = rank + scaled_fast_sigmoid(sim(distance, VECS[i], vec(target)))
    return out


def context_expected(distance, pairs):
    examples = {e for p in pairs for e in p}
    return {i: sum(fast_sigmoid(min(sim(distance, VECS[i], VECS[p]) - sim(distance, VECS[i], VECS[n]) - EPS, 0.0))
                   for p, n in pairs)
            for i in range(N) if i not in examples}


def test_discover_query(client, coll):
    name, distance = coll
    q = models.DiscoverQuery(discover=models.DiscoverInput(
        target=TARGET, context=[models.ContextPair(positive=p, negative=n) for p, n in PAIRS]))
    hits = client.query_points(name, query=q, limit=10, search_params=models.SearchParams(exact=True)).points
    check(hits, discover_expected(distance, TARGET, PAIRS), 10)
    # a point id as the target is excluded too
    q = models.DiscoverQuery(discover=models.DiscoverInput(
        target=11, context=[models.ContextPair(positive=p, negative=n) for p, n in PAIRS]))
    hits = client.query_points(name, query=q, limit=10).points
    check(hits, discover_expected(distance, 11, PAIRS), 10)
    assert 11 not in {h.id for h in hits}


def test_context_query(client, coll):
    name, distance = coll
    q = models.ContextQuery(context=[models.ContextPair(positive=p, negative=n) for p, n in PAIRS])
    hits = client.query_points(name, query=q, limit=N).points
    check(hits, context_expected(distance, PAIRS), N)
    assert all(h.score <= 0.0 for h in hits)


def legacy_discover(qdrant, client, name, target=None, pairs=(), limit=10, offset=None):
    """The legacy discover call (qdrant-client 1.20 no longer wraps it): raw REST, or the gRPC stub.
    Returns [(id, score)]."""
    if transport_of(client) == "grpc":
        example = lambda e: (qgrpc.VectorExample(id=qgrpc.PointId(num=e)) if isinstance(e, int)  # noqa: E731
                             else qgrpc.VectorExample(vector=qgrpc.Vector(data=e)))
        req = qgrpc.DiscoverPoints(
            collection_name=name, limit=limit, offset=offset,
            target=qgrpc.TargetVector(single=example(target)) if target is not None else None,
            context=[qgrpc.ContextExamplePair(positive=example(p), negative=example(n)) for p, n in pairs])
        res = client.grpc_points.Discover(req, timeout=30)
        return [(h.id.num, h.score) for h in res.result]
    body = {"limit": limit, "context": [{"positive": p, "negative": n} for p, n in pairs]}
    if target is not None:
        body["target"] = target
    if offset is not None:
        body["offset"] = offset
    resp = rest(qdrant, "POST", f"/collections/{name}/points/discover", body)
    if resp.status_code != 200:
        raise UnexpectedResponse(resp.status_code, resp.reason, resp.content, resp.headers)
    return [(h["id"], h["score"]) for h in ok_result(resp)]


class Hit:
    def __init__(self, pid, score):
        self.id, self.score = pid, score


def test_legacy_discover_and_batch(qdrant, client, coll):
    name, distance = coll
    hits = [Hit(*h) for h in legacy_discover(qdrant, client, name, TARGET, PAIRS, limit=7)]
    check(hits, discover_expected(distance, TARGET, PAIRS), 7)
    # no target: context search
    hits = [Hit(*h) for h in legacy_discover(qdrant, client, name, None, PAIRS, limit=N)]
    check(hits, context_expected(distance, PAIRS), N)
    page = legacy_discover(qdrant, client, name, None, PAIRS, limit=2, offset=1)
    assert [pid for pid, _ in page] == [h.id for h in hits[1:3]] or \
        [s for _, s in page] == pytest.approx([h.score for h in hits[1:3]], abs=1e-6)

    context = [{"positive": p, "negative": n} for p, n in PAIRS]
    if transport_of(client) == "grpc":
        ex = lambda e: qgrpc.VectorExample(id=qgrpc.PointId(num=e))  # noqa: E731
        pairs = [qgrpc.ContextExamplePair(positive=ex(p), negative=ex(n)) for p, n in PAIRS]
        res = client.grpc_points.DiscoverBatch(qgrpc.DiscoverBatchPoints(collection_name=name, discover_points=[
            qgrpc.DiscoverPoints(collection_name=name, target=qgrpc.TargetVector(single=qgrpc.VectorExample(
                vector=qgrpc.Vector(data=TARGET))), context=pairs, limit=3),
            qgrpc.DiscoverPoints(collection_name=name, context=pairs, limit=2)]), timeout=30)
        batch = [[h.id.num for h in r.result] for r in res.result]
    else:
        batch = [[h["id"] for h in r] for r in ok_result(rest(qdrant, "POST", f"/collections/{name}/points/discover/batch", {
            "searches": [{"target": TARGET, "context": context, "limit": 3}, {"context": context, "limit": 2}]}))]
    assert batch[0] == [pid for pid, _ in legacy_discover(qdrant, client, name, TARGET, PAIRS, limit=3)]
    assert len(batch[1]) == 2


def test_discover_errors(qdrant, client, coll):
    name, _ = coll
    with expect_error(client, "invalid_argument", "context"):
        legacy_discover(qdrant, client, name, None, [], limit=3)
    with expect_error(client, "not_found"):
        client.query_points(name, query=models.DiscoverQuery(discover=models.DiscoverInput(
            target=12345, context=[models.ContextPair(positive=1, negative=2)])))
