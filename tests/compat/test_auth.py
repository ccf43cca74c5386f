"""API-key authentication (`QDRANT__SERVICE__API_KEY`).

Facts (Qdrant 1.19, src/actix/mod.rs + src/actix/auth.rs + src/common/auth):
* key accepted in header `api-key: <key>` or `Authorization: Bearer <key>`;
* missing or wrong key -> 401 (plain-text body "Must provide an API key or an Authorization bearer
  token" / "Invalid API key or JWT"), for every route not whitelisted;
* whitelisted without a key: exactly "/", "/healthz", and the prefixes "/readyz", "/livez";
  /metrics and /telemetry require the key.
* qdrant-client sends `api_key` as the `api-key` header (warns on plain http).
"""

import warnings

import pytest
import requests
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import UnexpectedResponse

KEY = "secret"


@pytest.fixture(scope="module")
def secured(request):
    from conftest import QdrantServer, qdrant_binary
    server = QdrantServer(qdrant_binary(), extra_env={"QDRANT__SERVICE__API_KEY": KEY}, name="apikey")
    request.addfinalizer(server.cleanup)
    server.start()
    return server


def get(server, path, headers=None, method="GET", json=None):
    return requests.request(method, server.url + path, headers=headers or {}, json=json, timeout=30)


def test_client_with_api_key_works(secured):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # "Api key is used with an insecure connection."
        client = QdrantClient(url=secured.url, api_key=KEY, https=False, prefer_grpc=False, timeout=30,
                              check_compatibility=False)
    client.create_collection("auth_c", vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert("auth_c", wait=True, points=[models.PointStruct(id=1, vector=[1, 0], payload={"a": 1})])
    hits = client.query_points("auth_c", query=[1, 0], limit=1).points
    assert hits[0].id == 1
    assert client.get_collection("auth_c").points_count == 1
    client.close()


def test_client_without_key_is_rejected(secured):
    client = QdrantClient(url=secured.url, prefer_grpc=False, timeout=30, check_compatibility=False)
    with pytest.raises(UnexpectedResponse) as e:
        client.get_collections()
    assert e.value.status_code == 401
    client.close()


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
