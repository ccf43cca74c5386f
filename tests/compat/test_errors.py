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
"""

import json

import pytest
from qdrant_client import models
from qdrant_client.http.exceptions import UnexpectedResponse

from compat_helpers import assert_error, raw_http, rest


@pytest.fixture
def coll4(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 2, 3, 4])])
    return collection_name


def test_wrong_vector_size_on_upsert(qdrant, client, coll4):
    r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", {"points": [{"id": 2, "vector": [1, 2, 3]}]})
    assert_error(r, 400, startswith="Wrong input", contains="Vector dimension error: expected dim: 4, got 3")
    with pytest.raises(UnexpectedResponse) as e:
        client.upsert(coll4, wait=True, points=[models.PointStruct(id=3, vector=[1.0] * 5)])
    assert e.value.status_code == 400
    assert client.count(coll4).count == 1          # nothing half-applied


def test_wrong_vector_size_on_query(qdrant, coll4):
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": [1, 2], "limit": 3})
    assert_error(r, 400, contains="expected dim: 4, got 2")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/search", {"vector": [1, 2, 3, 4, 5], "limit": 3})
    assert_error(r, 400, contains="expected dim: 4, got 5")


def test_nan_and_strings_in_vector(qdrant, coll4):
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


def test_malformed_json_is_400(qdrant, coll4):
    for raw in ['{"points": [', "not json at all", '{"points": [{"id": 1, "vector": [1,2,3,4]}]'] :
        r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", raw=raw)
        assert_error(r, 400, startswith="Format error in JSON body")
    r = rest(qdrant, "PUT", "/collections/some_new_coll_bad_json", raw='{"vectors": {"size": 4, "distance": ')
    assert_error(r, 400, startswith="Format error in JSON body")


def test_invalid_point_ids(qdrant, coll4):
    for bad in ["not-a-uuid", -1, 1.5, None, {"x": 1}]:
        r = rest(qdrant, "PUT", f"/collections/{coll4}/points?wait=true", {"points": [{"id": bad, "vector": [1, 2, 3, 4]}]})
        assert_error(r, 400)
    r = rest(qdrant, "GET", f"/collections/{coll4}/points/not-a-uuid")
    assert_error(r, 400, startswith="Wrong input")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points", {"ids": ["zzz"]})
    assert_error(r, 400)
    r = rest(qdrant, "GET", f"/collections/{coll4}/points/12345")
    assert_error(r, 404, contains="Point with id 12345 does not exists!")


def test_limit_zero_is_422(qdrant, coll4):
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": [1, 2, 3, 4], "limit": 0})
    assert_error(r, 422, startswith="Validation error in JSON body")
    r = rest(qdrant, "POST", f"/collections/{coll4}/points/query", {"query": {"recommend": {"positive": [1]}}, "limit": 0})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="limit")


def test_collection_validation_errors(qdrant, collection_name):
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 0, "distance": "Dot"}})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="vectors.size")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 4, "distance": "Dot"},
                                                               "hnsw_config": {"ef_construct": 0}})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="hnsw_config.ef_construct")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}", {"vectors": {"size": 4, "distance": "Hamming-ish"}})
    assert_error(r, 400)
    # none of these created anything
    assert rest(qdrant, "GET", f"/collections/{collection_name}").status_code == 404


def test_unknown_vector_name(qdrant, client, collection_name):
    client.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)})
    r = rest(qdrant, "POST", f"/collections/{collection_name}/points/query", {"query": [1, 2], "using": "nope"})
    assert_error(r, 400, contains="nope")
    r = rest(qdrant, "PUT", f"/collections/{collection_name}/points?wait=true",
             {"points": [{"id": 1, "vector": {"nope": [1, 2]}}]})
    assert_error(r, 400, contains="nope")


def test_errors_do_not_break_the_server(qdrant, client, coll4):
    for _ in range(20):
        rest(qdrant, "PUT", f"/collections/{coll4}/points", raw="{{{{")
    assert client.count(coll4).count == 1
    assert rest(qdrant, "GET", "/readyz").status_code == 200


@pytest.mark.timeout(90)
def test_request_over_max_size_is_rejected(qdrant_factory):
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
