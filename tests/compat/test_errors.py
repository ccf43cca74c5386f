"""Error responses: HTTP status and the JSON envelope {"status": {"error": "<msg>"}, "time": t}.

Facts (Qdrant 1.19, src/actix/mod.rs `validation_error_handler`, src/actix/helpers.rs,
lib/storage/src/content_manager/errors.rs):
* malformed JSON / wrong JSON types (strings or NaN in a vector, bad point id) -> 400
  "Format error in JSON body: ..."; field validation failures (limit 0, size 0) -> 422
  "Validation error in JSON body: [...]" (tests/openapi/test_query.py test_query_validation:
  `limit: 0` -> "Validation error in JSON body: [internal.limit: value 0 invalid, must be 1 or larger]");
* wrong vector dimension -> 400 "Wrong input: Vector dimension error: expected dim: 4, got 3";
* unknown collection -> 404 "Not found: Collection `x` doesn't exist!";
* unknown vector name -> 400 "Wrong input: Not existing vector name error: <name>";
* unparsable point id in the path -> 400 "Wrong input: Can not recognize \"x\" as point id"
  (src/actix/api/retrieve_api.rs);
* request body above service.max_request_size_mb -> 400 with JSON error (actix JSON limit routed
  through validation_error_handler; "JSON payload (N bytes) is larger than allowed") — never a hang.
* over gRPC the same errors carry the same message with the status NOT_FOUND / INVALID_ARGUMENT
  (validation failures too; src/tonic/api: StorageError -> tonic::Status).

The raw-HTTP tests check REST's own wire format (status, JSON envelope, malformed JSON) and run
once; what the official client sees is checked over both transports with `expect_error`.
"""

import json

import pytest
from qdrant_client import models

from compat_helpers import assert_error, error_message, expect_error, raw_http, rest


def _make_coll4(client, name):
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[models.PointStruct(id=1, vector=[1, 2, 3, 4])])
    return name


@pytest.fixture
def coll4(client, collection_name):
    """4-d collection with one point, made over the test's transport."""
    return _make_coll4(client, collection_name)


@pytest.fixture
def rest_coll4(rest_client, collection_name):
    """The same, for the REST-only raw-HTTP tests."""
    return _make_coll4(rest_client, collection_name)


def test_wrong_vector_size_raw(qdrant, rest_coll4):
    # REST only: status and JSON envelope of raw requests, incl. the legacy /search route.
    coll4 = rest_coll4
    r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", {"points": [{"id": 2, "vector": [1, 2, 3]}]})
    assert_error(r, 400, startswith="Wrong input", contains="Vector dimension error: expected dim: 4, got 3")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": [1, 2], "limit": 3})
    assert_error(r, 400, contains="expected dim: 4, got 2")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/search", {"vector": [1, 2, 3, 4, 5], "limit": 3})
    assert_error(r, 400, contains="expected dim: 4, got 5")


def test_wrong_vector_size(client, coll4):
    with expect_error(client, "invalid_argument", contains="Vector dimension error: expected dim: 4, got 5"):
        client.upsert(coll4, wait=True, points=[models.PointStruct(id=3, vector=[1.0] * 5)])
    assert client.count(coll4).count == 1          # nothing half-applied
    with expect_error(client, "invalid_argument", contains="expected dim: 4, got 2"):
        client.query_points(coll4, query=[1.0, 2.0], limit=3)
    with expect_error(client, "invalid_argument", contains="expected dim: 4, got 3"):
        client.update_vectors(coll4, wait=True, points=[models.PointVectors(id=1, vector=[1.0, 2.0, 3.0])])
    assert client.retrieve(coll4, ids=[1], with_vectors=True)[0].vector == pytest.approx([1, 2, 3, 4])


def test_nan_and_strings_in_vector(qdrant, rest_coll4):
    # REST only: invalid JSON literals and JSON types (a protobuf float field cannot hold a string).
    coll4 = rest_coll4
    # json.dumps writes the (invalid JSON) literal NaN
    r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true",
             {"points": [{"id": 5, "vector": [1.0, float("nan"), 0.0, 0.0]}]})
    assert_error(r, 400)
    r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true",
             {"points": [{"id": 5, "vector": [1.0, "two", 0.0, 0.0]}]})
    assert_error(r, 400, startswith="Format error in JSON body")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", raw='{"query": [1, NaN, 0, 0]}')
    assert_error(r, 400)
    r = rest(qdrant, "GET", f"/collections/{coll4}")
    assert r.json()["result"]["points_count"] == 1


def test_unknown_collection_is_404(qdrant):
    # REST only: raw status and exact envelope (test_unknown_collection covers the client).
    for method, path, body in [
        ("GET", "/collections/ghost_coll", None),
        ("PUT", "/collections/ghost_coll/points?wait=true", {"points": [{"id": 1, "vector": [1]}]}),
        ("POST", "/collections/ghost_coll/points/query", {"query": [1.0], "limit": 1}),
        ("POST", "/collections/ghost_coll/points/scroll", {}),
        ("POST", "/collections/ghost_coll/points/count", {}),
        ("GET", "/collections/ghost_coll/points/1", None),
        ("POST", "/collections/ghost_coll/points/delete?wait=true", {"points": [1]}),
    ]:
        r = rest(qdrant, method, path, body)
        msg = assert_error(r, 404)
        assert msg == "Not found: Collection `ghost_coll` doesn't exist!", (method, path, msg)


def test_unknown_collection(client):
    want = "Not found: Collection `ghost_coll` doesn't exist!"
    calls = [
        ("get_collection", lambda: client.get_collection("ghost_coll")),
        ("upsert", lambda: client.upsert("ghost_coll", wait=True, points=[models.PointStruct(id=1, vector=[1.0])])),
        ("query_points", lambda: client.query_points("ghost_coll", query=[1.0], limit=1)),
        ("scroll", lambda: client.scroll("ghost_coll")),
        ("count", lambda: client.count("ghost_coll")),
        ("retrieve", lambda: client.retrieve("ghost_coll", ids=[1])),
        ("delete", lambda: client.delete("ghost_coll", points_selector=models.PointIdsList(points=[1]), wait=True)),
        ("set_payload", lambda: client.set_payload("ghost_coll", payload={"a": 1}, points=[1], wait=True)),
    ]
    for name, call in calls:
        with expect_error(client, "not_found") as e:
            call()
        assert error_message(e.value) == want, (name, error_message(e.value))


def test_malformed_json_is_400(qdrant, rest_coll4):
    # REST only: JSON parsing.
    coll4 = rest_coll4
    for raw in ['{"points": [', "not json at all", '{"points": [{"id": 1, "vector": [1,2,3,4]}]'] :
        r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", raw=raw)
        assert_error(r, 400, startswith="Format error in JSON body")
    r = rest(qdrant, "PUT", "/collections/some_new_coll_bad_json", raw='{"vectors": {"size": 4, "distance": ')
    assert_error(r, 400, startswith="Format error in JSON body")


def test_invalid_point_ids(qdrant, rest_coll4):
    # REST only: ids of the wrong JSON type and unparsable path ids (gRPC ids are typed).
    coll4 = rest_coll4
    for bad in ["not-a-uuid", -1, 1.5, None, {"x": 1}]:
        r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", {"points": [{"id": bad, "vector": [1, 2, 3, 4]}]})
        assert_error(r, 400)
    r = rest(qdrant, "GET", f"/collections/{coll4}/points/not-a-uuid")
    assert_error(r, 400, startswith="Wrong input")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points", {"ids": ["zzz"]})
    assert_error(r, 400)
    r = rest(qdrant, "GET", f"/collections/{coll4}/points/12345")
    assert_error(r, 404, contains="Point with id 12345 does not exists!")


def test_limit_zero_is_422(qdrant, rest_coll4):
    # REST only: the raw status and message prefix (test_limit_zero_is_invalid covers the client).
    coll4 = rest_coll4
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": [1, 2, 3, 4], "limit": 0})
    assert_error(r, 422, startswith="Validation error in JSON body")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": {"recommend": {"positive": [1]}}, "limit": 0})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="limit")


def test_limit_zero_is_invalid(client, coll4):
    with expect_error(client, "validation", contains="limit"):
        client.query_points(coll4, query=[1.0, 2.0, 3.0, 4.0], limit=0)


def test_collection_validation_errors(qdrant, collection_name):
    # REST only: raw bodies, incl. an unknown distance string (the client cannot send one).
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 0, "distance": "Dot"}})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="vectors.size")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 4, "distance": "Dot"},
                                                               "hnsw_config": {"ef_construct": 0}})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="hnsw_config.ef_construct")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 4, "distance": "Hamming-ish"}})
    assert_error(r, 400)
    # none of these created anything
    assert rest(qdrant, "GET", f"/collections/{collection_name}").status_code == 404


def test_collection_validation_errors_client(client, collection_name):
    with expect_error(client, "validation", contains="size"):
        client.create_collection(collection_name, vectors_config=models.VectorParams(size=0, distance=models.Distance.DOT))
    with expect_error(client, "validation", contains="ef_construct"):
        client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                                 hnsw_config=models.HnswConfigDiff(ef_construct=0))
    assert client.collection_exists(collection_name) is False


def test_unknown_vector_name_raw(qdrant, rest_client, collection_name):
    # REST only: raw status (test_unknown_vector_name covers the client).
    rest_client.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)})
    r = rest(qdrant, "POST", f"/collections/{collection_name}/points/query", {"query": [1, 2], "using": "nope"})
    assert_error(r, 400, contains="nope")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}/points?wait=true",
             {"points": [{"id": 1, "vector": {"nope": [1, 2]}}]})
    assert_error(r, 400, contains="nope")


def test_unknown_vector_name(client, collection_name):
    client.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)})
    with expect_error(client, "invalid_argument", contains="Not existing vector name error: nope"):
        client.query_points(collection_name, query=[1.0, 2.0], using="nope")
    with expect_error(client, "invalid_argument", contains="nope"):
        client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector={"nope": [1.0, 2.0]})])
    assert client.count(collection_name).count == 0


def test_errors_do_not_break_the_server(qdrant, rest_client, rest_coll4):
    # REST only: garbage JSON bodies (test_grpc.py sends garbage protobuf).
    client, coll4 = rest_client, rest_coll4
    for _ in range(20):
        rest(qdrant, "PUT", f"/collections/{coll4}/points", raw="{{{{")
    assert client.count(coll4).count == 1
    assert rest(qdrant, "GET", "/readyz").status_code == 200


@pytest.mark.timeout(90)
def test_request_over_max_size_is_rejected(qdrant_factory):
    # REST only: raw HTTP bodies (test_grpc.py checks the limit on gRPC messages).
    server = qdrant_factory({"QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1"}, name="maxsize")
    client = server.client()
    client.create_collection("big", vectors_config=models.VectorParams(size=64, distance=models.Distance.DOT))
    # ~0.5 MB request is accepted
    small = json.dumps({"points": [{"id": i, "vector": [0.123456] * 64} for i in range(1000)]}).encode()
    assert len(small) < 1024 * 1024
    r = rest(server, "PUT", "/collections/big/points?wait=true", raw=small)
    assert r.status_code == 200, r.text[:300]
    # ~3 MB request: rejected with a 4xx JSON error (Qdrant: 400), promptly
    big = json.dumps({"points": [{"id": i, "vector": [0.123456] * 64} for i in range(6000)]}).encode()
    assert len(big) > 2 * 1024 * 1024
    head = (f"PUT /collections/big/points?wait=true HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(big)}\r\nConnection: close\r\n\r\n").encode()
    status, headers, body = raw_http("127.0.0.1", server.port, head, big, timeout=30)
    assert 400 <= status < 500, (status, body[:300])
    err = json.loads(body)
    assert isinstance(err["status"]["error"], str) and err["status"]["error"]
    # the rejected batch left nothing behind and the server is fine
    assert client.count("big", exact=True).count == 1000
    client.close()
