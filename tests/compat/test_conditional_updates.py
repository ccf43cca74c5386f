"""Conditional writes over REST and gRPC: `update_mode` (upsert / insert_only / update_only) and
`update_filter` on upserts (list and batch forms, and in `points/batch`), `update_filter` on
vector updates.

Facts (Qdrant 1.19 openapi.json, PointInsertOperations / UpdateVectors / UpdateMode):
  * update_filter: "Only points matching this filter will be updated. Points that don't match
    will keep their current state. New points will be inserted regardless of the filter."
  * update_mode: `upsert` (default) inserts new points and updates existing ones, `insert_only`
    only inserts new points, `update_only` only updates existing points.
"""

from qdrant_client import models


def state(client, name):
    pts, _ = client.scroll(name, limit=100, with_payload=True, with_vectors=True)
    return {p.id: (p.payload, [round(x, 4) for x in p.vector]) for p in pts}


def seed(client, name):
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=1, vector=[1.0, 0.0], payload={"v": 1, "locked": False}),
        models.PointStruct(id=2, vector=[0.0, 1.0], payload={"v": 1, "locked": True}),
    ])


def new_points():
    return [models.PointStruct(id=i, vector=[2.0, 2.0], payload={"v": 2, "locked": False}) for i in (1, 2, 3)]


def test_update_modes(client, collection_name):
    name = collection_name
    seed(client, name)
    client.upsert(name, wait=True, points=new_points(), update_mode=models.UpdateMode.INSERT_ONLY)
    s = state(client, name)
    assert s[1][0]["v"] == 1 and s[2][0]["v"] == 1 and s[3][0]["v"] == 2

    client.delete(name, points_selector=models.PointIdsList(points=[3]), wait=True)
    client.upsert(name, wait=True, points=new_points(), update_mode=models.UpdateMode.UPDATE_ONLY)
    s = state(client, name)
    assert set(s) == {1, 2} and s[1][0]["v"] == 2 and s[2][0]["v"] == 2

    client.upsert(name, wait=True, points=[models.PointStruct(id=4, vector=[1.0, 1.0])],
                  update_mode=models.UpdateMode.UPSERT)
    assert set(state(client, name)) == {1, 2, 4}


def test_update_filter_on_upsert_and_batch(client, collection_name):
    name = collection_name
    seed(client, name)
    unlocked = models.Filter(must=[models.FieldCondition(key="locked", match=models.MatchValue(value=False))])
    client.upsert(name, wait=True, points=new_points(), update_filter=unlocked)
    s = state(client, name)
    # 1 matched and was updated, 2 is locked and kept, 3 is new and inserted regardless
    assert s[1] == ({"v": 2, "locked": False}, [2.0, 2.0])
    assert s[2] == ({"v": 1, "locked": True}, [0.0, 1.0])
    assert s[3][0]["v"] == 2

    # the column (batch) form, with insert_only: nothing existing changes, 5 is new
    client.upsert(name, wait=True, update_mode=models.UpdateMode.INSERT_ONLY, points=models.Batch(
        ids=[2, 5], vectors=[[9.0, 9.0], [5.0, 5.0]], payloads=[{"v": 9}, {"v": 5}]))
    s = state(client, name)
    assert s[2][0]["v"] == 1 and s[5][0]["v"] == 5

    # inside points/batch
    client.batch_update_points(name, update_operations=[models.UpsertOperation(upsert=models.PointsList(
        points=[models.PointStruct(id=2, vector=[7.0, 7.0], payload={"v": 7, "locked": True})],
        update_filter=unlocked))], wait=True)
    assert state(client, name)[2][0]["v"] == 1


def test_update_filter_on_vector_updates(client, collection_name):
    name = collection_name
    seed(client, name)
    locked = models.Filter(must=[models.FieldCondition(key="locked", match=models.MatchValue(value=True))])
    client.update_vectors(name, wait=True, update_filter=locked, points=[
        models.PointVectors(id=1, vector=[3.0, 3.0]), models.PointVectors(id=2, vector=[4.0, 4.0])])
    s = state(client, name)
    assert s[1][1] == [1.0, 0.0] and s[2][1] == [4.0, 4.0]
