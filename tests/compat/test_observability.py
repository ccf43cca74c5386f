"""Observability: /metrics, /telemetry and /issues as Qdrant 1.19 serves them.

Facts (Qdrant 1.19):
* /metrics (src/common/metrics.rs, rendered from level-4 telemetry): text/plain Prometheus
  families with Qdrant's names, HELP texts and types; `app_info{name,version}`,
  `app_status_recovery_mode`, `collections_total`, `collections_vector_total`,
  `collection_vectors{collection,vector}`, `collection_points{id}`,
  `collection_active_replicas_{min,max}`, `collection_dead_replicas`,
  `collection_shard_transfer_{incoming,outgoing}{id}`, `cluster_enabled`, the
  `rest_responses_{total,avg_duration_seconds,min_duration_seconds,max_duration_seconds,
  duration_seconds}` family labelled `method`, `endpoint` (the route pattern, with
  `{collection_name}`), `status`, only for the whitelisted point endpoints (REST_ENDPOINT_WHITELIST)
  and with timings for status 200 only; the same `grpc_responses_*` family labelled `endpoint`
  (method path) and `status` (gRPC code) for the whitelisted `qdrant.Points` methods;
  `memory_*_bytes`; procfs `process_*` and `system_max_mmaps`. Histogram buckets: 1, 5, 10, 20, 50,
  100, 500 ms, 1, 5, 10, 50 s. `?per_collection=true` replaces the request families by ones with a
  `collection` label; `?anonymize=true` hashes collection names.
* /telemetry?details_level=N (src/common/telemetry.rs, telemetry_ops/*): level 0 has id, app
  {name, version, startup}, collections.number_of_collections, cluster.enabled, requests
  {rest, grpc}.responses["<key>"]["<status>"] {count, avg_duration_micros}; level 1 adds
  app.features, app.system, collections.collections (aggregated: vectors, optimizers_status,
  params), memory, hardware and min/max/total/last_responded per status; level 2 per-collection
  {id, config}; level 3 shards and transfers.
* /issues (lib/common/issues, lib/collection/src/problems/unindexed_field.rs): a search or query
  slower than service.slow_query_secs (default 1.2 s) raises `UNINDEXED_FIELD/<c>/<field>` for each
  unindexed filter key, with an `immediate` solution `PUT /collections/<c>/index` (body
  {field_name, field_schema}); raising it again keeps the first timestamp; creating the index or
  deleting the collection solves it; DELETE /issues clears all (tests/consensus_tests/
  test_issues_api.py, tests/openapi/test_service.py::test_issues).
"""

import re

import pytest
from qdrant_client import models

from compat_helpers import ok_result, rest

SEARCH = "/collections/{collection_name}/points/search"

# family -> (type, help) as Qdrant writes them
QDRANT_FAMILIES = {
    "app_info": ("gauge", "information about qdrant server"),
    "app_status_recovery_mode": ("gauge", "features enabled in qdrant server"),
    "collections_total": ("gauge", "number of collections"),
    "collections_vector_total": ("gauge", "total number of vectors in all collections"),
    "collection_vectors": ("gauge", "amount of vectors grouped by vector name"),
    "collection_active_replicas_min": ("gauge", "minimum number of active replicas across all shards"),
    "collection_active_replicas_max": ("gauge", "maximum number of active replicas across all shards"),
    "collection_points": ("gauge", "approximate amount of points per collection"),
    "collection_dead_replicas": ("gauge", "total amount of shard replicas in non-active state"),
    "collection_shard_transfer_incoming": ("gauge", "incoming shard transfers currently running"),
    "collection_shard_transfer_outgoing": ("gauge", "outgoing shard transfers currently running"),
    "cluster_enabled": ("gauge", "is cluster support enabled"),
    "rest_responses_total": ("counter", "total number of responses"),
    "rest_responses_avg_duration_seconds": ("gauge", "average response duration"),
    "rest_responses_min_duration_seconds": ("gauge", "minimum response duration"),
    "rest_responses_max_duration_seconds": ("gauge", "maximum response duration"),
    "rest_responses_duration_seconds": ("histogram", "response duration histogram"),
    "memory_active_bytes": ("gauge", "Total number of bytes in active pages allocated by the application"),
    "memory_allocated_bytes": ("gauge", "Total number of bytes allocated by the application"),
    "memory_metadata_bytes": ("gauge", "Total number of bytes dedicated to metadata"),
    "memory_resident_bytes": ("gauge", "Maximum number of bytes in physically resident data pages mapped"),
    "memory_retained_bytes": ("gauge", "Total number of bytes in virtual memory mappings"),
    "process_threads": ("gauge", "count of active threads"),
    "process_open_mmaps": ("gauge", "count of open mmaps"),
    "system_max_mmaps": ("gauge", "system wide limit of open mmaps"),
    "process_open_fds": ("gauge", "count of currently open file descriptors"),
    "process_max_fds": ("gauge", "limit for open file descriptors"),
    "process_minor_page_faults_total": ("counter", "count of minor page faults which didn't cause a disk access"),
    "process_major_page_faults_total": ("counter", "count of disk accesses caused by a mmap page fault"),
}
BUCKETS = ["0.001", "0.005", "0.01", "0.02", "0.05", "0.1", "0.5", "1", "5", "10", "50", "+Inf"]


def scrape(server, **params):
    r = rest(server, "GET", "/metrics", params=params or None)
    assert r.status_code == 200, r.text[:500]
    assert r.headers.get("content-type", "").startswith("text/plain")
    return r.text


def samples(text, metric):
    """{frozenset(labels): value} of one metric name (exact name, not its _bucket/_sum lines)."""
    out = {}
    for line in text.splitlines():
        m = re.fullmatch(re.escape(metric) + r"(\{(.*)\})? (\S+)", line)
        if m:
            labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out[labels] = float(m.group(3))
    return out


def value(text, metric, **labels):
    got = samples(text, metric)
    key = frozenset((k, str(v)) for k, v in labels.items())
    assert key in got, (metric, labels, sorted(got)[:10])
    return got[key]


def rest_labels(collection_endpoint, method="POST", status=200):
    return {"method": method, "endpoint": collection_endpoint, "status": status}


@pytest.fixture
def filled(rest_client, collection_name):
    rest_client.create_collection(collection_name, vectors_config={
        "a": models.VectorParams(size=2, distance=models.Distance.DOT)},
        sparse_vectors_config={"s": models.SparseVectorParams()})
    points = [models.PointStruct(id=i, vector={"a": [1.0, float(i)]}, payload={"city": f"c{i % 3}", "n": i})
              for i in range(10)]
    points[0].vector["s"] = models.SparseVector(indices=[1], values=[0.5])
    rest_client.upsert(collection_name, points=points, wait=True)
    return collection_name


def test_metrics_families_types_and_help(qdrant, filled):
    text = scrape(qdrant)
    for name, (kind, help_text) in QDRANT_FAMILIES.items():
        assert f"# TYPE {name} {kind}\n" in text, name
        assert f"# HELP {name} {help_text}\n" in text, name
    version = rest(qdrant, "GET", "/").json()["version"]
    assert value(text, "app_info", name="qdrant", version=version) == 1
    assert value(text, "app_status_recovery_mode") == 0
    assert value(text, "cluster_enabled") == 0
    assert not samples(text, "cluster_peers_total"), "cluster_* only in cluster mode"
    assert value(text, "collection_points", id=filled) == 10
    assert value(text, "collection_vectors", collection=filled, vector="a") == 10
    assert value(text, "collection_vectors", collection=filled, vector="s") == 1
    assert value(text, "collections_vector_total") >= 11
    assert value(text, "collections_total") >= 1
    assert value(text, "collection_active_replicas_min") == 1
    assert value(text, "collection_shard_transfer_incoming", id=filled) == 0
    assert value(text, "memory_resident_bytes") > 0
    assert value(text, "memory_allocated_bytes") > 0
    assert value(text, "process_threads") >= 1
    assert value(text, "process_open_fds") >= 1
    # Qdrant exports no failure counters and no per-endpoint timings outside its whitelist
    assert "rest_responses_fail_total" not in text and "grpc_responses_fail_total" not in text


def test_rest_metrics_move(qdrant, filled):
    labels = rest_labels(SEARCH)
    before = samples(scrape(qdrant), "rest_responses_total").get(
        frozenset((k, str(v)) for k, v in labels.items()), 0)
    for _ in range(4):
        r = rest(qdrant, "POST", f"/collections/{filled}/points/search",
                 {"vector": {"name": "a", "vector": [1, 0.5]}, "limit": 2})
        assert r.status_code == 200, r.text
    missing = rest(qdrant, "POST", "/collections/no_such_coll_obs/points/search", {"vector": [1, 0.5], "limit": 2})
    assert missing.status_code == 404
    text = scrape(qdrant)
    after = value(text, "rest_responses_total", **labels)
    assert after - before >= 4, (before, after)
    # timings of 200 responses: gauges in seconds and a histogram with Qdrant's buckets
    assert 0 < value(text, "rest_responses_min_duration_seconds", **labels) \
        <= value(text, "rest_responses_avg_duration_seconds", **labels) * 10
    assert value(text, "rest_responses_max_duration_seconds", **labels) \
        >= value(text, "rest_responses_min_duration_seconds", **labels)
    buckets = [value(text, "rest_responses_duration_seconds_bucket", le=le, **labels) for le in BUCKETS]
    assert buckets == sorted(buckets) and buckets[-1] == after
    assert value(text, "rest_responses_duration_seconds_count", **labels) == after
    assert value(text, "rest_responses_duration_seconds_sum", **labels) > 0
    # a 404 is counted, but has no timings
    missing_labels = rest_labels(SEARCH, status=404)
    assert value(text, "rest_responses_total", **missing_labels) >= 1
    assert frozenset((k, str(v)) for k, v in missing_labels.items()) not in samples(
        text, "rest_responses_avg_duration_seconds")
    # endpoints outside Qdrant's whitelist are not on /metrics
    rest(qdrant, "GET", "/collections")
    assert 'endpoint="/collections"' not in scrape(qdrant)


def test_metrics_per_collection_and_anonymize(qdrant, filled):
    rest(qdrant, "POST", f"/collections/{filled}/points/scroll", {"limit": 1})
    text = scrape(qdrant, per_collection="true")
    labels = rest_labels("/collections/{collection_name}/points/scroll")
    assert value(text, "rest_responses_total", collection=filled, **labels) >= 1
    assert all("collection=" in line for line in text.splitlines()
               if line.startswith("rest_responses_total{"))
    assert all("collection=" not in line for line in scrape(qdrant).splitlines()
               if line.startswith("rest_responses_total{"))
    anonymized = scrape(qdrant, anonymize="true")
    assert f'"{filled}"' not in anonymized
    ids = [dict(k)["id"] for k in samples(anonymized, "collection_points")]
    assert ids and all(i.isdigit() for i in ids), ids


def test_grpc_metrics_move(qdrant, collection_name):
    client = qdrant.client("grpc")
    try:
        client.create_collection(collection_name,
                                 vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
        labels = {"endpoint": "/qdrant.Points/Upsert", "status": "0"}
        before = samples(scrape(qdrant), "grpc_responses_total").get(frozenset(labels.items()), 0)
        for i in range(2):
            client.upsert(collection_name, points=[models.PointStruct(id=i, vector=[1.0, 2.0])], wait=True)
        text = scrape(qdrant)
        assert value(text, "grpc_responses_total", **labels) - before >= 2
        assert value(text, "grpc_responses_max_duration_seconds", **labels) > 0
        assert value(text, "grpc_responses_duration_seconds_bucket", le="+Inf", **labels) >= 2
        per = scrape(qdrant, per_collection="true")
        assert value(per, "grpc_responses_total", collection=collection_name, **labels) == 2
    finally:
        client.close()


def test_telemetry_levels(qdrant, filled):
    rest(qdrant, "POST", f"/collections/{filled}/points/count", {"exact": True})
    count_key = "POST /collections/{collection_name}/points/count"

    def level(n, **params):
        return ok_result(rest(qdrant, "GET", "/telemetry", params={"details_level": n, **params}))

    t0 = ok_result(rest(qdrant, "GET", "/telemetry"))
    assert set(t0) == {"id", "app", "collections", "cluster", "requests"}, sorted(t0)
    assert set(t0["app"]) == {"name", "version", "startup"}
    assert t0["app"]["name"] == "qdrant"
    assert set(t0["collections"]) == {"number_of_collections"}
    assert t0["cluster"]["enabled"] is False
    stats = t0["requests"]["rest"]["responses"][count_key]["200"]
    assert stats["count"] >= 1 and stats["avg_duration_micros"] > 0
    assert "min_duration_micros" not in stats
    assert "responses" in t0["requests"]["grpc"]

    t1 = level(1)
    assert {"memory", "hardware"} <= set(t1)
    assert set(t1["memory"]) == {"active_bytes", "allocated_bytes", "metadata_bytes", "resident_bytes",
                                 "retained_bytes"}
    assert set(t1["app"]["features"]) == {"debug", "service_debug_feature", "recovery_mode", "gpu", "rocksdb",
                                          "staging"}
    assert t1["app"]["system"]["cores"] >= 1 and "cpu_flags" in t1["app"]["system"]
    aggregated = t1["collections"]["collections"]
    assert all(set(c) == {"vectors", "optimizers_status", "params"} for c in aggregated), aggregated[:2]
    stats = t1["requests"]["rest"]["responses"][count_key]["200"]
    assert {"count", "avg_duration_micros", "min_duration_micros", "max_duration_micros",
            "total_duration_micros", "last_responded"} <= set(stats)

    t2 = level(2)
    mine = [c for c in t2["collections"]["collections"] if c["id"] == filled]
    assert mine and "shards" not in mine[0]
    assert mine[0]["config"]["params"]["vectors"]["a"]["size"] == 2
    assert {"hnsw_config", "optimizer_config", "wal_config"} <= set(mine[0]["config"])
    assert "config" in t2["cluster"]

    for n in (3, 4, 10):
        t = level(n)
        mine = [c for c in t["collections"]["collections"] if c["id"] == filled][0]
        shard = mine["shards"][0]
        assert shard["local"]["num_points"] == 10
        assert shard["local"]["num_vectors_by_name"] == {"a": 10, "s": 1}
        assert set(shard["replicate_states"].values()) == {"Active"}
        assert mine["transfers"] == []

    anon = level(3, anonymize="true")
    assert filled not in [c["id"] for c in anon["collections"]["collections"]]


@pytest.mark.timeout(180)
def test_unindexed_field_issue(qdrant_factory):
    server = qdrant_factory({"QDRANT__SERVICE__SLOW_QUERY_SECS": "0.000001"}, name="issues")
    client = server.client("rest")
    name = "issues_c"
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector=[0.1 * i, 0.2, 0.3, 0.4], payload={"city": ["London", "Berlin"][i % 2]})
        for i in range(200)])

    def issues():
        return ok_result(rest(server, "GET", "/issues"))["issues"]

    def search():
        r = rest(server, "POST", f"/collections/{name}/points/search", {
            "vector": [0.2, 0.1, 0.9, 0.7], "limit": 10,
            "filter": {"must": [{"key": "city", "match": {"any": ["London", "Moscow"]}}]}})
        assert r.status_code == 200, r.text

    assert issues() == []
    search()
    found = [i for i in issues() if i["id"] == f"UNINDEXED_FIELD/{name}/city"]
    assert len(found) == 1, issues()
    issue = found[0]
    assert issue["description"] == f"Unindexed field 'city' might be slowing queries down in collection '{name}'"
    assert issue["related_collection"] == name
    action = issue["solution"]["immediate"]["action"]
    assert action == {"method": "PUT", "uri": f"/collections/{name}/index",
                      "headers": {"content-type": "application/json"},
                      "body": {"field_name": "city", "field_schema": "keyword"}}
    assert issue["solution"]["immediate"]["message"].startswith(
        "Create an index on field 'city' of schema \"keyword\"")
    search()
    assert [i["timestamp"] for i in issues() if i["id"] == issue["id"]] == [issue["timestamp"]]

    # the suggested request solves it, and the indexed field no longer raises it
    r = rest(server, action["method"], action["uri"], action["body"], params={"wait": "true"})
    assert r.status_code == 200, r.text
    assert issues() == []
    search()
    assert issues() == []

    # a query (universal API, filter in a prefetch) on another unindexed key; DELETE /issues clears
    r = rest(server, "POST", f"/collections/{name}/points/query", {
        "prefetch": {"query": [0.1, 0.2, 0.3, 0.4], "filter": {"must": [{"key": "price", "range": {"gt": 1}}]}},
        "query": [0.1, 0.2, 0.3, 0.4]})
    assert r.status_code == 200, r.text
    price = [i for i in issues() if i["id"] == f"UNINDEXED_FIELD/{name}/price"]
    assert len(price) == 1 and len(price[0]["solution"]["immediate_choice"]) == 2, issues()
    assert ok_result(rest(server, "DELETE", "/issues")) is True
    assert issues() == []

    # deleting the collection solves its issues
    r = rest(server, "POST", f"/collections/{name}/points/query", {
        "query": [0.1, 0.2, 0.3, 0.4], "filter": {"must": [{"key": "other", "match": {"value": 3}}]}})
    assert r.status_code == 200, r.text
    assert len(issues()) == 1
    client.delete_collection(name)
    assert issues() == []
    client.close()


def test_issues_endpoints_shape(qdrant):
    r = rest(qdrant, "GET", "/issues")
    body = r.json()
    assert r.status_code == 200 and body["status"] == "ok" and isinstance(body["time"], float)
    assert isinstance(body["result"]["issues"], list)
    assert ok_result(rest(qdrant, "DELETE", "/issues")) is True
    assert ok_result(rest(qdrant, "GET", "/issues")) == {"issues": []}
