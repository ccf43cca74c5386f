"""Service endpoints.

Facts (Qdrant 1.19):
* GET / -> {"title": "qdrant - vector search engine", "version": "x.y.z", "commit": ...}, not wrapped
  in the result envelope (src/actix/mod.rs `index` -> VersionInfo); qdrant-client checks that the
  server's major equals its own and the minor differs by at most 1
  (qdrant_client/common/version_check.py).
* /healthz and /livez -> 200 "healthz check passed"; /readyz -> 200 "all shards are ready"
  (src/actix/api/service_api.rs).
* /metrics: Prometheus text with `app_info{name="qdrant",version=...}`, `collections_total`,
  `collections_vector_total` and per-endpoint `rest_responses_total{method,endpoint,status}`
  (src/common/metrics.rs; tests/openapi/test_service.py test_metrics).
* /telemetry: result.app.name "qdrant", result.app.version, result.collections.number_of_collections,
  result.requests.rest.responses["METHOD /pattern"]["<status>"].count (tests/openapi/test_service.py).
* GET /cluster on a standalone node -> result {"status": "disabled"}.

These are REST endpoints; only `client.info()` (gRPC: qdrant.Qdrant/HealthCheck) has a gRPC form,
so test_root_version_info runs over both transports and the rest once (gRPC health, metrics of
gRPC calls: test_grpc.py).
"""

import re

import pytest
from qdrant_client import models
from qdrant_client.common.version_check import is_compatible
import importlib.metadata

from compat_helpers import ok_result, rest


def test_root_version_info(qdrant, client):
    r = rest(qdrant, "GET", "/")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "qdrant - vector search engine"
    assert re.fullmatch(r"\d+\.\d+\.\d+([-+].*)?", body["version"]), body
    assert "result" not in body
    client_version = importlib.metadata.version("qdrant-client")
    assert is_compatible(client_version, body["version"]), \
        f"qdrant-client {client_version} would warn about server version {body['version']}"
    info = client.info()                       # gRPC: qdrant.Qdrant/HealthCheck
    assert (info.title, info.version) == (body["title"], body["version"])


@pytest.mark.parametrize("path,text", [("/healthz", "healthz check passed"),
                                       ("/livez", "healthz check passed"),
                                       ("/readyz", "all shards are ready")])
def test_health_probes(qdrant, path, text):
    # REST only: HTTP probes.
    r = rest(qdrant, "GET", path)
    assert r.status_code == 200
    assert r.text.strip() == text


def test_metrics(qdrant, rest_client, collection_name):
    # REST only: counts the REST upsert in rest_responses_total.
    client = rest_client
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=i, vector=[1, i]) for i in range(7)])
    version = rest(qdrant, "GET", "/").json()["version"]
    r = rest(qdrant, "GET", "/metrics")
    assert r.status_code == 200
    assert r.headers.get("content-type", "").startswith("text/plain")
    text = r.text
    assert "# TYPE app_info gauge" in text
    assert re.search(r'^app_info\{name="qdrant",version="' + re.escape(version) + r'"[^}]*\} 1(\.0)?$', text, re.M), \
        [line for line in text.splitlines() if "app_info" in line]
    n_collections = len(client.get_collections().collections)
    m = re.search(r"^collections_total (\d+)", text, re.M)
    assert m and int(m.group(1)) == n_collections, text[:2000]
    # present as a gauge; its value depends on the telemetry detail level the node aggregates at
    assert re.search(r"^collections_vector_total \d+(\.\d+)?$", text, re.M), text[:2000]
    # request metrics include the upsert route we just used (endpoint label = the route pattern)
    upserts = [line for line in text.splitlines()
               if line.startswith("rest_responses_total{") and 'method="PUT"' in line and 'status="200"' in line
               and re.search(r'endpoint="/collections/\{[a-z_]+\}/points"', line)]
    assert upserts, [line for line in text.splitlines() if line.startswith("rest_responses_total")][:20]
    assert int(float(upserts[0].rsplit(" ", 1)[1])) >= 1


def test_telemetry(qdrant, rest_client, collection_name):
    # REST only: counts the REST upsert in requests.rest.
    client = rest_client
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 1])])
    version = rest(qdrant, "GET", "/").json()["version"]
    res = ok_result(rest(qdrant, "GET", "/telemetry"))
    assert res["app"]["name"] == "qdrant"
    assert res["app"]["version"] == version
    assert res["collections"]["number_of_collections"] == len(client.get_collections().collections)
    responses = res["requests"]["rest"]["responses"]
    keys = [k for k in responses if re.fullmatch(r"PUT /collections/\{[a-z_]+\}/points", k)]
    assert keys, sorted(responses)[:30]
    assert responses[keys[0]]["200"]["count"] >= 1
    # details_level is accepted
    res = ok_result(rest(qdrant, "GET", "/telemetry", params={"details_level": 1}))
    assert res["app"]["name"] == "qdrant"


def test_cluster_standalone(qdrant, rest_client):
    # REST only: qdrant-client calls GET /cluster even with prefer_grpc (no gRPC API for it).
    client = rest_client
    assert ok_result(rest(qdrant, "GET", "/cluster")) == {"status": "disabled"}
    assert client.cluster_status().status == "disabled"


def test_unknown_route_is_404(qdrant):
    # REST only: HTTP routing.
    # unknown routes are 404 (actix default), never 200 or 5xx
    r = rest(qdrant, "GET", "/definitely/not/a/route")
    assert r.status_code == 404
