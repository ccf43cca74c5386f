"""Point CRUD, payload operations, batch updates and scroll, through the official client.

Facts (Qdrant 1.19):
* ids are u64 or UUID; UUIDs are parsed with `Uuid::parse_str` (hyphenated, simple, upper-case all
  accepted) and always rendered lowercase hyphenated (segment::types::ExtendedPointId).
* UpdateResult {"operation_id": u64, "status": "completed"} with wait=true, "acknowledged" without.
* GET /points/{id}: payload + vector; 404 "Not found: Point with id N does not exists!";
  POST /points (retrieve) skips missing ids (src/actix/api/retrieve_api.rs).
* set payload merges, overwrite replaces, `key` addresses a nested object (created if missing),
  delete keys, clear -> {} (tests/openapi/test_payload_operations.py).
* Cosine vectors are normalised on insert, so they are returned normalised.
* scroll: ascending id order, numeric ids before UUIDs (ExtendedPointId derives Ord with NumId
  first), `next_page_offset` = id of the first point of the next page, null at the end.
* with_payload: bool | [keys] | {"include": [...]} | {"exclude": [...]}; nested keys allowed.

Tests taking `client` run over REST and gRPC (their raw-HTTP asserts then also read back over REST
what was written over gRPC); tests of REST-only routes and REST defaults use `rest_client`.
"""

import uuid

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import id_sort_key, ok_result, rest, wait_until

U1 = "550e8400-e29b-41d4-a716-446655440000"
U2 = "b524a3c4-c568-4383-8019-c9ca08243d6a"
U3 = "1d675313-d3dd-4646-8b98-8052364872da"


def make(client, name, size=4, distance=models.Distance.DOT, **kw):
    client.create_collection(name, vectors_config=models.VectorParams(size=size, distance=distance), **kw)


def by_id(records):
    return {r.id: r for r in records}


def test_upsert_list_form_and_retrieve(qdrant, client, collection_name):
    make(client, collection_name)
    res = client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector=[0.1, 0.2, 0.3, 0.4], payload={"city": "Berlin", "n": 1}),
        models.PointStruct(id=2, vector=[0.5, 0.6, 0.7, 0.8], payload={"city": ["Berlin", "London"]}),
        models.PointStruct(id=U1, vector=[1.0, 0.0, 0.0, 0.0]),
    ])
    assert res.status == models.UpdateStatus.COMPLETED
    assert isinstance(res.operation_id, int)

    recs = by_id(client.retrieve(collection_name, ids=[1, 2, U1, 999, U2], with_payload=True, with_vectors=True))
    assert set(recs) == {1, 2, U1}          # missing ids are skipped, no error
    assert recs[1].payload == {"city": "Berlin", "n": 1}
    assert recs[2].payload == {"city": ["Berlin", "London"]}
    assert recs[U1].payload == {}
    assert recs[1].vector == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-6)
    assert recs[U1].vector == pytest.approx([1.0, 0.0, 0.0, 0.0])

    # defaults of POST /points: with_payload true, with_vector false
    raw = ok_result(rest(qdrant, "POST", f"/collections/{collection_name}/points", {"ids": [1]}))
    assert len(raw) == 1 and raw[0]["id"] == 1
    assert raw[0]["payload"] == {"city": "Berlin", "n": 1}
    assert raw[0].get("vector") is None


def test_get_single_point_raw(qdrant, rest_client, collection_name):
    # REST only: GET /points/{id} and its 404 envelope have no gRPC counterpart.
    client = rest_client
    make(client, collection_name)
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=7, vector=[1, 2, 3, 4], payload={"a": 1})])
    rec = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}/points/7"))
    assert rec["id"] == 7
    assert rec["payload"] == {"a": 1}
    assert rec["vector"] == pytest.approx([1, 2, 3, 4])
    r = rest(qdrant, "GET", f"/collections/{collection_name}/points/8")
    assert r.status_code == 404
    assert r.json()["status"]["error"] == "Not found: Point with id 8 does not exists!"


def test_upsert_batch_form(client, collection_name):
    make(client, collection_name, size=3)
    res = client.upsert(collection_name, wait=True, points=models.Batch(
        ids=[10, 11, U2],
        vectors=[[1, 0, 0], [0, 1, 0], [0, 0, 1]],
        payloads=[{"k": "a"}, {"k": "b"}, {}],
    ))
    assert res.status == models.UpdateStatus.COMPLETED
    recs = by_id(client.retrieve(collection_name, ids=[10, 11, U2], with_vectors=True))
    assert set(recs) == {10, 11, U2}
    assert recs[10].payload == {"k": "a"} and recs[11].payload == {"k": "b"}
    assert recs[U2].payload == {}
    assert recs[11].vector == pytest.approx([0, 1, 0])
    assert client.count(collection_name, exact=True).count == 3


def test_uuid_normalisation(qdrant, client, collection_name):
    make(client, collection_name, size=2)
    upper = U1.upper()
    simple = U3.replace("-", "")
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=upper, vector=[1, 0], payload={"form": "upper"}),
        models.PointStruct(id=simple, vector=[0, 1], payload={"form": "simple"}),
    ])
    ids = {r.id for r in client.scroll(collection_name, limit=10)[0]}
    assert ids == {U1, U3}
    # retrieving with any textual form finds the same point, and the answer is normalised
    rec = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}/points/{upper}"))
    assert rec["id"] == U1
    recs = client.retrieve(collection_name, ids=[U3.upper()])
    assert [r.id for r in recs] == [U3]
    # upserting the same UUID in another form overwrites, does not duplicate
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=U1, vector=[0.5, 0.5], payload={"form": "lower"})])
    assert client.count(collection_name).count == 2
    assert client.retrieve(collection_name, ids=[U1])[0].payload == {"form": "lower"}


def test_wait_false_is_acknowledged_then_visible(client, collection_name):
    make(client, collection_name, size=2)
    res = client.upsert(collection_name, wait=False, points=[models.PointStruct(id=i, vector=[1, i]) for i in range(20)])
    assert res.status in (models.UpdateStatus.ACKNOWLEDGED, models.UpdateStatus.COMPLETED)
    wait_until(lambda: client.count(collection_name, exact=True).count == 20, timeout=30, what="20 points visible")


def test_cosine_vectors_are_normalised(client, collection_name):
    make(client, collection_name, size=3, distance=models.Distance.COSINE)
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[3.0, 0.0, 4.0])])
    v = client.retrieve(collection_name, ids=[1], with_vectors=True)[0].vector
    assert v == pytest.approx([0.6, 0.0, 0.8], abs=1e-6)


def test_delete_by_ids_and_by_filter(client, collection_name):
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1, i], payload={"group": "odd" if i % 2 else "even", "i": i}) for i in range(1, 21)])
    res = client.delete(collection_name, points_selector=models.PointIdsList(points=[1, 2, 3, 999]), wait=True)
    assert res.status == models.UpdateStatus.COMPLETED
    assert client.count(collection_name).count == 17
    client.delete(collection_name, wait=True, points_selector=models.FilterSelector(filter=models.Filter(
        must=[models.FieldCondition(key="group", match=models.MatchValue(value="even"))])))
    left = sorted(r.id for r in client.scroll(collection_name, limit=100)[0])
    assert left == [i for i in range(5, 21) if i % 2]
    assert client.retrieve(collection_name, ids=[2, 4]) == []


def test_set_overwrite_delete_clear_payload(client, collection_name):
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1, i], payload={"a": i, "keep": True}) for i in range(1, 6)])

    def pl(pid):
        return client.retrieve(collection_name, ids=[pid])[0].payload

    # set = merge
    client.set_payload(collection_name, payload={"b": "x", "a": 100}, points=[1], wait=True)
    assert pl(1) == {"a": 100, "keep": True, "b": "x"}
    # set by filter
    client.set_payload(collection_name, payload={"tag": "t"}, wait=True,
                       points=models.Filter(must=[models.FieldCondition(key="a", match=models.MatchValue(value=2))]))
    assert pl(2) == {"a": 2, "keep": True, "tag": "t"}
    assert "tag" not in pl(3)
    # overwrite = replace
    client.overwrite_payload(collection_name, payload={"only": 1}, points=[3], wait=True)
    assert pl(3) == {"only": 1}
    # delete keys
    client.delete_payload(collection_name, keys=["keep", "missing_key"], points=[4], wait=True)
    assert pl(4) == {"a": 4}
    # clear
    client.clear_payload(collection_name, points_selector=models.PointIdsList(points=[5]), wait=True)
    assert pl(5) == {}


def test_set_payload_with_nested_key(client, collection_name):
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 1], payload={
        "top": "t", "obj": {"a": 1, "inner": {"x": "old", "y": 2}}, "arr": [{"p": {"v": 1}}, {"p": {"v": 2}}]})])

    def pl():
        return client.retrieve(collection_name, ids=[1])[0].payload

    client.set_payload(collection_name, payload={"x": "new"}, key="obj.inner", points=[1], wait=True)
    assert pl()["obj"] == {"a": 1, "inner": {"x": "new", "y": 2}}
    client.set_payload(collection_name, payload={"b": 2}, key="obj", points=[1], wait=True)
    assert pl()["obj"] == {"a": 1, "b": 2, "inner": {"x": "new", "y": 2}}
    # a missing key path is created
    client.set_payload(collection_name, payload={"z": True}, key="obj.created", points=[1], wait=True)
    assert pl()["obj"]["created"] == {"z": True}
    # array element by index / all elements (forms used by tests/openapi/test_payload_operations.py)
    client.set_payload(collection_name, payload={"q": 0}, key="arr[0].p", points=[1], wait=True)
    assert pl()["arr"] == [{"p": {"v": 1, "q": 0}}, {"p": {"v": 2}}]
    client.set_payload(collection_name, payload={"r": 9}, key="arr[].p", points=[1], wait=True)
    assert pl()["arr"] == [{"p": {"v": 1, "q": 0, "r": 9}}, {"p": {"v": 2, "r": 9}}]
    assert pl()["top"] == "t"
    # nested key deletion
    client.delete_payload(collection_name, keys=["obj.inner.y"], points=[1], wait=True)
    assert pl()["obj"]["inner"] == {"x": "new"}


def test_update_vectors(client, collection_name):
    client.create_collection(collection_name, vectors_config={
        "a": models.VectorParams(size=2, distance=models.Distance.DOT),
        "b": models.VectorParams(size=3, distance=models.Distance.DOT),
    })
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector={"a": [1, 2], "b": [1, 2, 3]}, payload={"p": 1})])
    res = client.update_vectors(collection_name, points=[models.PointVectors(id=1, vector={"b": [9, 8, 7]})], wait=True)
    assert res.status == models.UpdateStatus.COMPLETED
    rec = client.retrieve(collection_name, ids=[1], with_vectors=True)[0]
    assert rec.vector["a"] == pytest.approx([1, 2])
    assert rec.vector["b"] == pytest.approx([9, 8, 7])
    assert rec.payload == {"p": 1}
    # with_vectors as a list of names
    rec = client.retrieve(collection_name, ids=[1], with_vectors=["a"])[0]
    assert set(rec.vector) == {"a"}
    # delete one named vector
    client.delete_vectors(collection_name, vectors=["a"], points=[1], wait=True)
    rec = client.retrieve(collection_name, ids=[1], with_vectors=True)[0]
    assert set(rec.vector) == {"b"}


def test_batch_update_points(client, collection_name):
    client.create_collection(collection_name, vectors_config={
        "v": models.VectorParams(size=2, distance=models.Distance.DOT),
        "w": models.VectorParams(size=2, distance=models.Distance.DOT),
    })
    ops = [
        models.UpsertOperation(upsert=models.PointsList(points=[
            models.PointStruct(id=i, vector={"v": [1, i], "w": [i, 1]}, payload={"i": i}) for i in range(1, 8)])),
        models.DeleteOperation(delete=models.PointIdsList(points=[7])),
        models.SetPayloadOperation(set_payload=models.SetPayload(payload={"s": 1}, points=[1, 2])),
        models.OverwritePayloadOperation(overwrite_payload=models.SetPayload(payload={"o": 1}, points=[3])),
        models.DeletePayloadOperation(delete_payload=models.DeletePayload(keys=["i"], points=[4])),
        models.ClearPayloadOperation(clear_payload=models.PointIdsList(points=[5])),
        models.UpdateVectorsOperation(update_vectors=models.UpdateVectors(points=[
            models.PointVectors(id=6, vector={"v": [42, 42]})])),
        models.DeleteVectorsOperation(delete_vectors=models.DeleteVectors(points=[2], vector=["w"])),
    ]
    results = client.batch_update_points(collection_name, update_operations=ops, wait=True)
    assert len(results) == len(ops)
    assert all(r.status == models.UpdateStatus.COMPLETED for r in results)
    recs = by_id(client.retrieve(collection_name, ids=list(range(1, 8)), with_vectors=True))
    assert set(recs) == {1, 2, 3, 4, 5, 6}
    assert recs[1].payload == {"i": 1, "s": 1}
    assert recs[2].payload == {"i": 2, "s": 1}
    assert recs[3].payload == {"o": 1}
    assert recs[4].payload == {}
    assert recs[5].payload == {}
    assert recs[6].vector["v"] == pytest.approx([42, 42])
    assert recs[6].vector["w"] == pytest.approx([6, 1])
    assert set(recs[2].vector) == {"v"}


def test_scroll_pagination_order_ints_before_uuids(client, collection_name):
    make(client, collection_name, size=2)
    rng = np.random.default_rng(7)
    ints = [int(x) for x in rng.choice(10_000, size=23, replace=False)]
    uuids = [str(uuid.UUID(int=int(rng.integers(1, 2 ** 63)) << 64 | int(rng.integers(1, 2 ** 63)))) for _ in range(6)]
    all_ids = ints + uuids
    order = list(range(len(all_ids)))
    rng.shuffle(order)
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=all_ids[i], vector=[1.0, float(i)], payload={"n": i}) for i in order])
    expected = sorted(all_ids, key=id_sort_key)

    seen, offset, pages = [], None, 0
    while True:
        pts, nxt = client.scroll(collection_name, limit=5, offset=offset, with_payload=False)
        pages += 1
        assert len(pts) <= 5
        seen.extend(p.id for p in pts)
        if nxt is None:
            break
        # next_page_offset is the id of the first point of the following page
        assert nxt == expected[len(seen)]
        offset = nxt
        assert pages < 20
    assert seen == expected
    assert pages == -(-len(expected) // 5)
    # a full page exactly at the end: next_page_offset is null
    pts, nxt = client.scroll(collection_name, limit=len(expected))
    assert [p.id for p in pts] == expected and nxt is None
    # offset = an id that does not exist starts from the next greater id
    probe = sorted(ints)[3] + 1
    while probe in ints:
        probe += 1
    pts, _ = client.scroll(collection_name, limit=3, offset=probe)
    assert [p.id for p in pts] == [i for i in expected if isinstance(i, str) or i >= probe][:3]


def test_scroll_raw_shape_and_defaults(qdrant, rest_client, collection_name):
    # REST only: the defaults of a raw JSON scroll body (gRPC messages state every field).
    client = rest_client
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1, i], payload={"i": i}) for i in range(1, 16)])
    # defaults: limit 10, with_payload true, with_vector false
    res = ok_result(rest(qdrant, "POST", f"/collections/{collection_name}/points/scroll", {}))
    assert [p["id"] for p in res["points"]] == list(range(1, 11))
    assert res["next_page_offset"] == 11
    assert res["points"][0]["payload"] == {"i": 1}
    assert res["points"][0].get("vector") is None


def test_payload_selectors(client, collection_name):
    make(client, collection_name, size=2)
    payload = {"a": 1, "b": {"c": 2, "d": 3}, "e": [1, 2], "f": "x"}
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 1], payload=payload)])

    def scroll_pl(sel):
        return client.scroll(collection_name, limit=1, with_payload=sel)[0][0].payload

    assert scroll_pl(True) == payload
    # no payload: None over REST; {} over gRPC (a protobuf map cannot be absent, and qdrant-client
    # converts a gRPC RetrievedPoint's payload as is)
    assert not scroll_pl(False)
    assert scroll_pl(["a", "f"]) == {"a": 1, "f": "x"}
    assert scroll_pl(models.PayloadSelectorInclude(include=["a", "b.c"])) == {"a": 1, "b": {"c": 2}}
    assert scroll_pl(models.PayloadSelectorExclude(exclude=["a", "e"])) == {"b": {"c": 2, "d": 3}, "f": "x"}
    assert scroll_pl(models.PayloadSelectorExclude(exclude=["b.d"])) == {"a": 1, "b": {"c": 2}, "e": [1, 2], "f": "x"}
    # same selectors on retrieve and query
    rec = client.retrieve(collection_name, ids=[1], with_payload=models.PayloadSelectorInclude(include=["f"]))[0]
    assert rec.payload == {"f": "x"}
    hit = client.query_points(collection_name, query=[1, 1], with_payload=["e"], limit=1).points[0]
    assert hit.payload == {"e": [1, 2]}


def test_with_vectors_on_scroll_and_query(client, collection_name):
    make(client, collection_name, size=3, distance=models.Distance.EUCLID)
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 2, 3])])
    p = client.scroll(collection_name, limit=1, with_vectors=True)[0][0]
    assert p.vector == pytest.approx([1, 2, 3])
    p = client.scroll(collection_name, limit=1, with_vectors=False)[0][0]
    assert p.vector is None
    h = client.query_points(collection_name, query=[1, 2, 3], with_vectors=True, limit=1).points[0]
    assert h.vector == pytest.approx([1, 2, 3])
    assert h.score == pytest.approx(0.0, abs=1e-5)


def test_count_exact_with_filter(client, collection_name):
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1, i], payload={"m": i % 3}) for i in range(30)])
    assert client.count(collection_name, exact=True).count == 30
    flt = models.Filter(must=[models.FieldCondition(key="m", match=models.MatchValue(value=1))])
    assert client.count(collection_name, count_filter=flt, exact=True).count == 10
    flt = models.Filter(must_not=[models.FieldCondition(key="m", match=models.MatchValue(value=1))])
    assert client.count(collection_name, count_filter=flt, exact=True).count == 20


def test_upsert_overwrites_whole_point(client, collection_name):
    make(client, collection_name, size=2)
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[1, 1], payload={"a": 1, "b": 2})])
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=1, vector=[2, 2], payload={"c": 3})])
    rec = client.retrieve(collection_name, ids=[1], with_vectors=True)[0]
    assert rec.payload == {"c": 3}
    assert rec.vector == pytest.approx([2, 2])
    assert client.count(collection_name).count == 1
