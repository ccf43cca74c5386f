"""Search correctness and the query API.

Facts (Qdrant 1.19):
* Scores: Cosine = dot product of L2-normalised vectors (vectors normalised on insert, query
  normalised before scoring), Dot = raw dot product; both ordered descending. Euclid = L2 distance,
  Manhattan = L1 distance, returned as the score and ordered ascending
  (lib/segment/src/spaces/simple.rs `postprocess`: Euclid takes sqrt of the squared distance).
* `exact: true` = full scan; results equal brute force.
* POST /points/query -> {"points": [ScoredPoint]}; ScoredPoint {id, version, score, payload?, vector?};
  REST defaults limit 10, with_payload false, with_vector false (CollectionQueryRequest defaults).
* query = point id -> nearest to that point's stored vector, the point itself excluded; recommend
  excludes its positive/negative example ids (collection_query.rs `exclude_referenced_ids`).
* recommend average_vector: search with avg(pos) + (avg(pos) - avg(neg)), or avg(pos) without
  negatives (recommendations.rs `avg_vector_for_recommendation`);
  best_score: per candidate, if max_pos > max_neg then sigmoid(max_pos) else -sigmoid(max_neg),
  sigmoid(x) = 0.5*(x/(1+|x|)+1) (vector_storage/query/reco_query.rs, common/math.rs).
* score_threshold: similarity >= threshold for Cosine/Dot, distance <= threshold for Euclid/Manhattan.
* Legacy /points/search, /points/search/batch, /points/recommend still served in 1.19 (the consensus
  suite calls them) even though they left the OpenAPI spec; their results equal the query API's
  (tests/openapi/test_query.py test_basic_search / test_basic_recommend_*).

Tests taking `client` run over REST and gRPC; the legacy REST routes run over REST only (the gRPC
legacy Search/Recommend are in test_grpc.py: qdrant-client 1.20 no longer wraps them).
"""

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import brute_force, normalize, ok_result, rest, scaled_fast_sigmoid, similarity

DISTANCES = ["Cosine", "Dot", "Euclid", "Manhattan"]
N, DIM = 600, 16


def make_data(seed, n=N, dim=DIM):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)).astype(np.float32)


def load(client, name, data, distance, ids=None, payload=None):
    client.create_collection(name, vectors_config=models.VectorParams(size=data.shape[1], distance=models.Distance(distance)))
    ids = ids if ids is not None else list(range(len(data)))
    for s in range(0, len(data), 200):
        client.upsert(name, wait=True, points=models.Batch(
            ids=ids[s:s + 200], vectors=data[s:s + 200].tolist(),
            payloads=[payload(i) for i in range(s, min(s + 200, len(data)))] if payload else None))
    return ids


def check_against(hits, ids, ref_pos, ref_scores, tol=1e-4):
    assert [h.id for h in hits] == [ids[i] for i in ref_pos], \
        f"ids differ:\n got {[h.id for h in hits]}\nwant {[ids[i] for i in ref_pos]}"
    for h, s in zip(hits, ref_scores):
        assert h.score == pytest.approx(s, abs=tol, rel=tol), (h.id, h.score, s)


@pytest.mark.parametrize("distance", DISTANCES)
def test_exact_search_equals_brute_force(client, collection_name, distance):
    data = make_data(1)
    ids = load(client, collection_name, data, distance)
    rng = np.random.default_rng(2)
    for _ in range(15):
        q = rng.normal(size=DIM).astype(np.float32)
        hits = client.query_points(collection_name, query=q.tolist(), limit=10,
                                   search_params=models.SearchParams(exact=True)).points
        pos, scores = brute_force(distance, data, q, 10)
        check_against(hits, ids, pos, scores)
        # scores are monotone in the documented direction
        s = [h.score for h in hits]
        assert s == sorted(s, reverse=distance in ("Cosine", "Dot"))


@pytest.mark.parametrize("distance", DISTANCES)
def test_query_offset_threshold_and_filter(client, collection_name, distance):
    data = make_data(3)
    ids = load(client, collection_name, data, distance, payload=lambda i: {"g": i % 4})
    q = np.random.default_rng(4).normal(size=DIM).astype(np.float32)
    exact = models.SearchParams(exact=True)
    pos, scores = brute_force(distance, data, q, 30)

    # offset skips the first results
    hits = client.query_points(collection_name, query=q.tolist(), limit=10, offset=5, search_params=exact).points
    check_against(hits, ids, pos[5:15], scores[5:15])

    # score_threshold halfway between the 12th and 13th result
    thr = (scores[11] + scores[12]) / 2
    hits = client.query_points(collection_name, query=q.tolist(), limit=30, score_threshold=thr, search_params=exact).points
    check_against(hits, ids, pos[:12], scores[:12])

    # filter + limit
    flt = models.Filter(must=[models.FieldCondition(key="g", match=models.MatchValue(value=2))])
    hits = client.query_points(collection_name, query=q.tolist(), limit=7, query_filter=flt, search_params=exact,
                               with_payload=True).points
    fpos, fscores = brute_force(distance, data, q, 7, exclude=[i for i in range(N) if i % 4 != 2])
    check_against(hits, ids, fpos, fscores)
    assert all(h.payload == {"g": 2} for h in hits)


def test_query_hnsw_ef_param_and_version_field(qdrant, client, collection_name):
    data = make_data(5)
    load(client, collection_name, data, "Cosine")
    q = data[17].tolist()
    hits = client.query_points(collection_name, query=q, limit=5,
                               search_params=models.SearchParams(hnsw_ef=128, exact=False)).points
    assert len(hits) == 5
    assert hits[0].id == 17 and hits[0].score == pytest.approx(1.0, abs=1e-4)
    # raw shape: {"points": [{id, version, score}]} with payload/vector absent by default
    res = ok_result(rest(qdrant, "POST", f"/collections/{collection_name}/points/query",
                         {"query": q, "limit": 3, "params": {"hnsw_ef": 64, "exact": False}}))
    assert set(res) >= {"points"}
    p0 = res["points"][0]
    assert p0["id"] == 17
    assert isinstance(p0["version"], int)
    assert isinstance(p0["score"], float)
    assert not p0.get("payload")
    assert p0.get("vector") is None
    # default limit is 10
    res = ok_result(rest(qdrant, "POST", f"/collections/{collection_name}/points/query", {"query": q}))
    assert len(res["points"]) == 10


@pytest.mark.parametrize("distance", ["Cosine", "Euclid"])
def test_query_by_point_id_excludes_itself(client, collection_name, distance):
    data = make_data(6)
    ids = load(client, collection_name, data, distance)
    for pid in (0, 123, 599):
        hits = client.query_points(collection_name, query=pid, limit=8,
                                   search_params=models.SearchParams(exact=True)).points
        pos, scores = brute_force(distance, data, data[pid], 8, exclude=[pid])
        check_against(hits, ids, pos, scores)
    # the nearest-query form with an id is the same
    hits2 = client.query_points(collection_name, query=models.NearestQuery(nearest=599), limit=8,
                                search_params=models.SearchParams(exact=True)).points
    assert [h.id for h in hits2] == [h.id for h in hits]


def test_query_batch_points(client, collection_name):
    data = make_data(7)
    ids = load(client, collection_name, data, "Dot", payload=lambda i: {"odd": bool(i % 2)})
    rng = np.random.default_rng(8)
    qs = [rng.normal(size=DIM).astype(np.float32) for _ in range(3)]
    exact = models.SearchParams(exact=True)
    reqs = [
        models.QueryRequest(query=qs[0].tolist(), limit=5, params=exact),
        models.QueryRequest(query=qs[1].tolist(), limit=3, params=exact, filter=models.Filter(
            must=[models.FieldCondition(key="odd", match=models.MatchValue(value=True))])),
        models.QueryRequest(query=qs[2].tolist(), limit=4, offset=2, params=exact, with_payload=True),
    ]
    res = client.query_batch_points(collection_name, requests=reqs)
    assert len(res) == 3
    pos, sc = brute_force("Dot", data, qs[0], 5)
    check_against(res[0].points, ids, pos, sc)
    pos, sc = brute_force("Dot", data, qs[1], 3, exclude=range(0, N, 2))
    check_against(res[1].points, ids, pos, sc)
    pos, sc = brute_force("Dot", data, qs[2], 6)
    check_against(res[2].points, ids, pos[2:], sc[2:])
    assert res[2].points[0].payload == {"odd": bool(res[2].points[0].id % 2)}


def test_named_vectors_using(client, collection_name):
    rng = np.random.default_rng(9)
    img = rng.normal(size=(300, 4)).astype(np.float32)
    txt = rng.normal(size=(300, 8)).astype(np.float32)
    client.create_collection(collection_name, vectors_config={
        "image": models.VectorParams(size=4, distance=models.Distance.EUCLID),
        "text": models.VectorParams(size=8, distance=models.Distance.COSINE),
    })
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector={"image": img[i].tolist(), "text": txt[i].tolist()}) for i in range(300)])
    ids = list(range(300))
    exact = models.SearchParams(exact=True)
    q = rng.normal(size=8).astype(np.float32)
    hits = client.query_points(collection_name, query=q.tolist(), using="text", limit=6, search_params=exact).points
    check_against(hits, ids, *brute_force("Cosine", txt, q, 6))
    q = rng.normal(size=4).astype(np.float32)
    hits = client.query_points(collection_name, query=q.tolist(), using="image", limit=6, search_params=exact,
                               with_vectors=["image"]).points
    check_against(hits, ids, *brute_force("Euclid", img, q, 6))
    assert set(hits[0].vector) == {"image"}
    # query by id on a named vector
    hits = client.query_points(collection_name, query=42, using="image", limit=5, search_params=exact).points
    check_against(hits, ids, *brute_force("Euclid", img, img[42], 5, exclude=[42]))


@pytest.mark.parametrize("distance", ["Cosine", "Dot"])
def test_recommend_average_vector(client, collection_name, distance):
    data = make_data(10, n=400)
    ids = load(client, collection_name, data, distance)
    stored = normalize(data) if distance == "Cosine" else data.astype(np.float64)
    pos_ids, neg_ids = [3, 50, 77], [10, 200]
    exact = models.SearchParams(exact=True)
    avg_p = stored[pos_ids].mean(axis=0)
    avg_n = stored[neg_ids].mean(axis=0)
    target = avg_p + (avg_p - avg_n)
    hits = client.query_points(collection_name, limit=10, search_params=exact, query=models.RecommendQuery(
        recommend=models.RecommendInput(positive=pos_ids, negative=neg_ids,
                                        strategy=models.RecommendStrategy.AVERAGE_VECTOR))).points
    check_against(hits, ids, *brute_force(distance, stored, target, 10, exclude=pos_ids + neg_ids))
    # positives only: plain average; default strategy is average_vector
    hits = client.query_points(collection_name, limit=10, search_params=exact, query=models.RecommendQuery(
        recommend=models.RecommendInput(positive=pos_ids))).points
    check_against(hits, ids, *brute_force(distance, stored, avg_p, 10, exclude=pos_ids))


@pytest.mark.parametrize("distance", ["Cosine", "Dot"])
def test_recommend_best_score(client, collection_name, distance):
    data = make_data(11, n=400)
    ids = load(client, collection_name, data, distance)
    stored = normalize(data) if distance == "Cosine" else data.astype(np.float64)
    pos_ids, neg_ids = [5, 60], [9, 300, 301]
    scores = []
    for i in range(len(data)):
        if i in pos_ids or i in neg_ids:
            continue
        mp = max(similarity(distance, stored[i], stored[p]) for p in pos_ids)
        mn = max(similarity(distance, stored[i], stored[n]) for n in neg_ids)
        scores.append((scaled_fast_sigmoid(mp) if mp > mn else -scaled_fast_sigmoid(mn), i))
    scores.sort(key=lambda t: -t[0])
    want = scores[:10]
    hits = client.query_points(collection_name, limit=10, search_params=models.SearchParams(exact=True),
                               query=models.RecommendQuery(recommend=models.RecommendInput(
                                   positive=pos_ids, negative=neg_ids, strategy=models.RecommendStrategy.BEST_SCORE))).points
    check_against(hits, ids, [i for _, i in want], [s for s, _ in want])


def test_legacy_search_endpoints(qdrant, rest_client, collection_name):
    # REST only: raw calls of the legacy REST routes.
    client = rest_client
    data = make_data(12, n=300)
    ids = load(client, collection_name, data, "Euclid", payload=lambda i: {"i": i})
    q = data[0] + 0.01
    base = f"/collections/{collection_name}/points"
    pos, scores = brute_force("Euclid", data, q, 5)

    res = ok_result(rest(qdrant, "POST", base + "/search", {"vector": q.tolist(), "limit": 5,
                                                            "params": {"exact": True}}))
    assert [p["id"] for p in res] == [ids[i] for i in pos]
    assert [p["score"] for p in res] == pytest.approx(scores, abs=1e-4)
    assert not res[0].get("payload")            # legacy search default: no payload
    res = ok_result(rest(qdrant, "POST", base + "/search", {"vector": q.tolist(), "limit": 2, "with_payload": True,
                                                            "params": {"exact": True}}))
    assert res[0]["payload"] == {"i": ids[pos[0]]}

    # identical to the query API
    qres = ok_result(rest(qdrant, "POST", base + "/query", {"query": q.tolist(), "limit": 5, "params": {"exact": True}}))
    assert [p["id"] for p in qres["points"]] == [ids[i] for i in pos]

    batch = ok_result(rest(qdrant, "POST", base + "/search/batch", {"searches": [
        {"vector": q.tolist(), "limit": 3, "params": {"exact": True}},
        {"vector": data[7].tolist(), "limit": 2, "params": {"exact": True},
         "filter": {"must": [{"key": "i", "range": {"gte": 100}}]}},
    ]}))
    assert len(batch) == 2
    assert [p["id"] for p in batch[0]] == [ids[i] for i in pos[:3]]
    fpos, _ = brute_force("Euclid", data, data[7], 2, exclude=range(100))
    assert [p["id"] for p in batch[1]] == [ids[i] for i in fpos]
    assert ok_result(rest(qdrant, "POST", base + "/search/batch", {"searches": []})) == []

    rec = ok_result(rest(qdrant, "POST", base + "/recommend", {"positive": [0], "limit": 4, "params": {"exact": True}}))
    rpos, rsc = brute_force("Euclid", data, data[0], 4, exclude=[0])
    assert [p["id"] for p in rec] == [ids[i] for i in rpos]
    assert [p["score"] for p in rec] == pytest.approx(rsc, abs=1e-4)
    rq = ok_result(rest(qdrant, "POST", base + "/query", {"query": {"recommend": {"positive": [0]}}, "limit": 4,
                                                          "params": {"exact": True}}))
    assert [p["id"] for p in rq["points"]] == [p["id"] for p in rec]


def test_query_without_query_is_scroll_like(client, collection_name):
    data = make_data(13, n=50)
    load(client, collection_name, data, "Dot", ids=list(range(100, 150)))
    res = client.query_points(collection_name, limit=5)
    assert [p.id for p in res.points] == [100, 101, 102, 103, 104]
    # offset applies as well
    res = client.query_points(collection_name, limit=3, offset=10)
    assert [p.id for p in res.points] == [110, 111, 112]
