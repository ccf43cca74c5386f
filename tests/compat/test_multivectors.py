"""Multivectors (`multivector_config: {comparator: max_sim}`) and dense `datatype`s.

Facts (Qdrant 1.19, lib/segment/src/vector_storage/query_scorer/mod.rs `score_max_similarity` and
lib/collection/src/shards/local_shard/search.rs): a MaxSim score is the sum over the query's rows of
the best similarity to any stored row (Cosine: of normalised rows, Dot: raw, Euclid: minus the
squared distance); a nearest search then post-processes the sum like a single score (Euclid: the
square root of its absolute value). `float16` stores half-precision values; `uint8` stores whole
numbers and serves them back as written (Cosine is computed on the fly).
"""

import time

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import expect_error, normalize, rest, wait_until

RNG = np.random.default_rng(7)


def max_sim(distance, query, stored):
    q = np.asarray(query, dtype=np.float64)
    d = np.asarray(stored, dtype=np.float64)
    if distance == "Cosine":
        sims = normalize(q) @ normalize(d).T
    elif distance == "Dot":
        sims = q @ d.T
    else:  # Euclid
        sims = -((q[:, None, :] - d[None, :, :]) ** 2).sum(axis=2)
    total = sims.max(axis=1).sum()
    return float(np.sqrt(abs(total))) if distance == "Euclid" else float(total)


def multi_data(n, dim):
    return {i: RNG.normal(size=(int(RNG.integers(1, 5)), dim)).round(3).tolist() for i in range(1, n + 1)}


@pytest.mark.parametrize("distance", ["Cosine", "Dot", "Euclid"])
def test_max_sim_matches_exact_computation(client, collection_name, distance):
    dim = 4
    client.create_collection(collection_name, vectors_config={
        "colbert": models.VectorParams(
            size=dim, distance=models.Distance(distance),
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)),
        "plain": models.VectorParams(size=2, distance=models.Distance.DOT),
    })
    info = client.get_collection(collection_name)
    mv = info.config.params.vectors["colbert"].multivector_config
    assert mv is not None and mv.comparator == models.MultiVectorComparator.MAX_SIM

    data = multi_data(30, dim)
    points = [models.PointStruct(id=i, vector={"colbert": rows, "plain": [1.0, float(i)]}, payload={"i": i})
              for i, rows in data.items()]
    # point 31 has no multivector at all (optional vectors)
    points.append(models.PointStruct(id=31, vector={"plain": [0.0, 1.0]}))
    client.upsert(collection_name, points=points, wait=True)

    query = RNG.normal(size=(3, dim)).round(3).tolist()
    expected = sorted(((max_sim(distance, query, rows), i) for i, rows in data.items()),
                      key=lambda t: -t[0] if distance != "Euclid" else t[0])
    hits = client.query_points(collection_name, query=query, using="colbert", limit=10).points
    assert [h.id for h in hits] == [i for _, i in expected[:10]]
    assert [h.score for h in hits] == pytest.approx([s for s, _ in expected[:10]], rel=1e-4, abs=1e-4)

    # a filtered search and a search by an existing point's id (its multivector is the query)
    hits = client.query_points(collection_name, query=query, using="colbert", limit=3,
                               query_filter=models.Filter(must=[models.FieldCondition(
                                   key="i", range=models.Range(lt=10))])).points
    assert all(h.id < 10 for h in hits) and len(hits) == 3
    by_id = client.query_points(collection_name, query=5, using="colbert", limit=3).points
    assert 5 not in [h.id for h in by_id] and len(by_id) == 3

    # records carry the multivector back as written (Cosine: normalised rows)
    rec = client.retrieve(collection_name, ids=[2], with_vectors=True)[0]
    want = normalize(data[2]) if distance == "Cosine" else np.asarray(data[2])
    assert np.asarray(rec.vector["colbert"]) == pytest.approx(want, abs=1e-5)

    # has_vector: only the 30 points that have a multivector
    flt = models.Filter(must=[models.HasVectorCondition(has_vector="colbert")])
    assert client.count(collection_name, count_filter=flt, exact=True).count == 30


def test_default_multivector_and_errors(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(
        size=2, distance=models.Distance.DOT,
        multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM)))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector=[[1.0, 0.0], [0.0, 2.0]]),
        models.PointStruct(id=2, vector=[[3.0, 3.0]]),
    ])
    rec = client.retrieve(collection_name, ids=[1], with_vectors=True)[0]
    assert rec.vector == [[1.0, 0.0], [0.0, 2.0]]
    hits = client.query_points(collection_name, query=[[1.0, 0.0], [0.0, 1.0]], limit=5).points
    # point 1: max(1, 0) + max(0, 2) = 3; point 2: 3 + 3 = 6
    assert [(h.id, h.score) for h in hits] == [(2, pytest.approx(6.0)), (1, pytest.approx(3.0))]

    with expect_error(client, "invalid_argument", "dimension"):
        client.upsert(collection_name, wait=True, points=[models.PointStruct(id=3, vector=[[1.0, 2.0, 3.0]])])
    with expect_error(client, "invalid_argument", "dimension"):
        client.query_points(collection_name, query=[[1.0]], limit=1)


def test_multivector_into_regular_vector_is_rejected(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    with expect_error(client, "invalid_argument"):
        client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[[1.0, 2.0]])])


def test_float16_datatype_rounds_to_half_precision(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(
        size=3, distance=models.Distance.DOT, datatype=models.Datatype.FLOAT16))
    assert client.get_collection(collection_name).config.params.vectors.datatype == models.Datatype.FLOAT16
    v = [0.1, 1234.567, -3.3333333]
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=v)])
    got = client.retrieve(collection_name, ids=[1], with_vectors=True)[0].vector
    assert got == pytest.approx(np.asarray(v, dtype=np.float16).astype(np.float32).tolist(), rel=0, abs=1e-6)
    assert got != pytest.approx(v, rel=0, abs=1e-6)
    hit = client.query_points(collection_name, query=[1.0, 0.0, 0.0], limit=1).points[0]
    assert hit.score == pytest.approx(float(np.float16(0.1)), abs=1e-6)


def test_uint8_datatype_keeps_integers_and_scores_cosine(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(
        size=3, distance=models.Distance.COSINE, datatype=models.Datatype.UINT8))
    data = {1: [10, 20, 30], 2: [255, 0, 1], 3: [0, 0, 7]}
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[float(x) for x in v]) for i, v in data.items()])
    for rec in client.retrieve(collection_name, ids=list(data), with_vectors=True):
        assert rec.vector == pytest.approx(data[rec.id])
    q = [1.0, 2.0, 3.0]
    hits = client.query_points(collection_name, query=q, limit=3).points
    exp = {i: float(normalize(v) @ normalize(q)) for i, v in data.items()}
    assert [h.id for h in hits] == sorted(exp, key=lambda i: -exp[i])
    assert [h.score for h in hits] == pytest.approx(sorted(exp.values(), reverse=True), abs=1e-5)


def test_unknown_datatype_and_comparator_are_rejected(qdrant, collection_name):
    for vectors, what in [({"size": 2, "distance": "Dot", "datatype": "int4"}, "datatype"),
                          ({"size": 2, "distance": "Dot", "multivector_config": {"comparator": "min_sim"}},
                           "comparator")]:
        r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": vectors})
        assert r.status_code in (400, 422), r.text
        assert what in r.json()["status"]["error"]


def test_integer_multivectors_over_raw_json(qdrant, collection_name):
    """`[[1, 0], [0, 2]]` with whole numbers is a multivector (not indices + values of a sparse one)."""
    name = collection_name
    r = rest(qdrant, "PUT", f"/collections/{name}", {"vectors": {"colbert": {
        "size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}}})
    assert r.status_code == 200, r.text
    r = rest(qdrant, "PUT", f"/collections/{name}/points", {"points": [
        {"id": 1, "vector": {"colbert": [[1, 0], [0, 2]]}}]}, params={"wait": "true"})
    assert r.status_code == 200, r.text
    r = rest(qdrant, "POST", f"/collections/{name}/points/query", {"query": [[1, 0], [0, 1]], "using": "colbert"})
    assert r.status_code == 200, r.text
    assert [(p["id"], p["score"]) for p in r.json()["result"]["points"]] == [(1, pytest.approx(3.0))]


def _fill_multi(client, name, data, m, quantization=None, datatype=None):
    client.create_collection(
        name,
        vectors_config={"colbert": models.VectorParams(
            size=data[0].shape[1], distance=models.Distance.COSINE, datatype=datatype,
            multivector_config=models.MultiVectorConfig(comparator=models.MultiVectorComparator.MAX_SIM))},
        hnsw_config=models.HnswConfigDiff(m=m, ef_construct=100),
        quantization_config=quantization,
    )
    for s in range(0, len(data), 500):
        client.upsert(name, wait=True, points=[
            models.PointStruct(id=i, vector={"colbert": data[i].tolist()}, payload={"even": i % 2 == 0})
            for i in range(s, min(s + 500, len(data)))])


def _topic_data(n=3000, dim=32, queries=25):
    """Rows near one of 40 topics: nearest neighbours that mean something, as with real tokens."""
    rng = np.random.default_rng(11)
    topics = normalize(rng.normal(size=(40, dim)))
    data = [normalize(topics[rng.integers(0, 40, size=int(rng.integers(2, 7)))]
                      + 0.35 * rng.normal(size=(1, dim))) for _ in range(n)]
    data = [d + 0.1 * rng.normal(size=d.shape) for d in data]
    qs = [normalize(topics[rng.integers(0, 40, size=3)] + 0.3 * rng.normal(size=(3, dim)))
          for _ in range(queries)]
    return data, qs


TOPIC_DATA, TOPIC_QUERIES = _topic_data()


def _graph_recall(client, name, search_quantization=None, float16=False):
    """recall@10 of the graph search at hnsw_ef 256 against numpy's exact MaxSim; every score
    returned is checked to be the exact MaxSim (candidates are rescored from the stored rows,
    which a float16 collection keeps rounded to half precision)."""
    n = len(TOPIC_DATA)
    info = wait_until(lambda: (lambda i: i if (i.indexed_vectors_count or 0) >= n else None)(
        client.get_collection(name)), 180, what="the multivectors to be indexed")
    assert info.indexed_vectors_count == n
    stored = [normalize(d) for d in TOPIC_DATA]
    if float16:
        stored = [s.astype(np.float16).astype(np.float64) for s in stored]
    found = 0
    for q in TOPIC_QUERIES:
        scores = [float((q @ stored[i].T).max(axis=1).sum()) for i in range(n)]
        exact = sorted(range(n), key=lambda i: -scores[i])[:10]
        hits = client.query_points(name, query=q.tolist(), using="colbert", limit=10,
                                   search_params=models.SearchParams(
                                       hnsw_ef=256, quantization=search_quantization)).points
        found += len(set(h.id for h in hits) & set(exact))
        # Scores are exact MaxSim whichever way a point was found.
        for h in hits:
            assert h.score == pytest.approx(scores[h.id], abs=1e-3 if float16 else 1e-4)
    return found / (10 * len(TOPIC_QUERIES))


@pytest.mark.timeout(300)
def test_multivectors_are_searched_through_an_hnsw_of_whole_multivectors(client, collection_name):
    """With `m` > 0 the multivectors are indexed (an HNSW whose nodes are whole multivectors,
    compared by MaxSim), searched through it and rescored exactly; `m: 0` keeps them unindexed
    and scanned. Either way the answers match numpy's exact MaxSim."""
    _fill_multi(client, collection_name, TOPIC_DATA, m=16)
    recall = _graph_recall(client, collection_name)
    print(f"multivector HNSW recall@10 at hnsw_ef=256: {recall}")
    assert recall >= 0.9, f"recall@10 through the multivector HNSW: {recall}"
    n = len(TOPIC_DATA)
    stored = [normalize(d) for d in TOPIC_DATA]
    for q in TOPIC_QUERIES[:5]:
        # `exact: true` scans: numpy's top 10 (compared by score: f32 against f64 near-ties).
        scores = [float((q @ stored[i].T).max(axis=1).sum()) for i in range(n)]
        exact = sorted(range(n), key=lambda i: -scores[i])[:10]
        full = client.query_points(collection_name, query=q.tolist(), using="colbert", limit=10,
                                   search_params=models.SearchParams(exact=True)).points
        assert [h.score for h in full] == pytest.approx([scores[i] for i in exact], abs=1e-4)

    # A filtered search through the graph answers only matching points.
    hits = client.query_points(collection_name, query=TOPIC_QUERIES[0].tolist(), using="colbert", limit=10,
                               query_filter=models.Filter(must=[models.FieldCondition(
                                   key="even", match=models.MatchValue(value=True))])).points
    assert len(hits) == 10 and all(h.id % 2 == 0 for h in hits)


# The codes' errors add up over a MaxSim's query rows: candidates are oversampled before the
# exact rescoring, more for one bit per value of a 32-value row (as for dense vectors, where the
# recall test oversamples 16x).
MULTI_QUANTIZATION = {
    "scalar": (models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
        type=models.ScalarType.INT8, always_ram=True)), 4.0),
    "binary_2bits_query8": (models.BinaryQuantization(binary=models.BinaryQuantizationConfig(
        encoding=models.BinaryQuantizationEncoding.TWO_BITS,
        query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS)), 32.0),
    "product_x4": (models.ProductQuantization(product=models.ProductQuantizationConfig(
        compression=models.CompressionRatio.X4)), 4.0),
    "turbo_bits4": (models.TurboQuantization(turbo=models.TurboQuantQuantizationConfig(
        bits=models.TurboQuantBitSize.BITS4)), 4.0),
}


@pytest.fixture(scope="module")
def multi_f32_recall(qdrant):
    """The multivector HNSW's recall with f32 rows (measured once, over REST)."""
    from qdrant_client import QdrantClient
    client = QdrantClient(url=qdrant.url, prefer_grpc=False, timeout=60)
    name = "multi_f32_baseline"
    try:
        client.delete_collection(name)
        _fill_multi(client, name, TOPIC_DATA, m=16)
        return _graph_recall(client, name)
    finally:
        client.delete_collection(name)


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", list(MULTI_QUANTIZATION) + ["float16"])
def test_quantized_and_float16_multivector_rows_keep_the_f32_recall(
        client, collection_name, method, multi_f32_recall):
    """Qdrant quantizes multivectors row by row: the graph keeps each row's code (or its
    float16 values) and the candidates are rescored from the stored rows, so recall stays
    within 0.01 of the f32 rows' and scores stay exact MaxSim."""
    quantization, oversampling = MULTI_QUANTIZATION.get(method, (None, None))
    search = oversampling and models.QuantizationSearchParams(rescore=True, oversampling=oversampling)
    datatype = models.Datatype.FLOAT16 if method == "float16" else None
    _fill_multi(client, collection_name, TOPIC_DATA, m=16, quantization=quantization, datatype=datatype)
    recall = _graph_recall(client, collection_name, search, float16=method == "float16")
    print(f"multivector {method}: recall@10 {recall} (f32 rows {multi_f32_recall})")
    assert recall >= multi_f32_recall - 0.01, f"{method}: {recall} vs f32 {multi_f32_recall}"
    if quantization is not None:
        assert client.get_collection(collection_name).config.quantization_config is not None


def test_multivectors_with_m_zero_stay_unindexed_and_are_scanned(client, collection_name):
    rng = np.random.default_rng(12)
    data = [rng.normal(size=(int(rng.integers(1, 4)), 8)) for _ in range(300)]
    _fill_multi(client, collection_name, data, m=0)
    time.sleep(0.5)
    assert (client.get_collection(collection_name).indexed_vectors_count or 0) == 0
    q = rng.normal(size=(2, 8))
    stored = [normalize(d) for d in data]
    qn = normalize(q)
    scores = [float((qn @ stored[i].T).max(axis=1).sum()) for i in range(len(data))]
    exact = sorted(range(len(data)), key=lambda i: -scores[i])[:5]
    hits = client.query_points(collection_name, query=q.tolist(), using="colbert", limit=5).points
    assert [h.score for h in hits] == pytest.approx([scores[i] for i in exact], abs=1e-4)
