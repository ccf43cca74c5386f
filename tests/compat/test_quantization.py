"""Quantization (Qdrant 1.19): scalar int8, binary (1, 1.5 and 2 bits, asymmetric query
encodings), product and TurboQuant, set at creation or by a collection update, searched through
the quantized codes with `params.quantization` {ignore, rescore, oversampling}.

Facts checked against Qdrant's behaviour:
  * the quantized index gives approximate scores; `rescore` (default off for scalar/product and
    turbo bits4, on for binary and turbo below 4 bits) scores the candidates with the original
    vectors, `oversampling` takes `oversampling * limit` candidates first;
  * `ignore: true` answers from the original vectors;
  * `"Disabled"` in an update removes quantization; a bad config is a 400 (REST) /
    INVALID_ARGUMENT (gRPC) and changes nothing.

Recall is measured against numpy brute force: the quantized search rescored with oversampling
must reach the plain f32 HNSW recall minus 0.01 (the issue's bar).
"""

import time

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import assert_error, ok_result, rest

N, DIM, QUERIES, K = 6000, 48, 60, 10
INDEX_TIMEOUT_S = 240
# Clustered data has tight top-k score gaps (10th to 40th neighbour within 0.02): 1-bit codes
# need ~16x candidates to hold the true top 10, as a numpy simulation of the codes shows.
OVERSAMPLING = 16.0


def _data():
    rng = np.random.default_rng(77)
    # Clustered data, like embeddings: 60 centres with noise around them.
    centres = rng.normal(size=(60, DIM))
    data = centres[rng.integers(0, 60, size=N)] + 0.35 * rng.normal(size=(N, DIM))
    data = (data / np.linalg.norm(data, axis=1, keepdims=True)).astype(np.float32)
    queries = centres[rng.integers(0, 60, size=QUERIES)] + 0.35 * rng.normal(size=(QUERIES, DIM))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    truth = np.argsort(-(queries @ data.T), axis=1)[:, :K]
    return data, queries, truth


DATA, QUERY_VECTORS, TRUTH = _data()


def _fill(client, name, quantization=None):
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=100),
        quantization_config=quantization,
    )
    for s in range(0, N, 2000):
        client.upsert(name, wait=True, points=models.Batch(
            ids=list(range(s, min(s + 2000, N))), vectors=DATA[s:s + 2000].tolist()))
    _wait_indexed(client, name)


def _wait_indexed(client, name):
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    info = None
    while time.monotonic() < deadline:
        info = client.get_collection(name)
        if info.points_count == N and (info.indexed_vectors_count or 0) >= N and info.status.value == "green":
            return
        time.sleep(0.5)
    pytest.fail(f"not indexed in {INDEX_TIMEOUT_S}s: {info}")


def _recall(client, name, quantization=None, ef=64):
    found = 0
    for qi in range(QUERIES):
        hits = client.query_points(
            name, query=QUERY_VECTORS[qi].tolist(), limit=K, with_payload=False,
            search_params=models.SearchParams(hnsw_ef=ef, quantization=quantization)).points
        assert len(hits) == K
        found += len({h.id for h in hits} & set(TRUTH[qi].tolist()))
    return found / (QUERIES * K)


@pytest.fixture(scope="module")
def f32_recall(qdrant):
    """The plain HNSW's recall on the same data and parameters (measured once, over REST)."""
    from qdrant_client import QdrantClient
    client = QdrantClient(url=qdrant.url, prefer_grpc=False, timeout=60)
    name = "quant_f32_baseline"
    try:
        client.delete_collection(name)
        _fill(client, name)
        return _recall(client, name)
    finally:
        client.delete_collection(name)


METHODS = {
    "scalar": models.ScalarQuantization(scalar=models.ScalarQuantizationConfig(
        type=models.ScalarType.INT8, quantile=0.99, always_ram=True)),
    "binary_1bit": models.BinaryQuantization(binary=models.BinaryQuantizationConfig(always_ram=True)),
    "binary_2bits": models.BinaryQuantization(binary=models.BinaryQuantizationConfig(
        encoding=models.BinaryQuantizationEncoding.TWO_BITS)),
    "binary_1.5bits_query8": models.BinaryQuantization(binary=models.BinaryQuantizationConfig(
        encoding=models.BinaryQuantizationEncoding.ONE_AND_HALF_BITS,
        query_encoding=models.BinaryQuantizationQueryEncoding.SCALAR8BITS)),
    "product_x8": models.ProductQuantization(product=models.ProductQuantizationConfig(
        compression=models.CompressionRatio.X8, always_ram=True)),
    "turbo_bits2": models.TurboQuantization(turbo=models.TurboQuantQuantizationConfig(
        bits=models.TurboQuantBitSize.BITS2)),
    "turbo_bits4": models.TurboQuantization(turbo=models.TurboQuantQuantizationConfig(
        bits=models.TurboQuantBitSize.BITS4)),
}


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("method", list(METHODS))
def test_quantized_search_rescored_keeps_f32_recall(client, collection_name, method, f32_recall, record_property):
    _fill(client, collection_name, METHODS[method])
    info = client.get_collection(collection_name)
    assert info.config.quantization_config is not None
    rescored = _recall(client, collection_name, models.QuantizationSearchParams(
        rescore=True, oversampling=OVERSAMPLING))
    summary = f"{method}: recall@{K} rescored x{OVERSAMPLING} = {rescored:.3f} (f32 HNSW {f32_recall:.3f})"
    print("\n" + summary)
    record_property("compat_metric", summary)
    assert rescored >= f32_recall - 0.01, summary

    # Rescored scores are the exact cosine similarities.
    q = QUERY_VECTORS[0]
    hits = client.query_points(collection_name, query=q.tolist(), limit=5, search_params=models.SearchParams(
        quantization=models.QuantizationSearchParams(rescore=True))).points
    for h in hits:
        assert abs(h.score - float(DATA[h.id] @ q)) < 1e-4, (method, h)
    # `ignore` answers from the original vectors too: exact scores, and (the HNSW being approximate,
    # with near-ties in clustered data) at least 4 of the true top 5 at a wide beam.
    hits = client.query_points(collection_name, query=q.tolist(), limit=5, search_params=models.SearchParams(
        hnsw_ef=256, quantization=models.QuantizationSearchParams(ignore=True))).points
    for h in hits:
        assert abs(h.score - float(DATA[h.id] @ q)) < 1e-4, (method, h)
    assert len({h.id for h in hits} & set(TRUTH[0][:5].tolist())) >= 4, (method, hits)


@pytest.mark.timeout(300)
def test_scores_come_from_the_codes_unless_rescored(client, collection_name):
    _fill(client, collection_name, METHODS["scalar"])
    q = QUERY_VECTORS[1]
    plain = client.query_points(collection_name, query=q.tolist(), limit=10, search_params=models.SearchParams(
        quantization=models.QuantizationSearchParams(rescore=False))).points
    errors = [abs(h.score - float(DATA[h.id] @ q)) for h in plain]
    # int8 scores approximate the cosine: close, but not all exactly equal.
    assert max(errors) < 0.05, errors
    assert max(errors) > 1e-6, "scores look exact: the codes are not being searched"
    # Scalar's default is no rescoring (Qdrant's): the same approximate scores.
    default = client.query_points(collection_name, query=q.tolist(), limit=10).points
    assert [h.score for h in default] == [h.score for h in plain]


@pytest.mark.timeout(400)
def test_quantization_set_changed_and_disabled_by_update(client, collection_name):
    _fill(client, collection_name)
    q = QUERY_VECTORS[2]

    def approximate():
        hits = client.query_points(collection_name, query=q.tolist(), limit=10, search_params=models.SearchParams(
            quantization=models.QuantizationSearchParams(rescore=False))).points
        return max(abs(h.score - float(DATA[h.id] @ q)) for h in hits) > 1e-6

    assert not approximate()
    client.update_collection(collection_name, quantization_config=METHODS["scalar"])
    _wait_indexed(client, collection_name)
    assert client.get_collection(collection_name).config.quantization_config.scalar.quantile == pytest.approx(0.99)
    assert approximate()
    client.update_collection(collection_name, quantization_config=models.Disabled.DISABLED)
    _wait_indexed(client, collection_name)
    assert client.get_collection(collection_name).config.quantization_config is None
    assert not approximate()


@pytest.mark.timeout(300)
def test_per_vector_quantization_and_on_disk_originals(qdrant, client, collection_name):
    """A named vector's own quantization wins over the collection's; `on_disk` originals are
    read back from their file for rescoring and retrieval."""
    client.create_collection(collection_name, vectors_config={
        "q": models.VectorParams(size=DIM, distance=models.Distance.COSINE, on_disk=True,
                                 quantization_config=METHODS["binary_1bit"]),
        "plain": models.VectorParams(size=DIM, distance=models.Distance.COSINE),
    }, optimizers_config=models.OptimizersConfigDiff(indexing_threshold=100))
    for s in range(0, N, 2000):
        ids = list(range(s, min(s + 2000, N)))
        client.upsert(collection_name, wait=True, points=models.Batch(
            ids=ids, vectors={"q": DATA[s:s + 2000].tolist(), "plain": DATA[s:s + 2000].tolist()}))
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while time.monotonic() < deadline:
        info = client.get_collection(collection_name)
        if (info.indexed_vectors_count or 0) >= 2 * N:
            break
        time.sleep(0.5)
    info = client.get_collection(collection_name)
    assert info.config.params.vectors["q"].quantization_config is not None
    assert info.config.params.vectors["q"].on_disk is True
    q = QUERY_VECTORS[3]
    hits = client.query_points(collection_name, query=q.tolist(), using="q", limit=10,
                               search_params=models.SearchParams(quantization=models.QuantizationSearchParams(
                                   oversampling=OVERSAMPLING))).points
    # Binary rescores by default: exact scores, read from the vector file.
    for h in hits:
        assert abs(h.score - float(DATA[h.id] @ q)) < 1e-4
    got = client.retrieve(collection_name, ids=[7], with_vectors=True)[0]
    assert np.allclose(got.vector["q"], DATA[7], atol=1e-6)
    assert np.allclose(got.vector["plain"], DATA[7], atol=1e-6)

    # Telemetry shows the memory: only "plain"'s originals are in RAM, "q" is searched by code.
    telemetry = ok_result(rest(qdrant, "GET", "/telemetry?details_level=3"))
    [mine] = [c for c in telemetry["collections"]["collections"] if c["id"] == collection_name]
    local = mine["shards"][0]["local"]
    assert local["num_quantized_vectors"] == N, local
    assert N * DIM * 4 <= local["vectors_ram_bytes"] < 2 * N * DIM * 4, local


def _shard_memory(qdrant, name):
    telemetry = ok_result(rest(qdrant, "GET", "/telemetry?details_level=3"))
    [mine] = [c for c in telemetry["collections"]["collections"] if c["id"] == name]
    return mine["shards"][0]["local"]


@pytest.mark.timeout(300)
@pytest.mark.parametrize("placement", ["codes_follow_on_disk_vectors", "always_ram", "hnsw_on_disk", "memory_cached"])
def test_codes_and_graph_live_where_qdrant_puts_them(qdrant, client, collection_name, placement):
    """Quantized codes follow the original vectors (Qdrant: `always_ram` or `memory: pinned`
    keeps them in RAM, otherwise on-disk vectors take their codes along; `memory: cached` puts
    them in the page cache), and `hnsw_config.on_disk` puts the graph there: the graph's records
    then live in a mapped file, shown as `vector_index_mmap_bytes`, and search answers the same."""
    n = 3000
    scalar = {"type": models.ScalarType.INT8}
    quantization, on_disk, hnsw_on_disk = {
        "codes_follow_on_disk_vectors": (models.ScalarQuantizationConfig(**scalar), True, None),
        "always_ram": (models.ScalarQuantizationConfig(**scalar, always_ram=True), True, None),
        "hnsw_on_disk": (None, False, True),
        "memory_cached": (None, False, None),
    }[placement]
    body = {"vectors": {"size": DIM, "distance": "Cosine", "on_disk": on_disk},
            "optimizers_config": {"indexing_threshold": 100}}
    if quantization is not None:
        body["quantization_config"] = {"scalar": quantization.model_dump(exclude_none=True, mode="json")}
    if placement == "memory_cached":
        body["quantization_config"] = {"scalar": {"type": "int8", "memory": "cached"}}
    if hnsw_on_disk:
        body["hnsw_config"] = {"on_disk": True}
    ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}", body))
    client.upsert(collection_name, wait=True, points=models.Batch(ids=list(range(n)), vectors=DATA[:n].tolist()))
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while (client.get_collection(collection_name).indexed_vectors_count or 0) < n:
        assert time.monotonic() < deadline, "not indexed"
        time.sleep(0.3)
    local = _shard_memory(qdrant, collection_name)
    mapped = placement != "always_ram"
    assert (local["vector_index_mmap_bytes"] > 0) == mapped, local
    if mapped:
        # The records (links and codes) left the heap: what stays is per-node bookkeeping.
        assert local["vector_index_mmap_bytes"] > local["vector_index_ram_bytes"], local
    for i in (5, 1234, 2999):
        hits = client.query_points(collection_name, query=DATA[i].tolist(), limit=1,
                                   search_params=models.SearchParams(hnsw_ef=128)).points
        assert hits[0].id == i


@pytest.mark.parametrize("body, fragment", [
    ({"scalar": {"type": "int4"}}, "unknown variant `int4`"),
    ({"scalar": {"type": "int8", "quantile": 0.1}}, "quantile"),
    ({"product": {}}, "missing field `compression`"),
    ({"turbo": {"bits": "bits3"}}, "unknown variant `bits3`"),
])
def test_bad_configs_are_refused(qdrant, collection_name, body, fragment):
    r = rest(qdrant, "PUT", f"/collections/{collection_name}",
             {"vectors": {"size": 4, "distance": "Dot"}, "quantization_config": body})
    msg = assert_error(r, 422 if fragment == "quantile" else 400)
    assert fragment in msg, msg
    assert rest(qdrant, "GET", f"/collections/{collection_name}").status_code == 404
    ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 4, "distance": "Dot"}}))
    r = rest(qdrant, "PATCH", f"/collections/{collection_name}", {"quantization_config": body})
    assert_error(r, 422 if fragment == "quantile" else 400)
    info = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))
    assert info["config"]["quantization_config"] is None


def test_bad_search_params_are_refused(qdrant, collection_name):
    ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 2, "distance": "Dot"}}))
    r = rest(qdrant, "POST", f"/collections/{collection_name}/points/query",
             {"query": [1, 0], "params": {"quantization": {"oversampling": 0.5}}})
    assert_error(r, 422, contains="oversampling")
