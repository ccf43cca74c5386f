"""gRPC-only checks: what the REST half of the suite cannot express.

Facts (Qdrant 1.19, src/tonic/mod.rs + lib/api/src/grpc/proto/*.proto; qdrant-client 1.20):
* the standard gRPC health service `grpc.health.v1.Health/Check` answers SERVING for the server as
  a whole (service ""), NOT_FOUND for a service name it does not know (tonic-health);
  `qdrant.Qdrant/HealthCheck` returns {title, version, commit} (qdrant-client's `info()`);
* an unknown collection is NOT_FOUND with REST's message "Not found: Collection `x` doesn't exist!";
* the legacy `Points/Search`, `SearchBatch` and `Recommend` RPCs are still served (qdrant-client
  1.20 no longer wraps them; called here through its generated stubs `client.grpc_points`);
* a message that does not decode is refused (tonic: INTERNAL "failed to decode Protobuf message")
  and the server keeps serving; a message above `service.max_request_size_mb` is refused (tonic's
  decode limit: OUT_OF_RANGE; gRPC's own limit: RESOURCE_EXHAUSTED);
* gRPC calls are counted in /metrics as `grpc_responses_total{endpoint="/qdrant.Points/Upsert",
  status="0"}`, the status label being the gRPC code (failures: non-zero), for the `qdrant.Points`
  methods of Qdrant's whitelist only (src/common/metrics.rs `GRPC_ENDPOINT_WHITELIST`; there is
  no `grpc_responses_fail_total`); /telemetry lists every method
  (src/common/telemetry_ops/requests_telemetry.rs).
"""

import re

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qdrant_client import grpc as qgrpc
from qdrant_client import models

from compat_helpers import brute_force, rest

GHOST = "ghost_grpc_coll"


@pytest.fixture(scope="module")
def gclient(qdrant):
    c = qdrant.client("grpc")
    yield c
    c.close()


@pytest.fixture
def channel(qdrant):
    with grpc.insecure_channel(f"127.0.0.1:{qdrant.grpc_port}") as ch:
        yield ch


def test_standard_health_check(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as e:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND


def test_qdrant_health_check_matches_rest_root(qdrant, gclient, channel):
    root = rest(qdrant, "GET", "/").json()
    info = gclient.info()
    assert (info.title, info.version) == (root["title"], root["version"])
    reply = qgrpc.QdrantStub(channel).HealthCheck(qgrpc.HealthCheckRequest(), timeout=10)
    assert reply.title == "qdrant - vector search engine"
    assert reply.version == root["version"]


def test_unknown_collection_is_not_found(gclient):
    want = f"Not found: Collection `{GHOST}` doesn't exist!"
    calls = [
        lambda: gclient.grpc_collections.Get(qgrpc.GetCollectionInfoRequest(collection_name=GHOST), timeout=10),
        lambda: gclient.grpc_points.Query(qgrpc.QueryPoints(collection_name=GHOST), timeout=10),
        lambda: gclient.grpc_points.Count(qgrpc.CountPoints(collection_name=GHOST), timeout=10),
        lambda: gclient.grpc_points.Search(qgrpc.SearchPoints(collection_name=GHOST, vector=[1.0], limit=1), timeout=10),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as e:
            call()
        assert e.value.code() == grpc.StatusCode.NOT_FOUND, (e.value.code(), e.value.details())
        assert e.value.details() == want
    reply = gclient.grpc_collections.CollectionExists(qgrpc.CollectionExistsRequest(collection_name=GHOST), timeout=10)
    assert reply.result.exists is False


def test_legacy_search_and_recommend(gclient, collection_name):
    rng = np.random.default_rng(21)
    data = rng.normal(size=(200, 8)).astype(np.float32)
    gclient.create_collection(collection_name, vectors_config=models.VectorParams(size=8, distance=models.Distance.EUCLID))
    gclient.upsert(collection_name, wait=True, points=models.Batch(
        ids=list(range(200)), vectors=data.tolist(), payloads=[{"i": i} for i in range(200)]))
    exact = qgrpc.SearchParams(exact=True)
    q = (data[5] + 0.01).tolist()
    pos, scores = brute_force("Euclid", data, q, 5)

    res = gclient.grpc_points.Search(qgrpc.SearchPoints(
        collection_name=collection_name, vector=q, limit=5, params=exact,
        with_payload=qgrpc.WithPayloadSelector(enable=True)), timeout=30).result
    assert [p.id.num for p in res] == pos
    assert [p.score for p in res] == pytest.approx(scores, abs=1e-4)
    assert res[0].payload["i"].integer_value == pos[0]

    batch = gclient.grpc_points.SearchBatch(qgrpc.SearchBatchPoints(collection_name=collection_name, search_points=[
        qgrpc.SearchPoints(collection_name=collection_name, vector=q, limit=3, params=exact),
        qgrpc.SearchPoints(collection_name=collection_name, vector=data[7].tolist(), limit=2, params=exact, offset=1),
    ]), timeout=30).result
    assert [[p.id.num for p in b.result] for b in batch] == [pos[:3], brute_force("Euclid", data, data[7], 3)[0][1:]]

    rec = gclient.grpc_points.Recommend(qgrpc.RecommendPoints(
        collection_name=collection_name, positive=[qgrpc.PointId(num=0)], limit=4, params=exact), timeout=30).result
    rpos, rsc = brute_force("Euclid", data, data[0], 4, exclude=[0])
    assert [p.id.num for p in rec] == rpos
    assert [p.score for p in rec] == pytest.approx(rsc, abs=1e-4)


def test_malformed_message_keeps_server_serving(qdrant, gclient, channel, collection_name):
    gclient.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    gclient.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 2])])
    # raw bytes that are not a valid UpsertPoints (field 1 claims 127 bytes that are not there)
    upsert = channel.unary_unary("/qdrant.Points/Upsert", request_serializer=None, response_deserializer=None)
    for garbage in (b"\x0a\x7f\x01", b"\xff\xff\xff\xff", b"\x12\x05abc"):
        with pytest.raises(grpc.RpcError) as e:
            upsert(garbage, timeout=10)
        assert e.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), \
            (garbage, e.value.code(), e.value.details())
    assert gclient.count(collection_name, exact=True).count == 1
    assert rest(qdrant, "GET", "/readyz").status_code == 200


@pytest.mark.timeout(90)
def test_message_over_max_size_is_rejected(qdrant_factory):
    server = qdrant_factory({"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1"}, name="maxsize-grpc")
    client = server.client("grpc")
    client.create_collection("big", vectors_config=models.VectorParams(size=64, distance=models.Distance.DOT))
    # 1000 x 64 floats ~ 0.3 MB of protobuf: accepted
    client.upsert("big", wait=True, points=models.Batch(ids=list(range(1000)), vectors=[[0.123456] * 64] * 1000))
    # 6000 x 64 floats ~ 1.6 MB: refused, and nothing of it is applied
    with pytest.raises(grpc.RpcError) as e:
        client.upsert("big", wait=True, points=models.Batch(ids=list(range(1000, 7000)),
                                                              vectors=[[0.123456] * 64] * 6000))
    assert e.value.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OUT_OF_RANGE), \
        (e.value.code(), e.value.details())
    assert client.count("big", exact=True).count == 1000
    client.close()


def test_grpc_calls_are_in_metrics(qdrant, gclient, collection_name):
    gclient.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    gclient.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 2])])
    with pytest.raises(grpc.RpcError):
        gclient.get_collection(GHOST)
    with pytest.raises(grpc.RpcError):
        gclient.query_points(GHOST, query=[1.0, 2.0])
    text = rest(qdrant, "GET", "/metrics").text

    def value(metric, endpoint, status):
        m = re.search(r"^" + metric + r'\{endpoint="' + re.escape(endpoint) + r'",status="' + status
                      + r'"\} (\d+(\.\d+)?)$', text, re.M)
        assert m, (metric, endpoint, [line for line in text.splitlines() if line.startswith("grpc_")][:20])
        return float(m.group(1))

    assert value("grpc_responses_total", "/qdrant.Points/Upsert", "0") >= 1
    assert value("grpc_responses_total", "/qdrant.Points/Query", "5") >= 1          # NOT_FOUND
    assert value("grpc_responses_avg_duration_seconds", "/qdrant.Points/Upsert", "0") > 0
    assert 'grpc_responses_duration_seconds_bucket{endpoint="/qdrant.Points/Upsert",status="0",le="+Inf"}' in text
    # not whitelisted: only in /telemetry
    assert "/qdrant.Collections/Get" not in text
    responses = rest(qdrant, "GET", "/telemetry").json()["result"]["requests"]["grpc"]["responses"]
    assert responses["/qdrant.Collections/Get"]["5"]["count"] >= 1, responses
