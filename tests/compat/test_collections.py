"""Collection lifecycle through the official client (over REST and gRPC) and raw HTTP.

Facts (Qdrant 1.19): PUT/GET/PATCH/DELETE /collections/{name}, GET /collections,
GET /collections/{name}/exists (src/actix/api/collections_api.rs); defaults of a standalone node:
shard_number 1, replication_factor 1, write_consistency_factor 1, on_disk_payload true,
hnsw m 16 / ef_construct 100 / full_scan_threshold 10000 (config/config.yaml); same-name create ->
409 "Wrong input: Collection `x` already exists!"; missing -> 404 "Not found: Collection `x` doesn't
exist!"; DELETE of a missing collection -> 200 with result false (toc delete_collection returns
Ok(false)); /exists -> {"exists": bool} (tests/openapi/test_collection_exists.py).

Tests taking `client` run over both transports; their raw-HTTP asserts then also check that what
was written over gRPC reads back the same over REST. Tests of REST's own wire format (status
codes, error JSON, raw shapes) run once, with `rest_client` for set-up.
"""

import pytest
from qdrant_client import models

from compat_helpers import assert_error, expect_error, ok_result, rest, wait_green

DISTANCES = [models.Distance.COSINE, models.Distance.EUCLID, models.Distance.DOT, models.Distance.MANHATTAN]


@pytest.mark.parametrize("distance", DISTANCES, ids=lambda d: d.value)
def test_create_single_vector_each_distance(client, collection_name, distance):
    assert client.create_collection(collection_name, vectors_config=models.VectorParams(size=7, distance=distance)) is True
    info = client.get_collection(collection_name)
    assert info.status.value == "green"
    assert info.points_count == 0
    assert info.indexed_vectors_count == 0
    assert info.payload_schema == {}
    params = info.config.params
    assert isinstance(params.vectors, models.VectorParams)
    assert params.vectors.size == 7
    assert params.vectors.distance == distance
    # standalone defaults
    assert params.shard_number == 1
    assert params.replication_factor == 1
    assert params.write_consistency_factor == 1
    assert params.on_disk_payload is True
    assert info.config.hnsw_config.m == 16
    assert info.config.hnsw_config.ef_construct == 100
    assert info.config.hnsw_config.full_scan_threshold == 10000


def test_create_named_vectors(client, collection_name):
    client.create_collection(collection_name, vectors_config={
        "image": models.VectorParams(size=4, distance=models.Distance.DOT),
        "text": models.VectorParams(size=8, distance=models.Distance.COSINE,
                                    hnsw_config=models.HnswConfigDiff(m=8)),
    })
    info = client.get_collection(collection_name)
    vecs = info.config.params.vectors
    assert isinstance(vecs, dict) and set(vecs) == {"image", "text"}
    assert (vecs["image"].size, vecs["image"].distance) == (4, models.Distance.DOT)
    assert (vecs["text"].size, vecs["text"].distance) == (8, models.Distance.COSINE)
    assert vecs["text"].hnsw_config.m == 8


def test_create_with_all_config_sections(client, collection_name):
    assert client.create_collection(
        collection_name,
        vectors_config=models.VectorParams(size=4, distance=models.Distance.EUCLID),
        shard_number=3,
        replication_factor=2,   # stored as requested even with one peer (placement caps it)
        write_consistency_factor=1,
        on_disk_payload=False,
        hnsw_config=models.HnswConfigDiff(m=32, ef_construct=64, full_scan_threshold=500),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=12345, deleted_threshold=0.3,
                                                      vacuum_min_vector_number=500, flush_interval_sec=7),
        wal_config=models.WalConfigDiff(wal_capacity_mb=16, wal_segments_ahead=1),
        strict_mode_config=models.StrictModeConfig(enabled=False),
        metadata={"owner": "compat-suite", "n": 1},
    ) is True
    cfg = client.get_collection(collection_name).config
    assert cfg.params.shard_number == 3
    assert cfg.params.replication_factor == 2
    assert cfg.params.write_consistency_factor == 1
    assert cfg.params.on_disk_payload is False
    assert (cfg.hnsw_config.m, cfg.hnsw_config.ef_construct, cfg.hnsw_config.full_scan_threshold) == (32, 64, 500)
    assert cfg.optimizer_config.indexing_threshold == 12345
    assert cfg.optimizer_config.deleted_threshold == pytest.approx(0.3)
    assert cfg.optimizer_config.vacuum_min_vector_number == 500
    assert cfg.optimizer_config.flush_interval_sec == 7
    assert cfg.wal_config.wal_capacity_mb == 16
    assert cfg.wal_config.wal_segments_ahead == 1


def test_create_accepts_explicit_nulls(qdrant, collection_name):
    # REST only: JSON nulls are a REST body matter (protobuf has no nulls).
    # Real clients send nulls for unset fields (research/qdrant-api.md §3 note); all must be accepted.
    body = {
        "vectors": {"size": 4, "distance": "Dot", "on_disk": None, "hnsw_config": None,
                    "quantization_config": None, "datatype": None, "multivector_config": None},
        "shard_number": None, "sharding_method": None, "replication_factor": None,
        "write_consistency_factor": None, "on_disk_payload": None, "hnsw_config": None,
        "wal_config": None, "optimizers_config": {"indexing_threshold": 20000, "default_segment_number": None},
        "quantization_config": None, "strict_mode_config": None, "read_fan_out_factor": None,
    }
    assert ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}", body)) is True
    info = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))
    assert info["config"]["params"]["vectors"]["size"] == 4
    assert info["config"]["params"]["vectors"]["distance"] == "Dot"
    assert info["config"]["optimizer_config"]["indexing_threshold"] == 20000


def test_collection_info_raw_shape(qdrant, rest_client, collection_name):
    # REST only: checks the raw JSON of GET /collections/{name}.
    client = rest_client
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert(collection_name, points=[models.PointStruct(id=i, vector=[i, 1.0, 0.5], payload={"k": i})
                                           for i in range(1, 6)], wait=True)
    wait_green(client, collection_name)
    info = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))
    assert info["status"] == "green"
    assert info["optimizer_status"] == "ok"
    assert info["points_count"] == 5
    assert isinstance(info["indexed_vectors_count"], int) and 0 <= info["indexed_vectors_count"] <= 5
    assert isinstance(info["segments_count"], int) and info["segments_count"] >= 1
    assert info["payload_schema"] == {}
    assert info["config"]["params"]["vectors"]["size"] == 3
    assert info["config"]["params"]["vectors"]["distance"] == "Dot"
    for section in ("params", "hnsw_config", "optimizer_config", "wal_config"):
        assert section in info["config"], section


def test_list_exists_delete(qdrant, client, collection_name):
    assert client.collection_exists(collection_name) is False
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    assert client.collection_exists(collection_name) is True
    names = [c.name for c in client.get_collections().collections]
    assert collection_name in names
    # raw shapes
    listed = ok_result(rest(qdrant, "GET", "/collections"))
    assert {"name": collection_name} in listed["collections"]
    assert ok_result(rest(qdrant, "GET", f"/collections/{collection_name}/exists")) == {"exists": True}
    assert client.delete_collection(collection_name) is True
    assert client.collection_exists(collection_name) is False
    assert collection_name not in [c.name for c in client.get_collections().collections]
    # deleting a missing collection is not an error: 200, result false
    assert ok_result(rest(qdrant, "DELETE", f"/collections/{collection_name}")) is False
    assert ok_result(rest(qdrant, "GET", f"/collections/{collection_name}/exists")) == {"exists": False}


def test_create_existing_is_409(qdrant, rest_client, collection_name):
    # REST only: status code and error envelope of the raw PUT.
    rest_client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 2, "distance": "Dot"}})
    assert_error(r, 409, contains=f"Collection `{collection_name}` already exists!", startswith="Wrong input")


def test_create_existing_fails(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    with expect_error(client, "already_exists", contains=f"Collection `{collection_name}` already exists!"):
        client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    # the first collection is untouched
    assert client.get_collection(collection_name).config.params.vectors.size == 2


def test_get_missing_is_404(qdrant):
    # REST only: status code and exact error envelope.
    r = rest(qdrant, "GET", "/collections/no_such_collection_xyz")
    msg = assert_error(r, 404)
    assert msg == "Not found: Collection `no_such_collection_xyz` doesn't exist!"


def test_missing_collection_errors(client):
    want = "Collection `no_such_collection_xyz` doesn't exist!"
    with expect_error(client, "not_found", contains=want):
        client.get_collection("no_such_collection_xyz")
    with expect_error(client, "not_found", contains=want):
        client.update_collection("no_such_collection_xyz",
                                 optimizers_config=models.OptimizersConfigDiff(indexing_threshold=1))
    assert client.collection_exists("no_such_collection_xyz") is False


def test_update_collection_patch(qdrant, client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    assert client.update_collection(
        collection_name,
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=5000, max_optimization_threads=1),
        collection_params=models.CollectionParamsDiff(on_disk_payload=False),
        hnsw_config=models.HnswConfigDiff(m=24, ef_construct=128),
    ) is True
    cfg = client.get_collection(collection_name).config
    assert cfg.optimizer_config.indexing_threshold == 5000
    assert cfg.optimizer_config.max_optimization_threads == 1
    assert cfg.params.on_disk_payload is False
    assert cfg.hnsw_config.m == 24
    assert cfg.hnsw_config.ef_construct == 128
    # untouched fields keep their values
    assert cfg.params.vectors.size == 4
    assert cfg.hnsw_config.full_scan_threshold == 10000
    # raw PATCH with an empty-ish body is fine too
    assert ok_result(rest(qdrant, "PATCH", f"/collections/{collection_name}",
                          {"optimizers_config": {"indexing_threshold": 6000}})) is True
    assert client.get_collection(collection_name).config.optimizer_config.indexing_threshold == 6000


def test_update_missing_collection_is_404(qdrant):
    # REST only: the raw PATCH status (test_missing_collection_errors covers the client).
    r = rest(qdrant, "PATCH", "/collections/no_such_collection_upd", {"optimizers_config": {"indexing_threshold": 1}})
    assert_error(r, 404, startswith="Not found")


def test_points_count_tracks_writes(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, points=[models.PointStruct(id=i, vector=[1.0, float(i)]) for i in range(10)], wait=True)
    assert client.get_collection(collection_name).points_count == 10
    client.upsert(collection_name, points=[models.PointStruct(id=i, vector=[2.0, float(i)]) for i in range(5, 15)], wait=True)
    assert client.get_collection(collection_name).points_count == 15
    client.delete(collection_name, points_selector=models.PointIdsList(points=[0, 1, 2]), wait=True)
    assert client.get_collection(collection_name).points_count == 12
