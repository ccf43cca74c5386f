"""API-key authentication (`QDRANT__SERVICE__API_KEY`).

Facts (Qdrant 1.19, src/actix/mod.rs + src/actix/auth.rs + src/common/auth):
* key accepted in header `api-key: <key>` or `Authorization: Bearer <key>`;
* missing or wrong key -> 401 (plain-text body "Must provide an API key or an Authorization bearer
  token" / "Invalid API key or JWT"), for every route not whitelisted;
* whitelisted without a key: exactly "/", "/healthz", and the prefixes "/readyz", "/livez";
  /metrics and /telemetry require the key.
* `read_only_api_key`: reads pass, writes -> 403 "Forbidden: read-only API key"-like refusal;
* qdrant-client sends `api_key` as the `api-key` header (warns on plain http), and over gRPC as the
  `api-key` metadata; gRPC refusals are UNAUTHENTICATED (missing/wrong key) and PERMISSION_DENIED
  (read-only key used for a write); the health checks (`qdrant.Qdrant/HealthCheck`,
  `grpc.health.v1.Health/Check`) need no key (src/tonic/auth.rs).

Client tests run over REST and gRPC; the raw-header tests are REST only (HTTP headers and
plain-text bodies).
"""

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc
from qdrant_client import models

from compat_helpers import expect_error

KEY = "secret"
RO_KEY = "readonly-secret"


@pytest.fixture(scope="module")
def secured(request):
    from conftest import QdrantServer, qdrant_binary
    server = QdrantServer(qdrant_binary(), name="apikey",
                          extra_env={"QDRANT__SERVICE__API_KEY": KEY, "QDRANT__SERVICE__READ_ONLY_API_KEY": RO_KEY})
    request.addfinalizer(server.cleanup)
    server.start()
    return server


def get(server, path, headers=None, method="GET", json=None):
    return requests.request(method, server.url + path, headers=headers or {}, json=json, timeout=30)


def test_client_with_api_key_works(secured, transport):
    name = f"auth_c_{transport}"
    client = secured.client(transport, api_key=KEY, timeout=30)
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[models.PointStruct(id=1, vector=[1, 0], payload={"a": 1})])
    hits = client.query_points(name, query=[1, 0], limit=1).points
    assert hits[0].id == 1
    assert client.get_collection(name).points_count == 1
    assert name in [c.name for c in client.get_collections().collections]
    client.close()


@pytest.mark.parametrize("key", [None, "wrong"], ids=["no-key", "wrong-key"])
def test_client_without_valid_key_is_rejected(secured, transport, key):
    client = secured.client(transport, api_key=key, timeout=30)
    for call in (client.get_collections,
                 lambda: client.collection_exists("auth_c_rest"),
                 lambda: client.create_collection("x_auth_client", vectors_config=models.VectorParams(
                     size=2, distance=models.Distance.DOT)),
                 lambda: client.scroll("auth_c_rest")):
        with expect_error(client, "unauthenticated"):
            call()
    client.close()
    # the rejected create left nothing behind
    assert get(secured, "/collections/x_auth_client", {"api-key": KEY}).status_code == 404


def test_read_only_key(secured, transport):
    name = f"auth_ro_{transport}"
    admin = secured.client(transport, api_key=KEY, timeout=30)
    admin.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    admin.upsert(name, wait=True, points=[models.PointStruct(id=i, vector=[1, i], payload={"i": i}) for i in range(5)])
    ro = secured.client(transport, api_key=RO_KEY, timeout=30)
    # reads pass
    assert name in [c.name for c in ro.get_collections().collections]
    assert ro.get_collection(name).points_count == 5
    assert ro.count(name, exact=True).count == 5
    assert len(ro.scroll(name, limit=10)[0]) == 5
    assert [p.id for p in ro.retrieve(name, ids=[3])] == [3]
    assert ro.query_points(name, query=[0, 1], limit=1).points[0].id == 4
    # writes are refused, and change nothing
    writes = [
        lambda: ro.upsert(name, wait=True, points=[models.PointStruct(id=9, vector=[1, 1])]),
        lambda: ro.delete(name, points_selector=models.PointIdsList(points=[0]), wait=True),
        lambda: ro.set_payload(name, payload={"x": 1}, points=[1], wait=True),
        lambda: ro.create_payload_index(name, field_name="i", field_schema=models.PayloadSchemaType.INTEGER, wait=True),
        lambda: ro.create_collection(f"{name}_new", vectors_config=models.VectorParams(
            size=2, distance=models.Distance.DOT)),
        lambda: ro.delete_collection(name),
    ]
    for write in writes:
        with expect_error(ro, "permission_denied"):
            write()
    assert admin.count(name, exact=True).count == 5
    assert admin.retrieve(name, ids=[1])[0].payload == {"i": 1}
    assert admin.collection_exists(f"{name}_new") is False
    assert admin.get_collection(name).payload_schema == {}
    ro.close()
    admin.close()


def test_grpc_health_checks_need_no_key(secured):
    # gRPC only: the gRPC health services (REST probes: test_health_probes_and_root_need_no_key).
    client = secured.client("grpc", timeout=30)
    assert client.info().title == "qdrant - vector search engine"      # qdrant.Qdrant/HealthCheck
    client.close()
    with grpc.insecure_channel(f"127.0.0.1:{secured.grpc_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_grpc_bearer_metadata_is_accepted(secured):
    # gRPC only: `authorization: Bearer KEY` metadata (qdrant-client itself sends `api-key`).
    client = secured.client("grpc", timeout=30, headers={"authorization": f"Bearer {KEY}"})
    assert isinstance(client.get_collections().collections, list)
    client.close()
    client = secured.client("grpc", timeout=30, headers={"authorization": "Bearer wrong"})
    with expect_error(client, "unauthenticated", contains="Invalid API key or JWT"):
        client.get_collections()
    client.close()


# REST only from here: raw HTTP headers and plain-text refusal bodies.
@pytest.mark.parametrize("headers", [{}, {"api-key": "wrong"}, {"Authorization": "Bearer wrong"},
                                     {"api-key": ""}, {"Authorization": "Basic c2VjcmV0"}],
                         ids=["none", "wrong-header", "wrong-bearer", "empty", "basic-auth"])
def test_missing_or_wrong_key_is_401(secured, headers):
    for method, path, body in [("GET", "/collections", None), ("PUT", "/collections/x_auth", {"vectors": {"size": 2, "distance": "Dot"}}),
                               ("POST", "/collections/auth_c/points/scroll", {}), ("GET", "/metrics", None),
                               ("GET", "/telemetry", None), ("GET", "/cluster", None)]:
        r = get(secured, path, headers, method, body)
        assert r.status_code == 401, (method, path, headers, r.status_code, r.text[:200])
    # the rejection body is plain text, not the JSON envelope (src/common/auth: AuthError::Unauthorized)
    r = get(secured, "/collections", headers)
    # an api-key header (even empty) or a Bearer token is "provided"; Basic auth is not a key
    if "api-key" not in headers and not headers.get("Authorization", "").startswith("Bearer "):
        assert r.text.strip() == "Must provide an API key or an Authorization bearer token", r.text[:200]
    else:
        assert r.text.strip() == "Invalid API key or JWT", r.text[:200]
    # nothing was created by the rejected PUT
    assert get(secured, "/collections/x_auth", {"api-key": KEY}).status_code == 404


def test_health_probes_and_root_need_no_key(secured):
    for path in ("/healthz", "/livez", "/readyz", "/"):
        r = get(secured, path)
        assert r.status_code == 200, (path, r.status_code, r.text[:200])
    assert get(secured, "/").json()["title"] == "qdrant - vector search engine"


def test_bearer_token_and_header_both_work(secured):
    for headers in ({"api-key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        r = get(secured, "/collections", headers)
        assert r.status_code == 200, (headers, r.text[:200])
        assert r.json()["status"] == "ok"
        r = get(secured, "/metrics", headers)
        assert r.status_code == 200
