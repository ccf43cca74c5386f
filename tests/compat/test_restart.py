"""Durability: everything acknowledged with wait=true survives `kill -9` and a restart on the same
storage: collections and their config, points, payloads, vectors, deletions, payload indexes.

Fact (Qdrant 1.19): an update with wait=true is in the WAL before the response, and the WAL is
replayed on start (lib/collection/src/shards/local_shard: load + WAL recovery); payload index
definitions are part of the persisted collection/segment config.

Both tests run over REST and gRPC (`transport`), on a private server each."""

import numpy as np
import pytest
from qdrant_client import models


U1 = "3f1e8e86-0b1a-4f7e-9c53-8a0f0c6c2c11"


def snapshot_state(client, name):
    pts, nxt = client.scroll(name, limit=10_000, with_payload=True, with_vectors=True)
    assert nxt is None
    return {p.id: (p.payload, p.vector) for p in pts}


def same_state(a, b):
    assert set(a) == set(b), f"ids differ: only before {set(a) - set(b)}, only after {set(b) - set(a)}"
    for pid in a:
        pa, va = a[pid]
        pb, vb = b[pid]
        assert pa == pb, (pid, pa, pb)
        if isinstance(va, dict):
            assert set(va) == set(vb), pid
            for k in va:
                assert vb[k] == pytest.approx(va[k], abs=1e-6), (pid, k)
        else:
            assert vb == pytest.approx(va, abs=1e-6), pid


@pytest.mark.timeout(300)
def test_kill9_restart_keeps_everything(qdrant_factory, transport):
    server = qdrant_factory(name="restart")
    client = server.client(transport)
    rng = np.random.default_rng(99)

    # collection 1: single vector, indexes, mixed ids
    data = rng.normal(size=(500, 8)).astype(np.float32)
    client.create_collection("durable", vectors_config=models.VectorParams(size=8, distance=models.Distance.DOT),
                             hnsw_config=models.HnswConfigDiff(m=20), shard_number=2,
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=7777))
    client.create_payload_index("durable", field_name="city", field_schema=models.PayloadSchemaType.KEYWORD, wait=True)
    client.create_payload_index("durable", field_name="n", field_schema=models.PayloadSchemaType.INTEGER, wait=True)
    for s in range(0, 500, 100):
        client.upsert("durable", wait=True, points=[
            models.PointStruct(id=i, vector=data[i].tolist(),
                               payload={"n": i, "city": ["berlin", "paris", "tokyo"][i % 3], "nested": {"k": [i, i + 1]}})
            for i in range(s, s + 100)])
    client.upsert("durable", wait=True, points=[models.PointStruct(id=U1, vector=[1.0] * 8, payload={"uuid": True})])
    # later modifications that must also survive
    client.delete("durable", points_selector=models.PointIdsList(points=list(range(0, 50))), wait=True)
    client.set_payload("durable", payload={"edited": 1}, points=[100, 101], wait=True)
    client.overwrite_payload("durable", payload={"only": "this"}, points=[102], wait=True)
    client.update_vectors("durable", points=[models.PointVectors(id=103, vector=[0.5] * 8)], wait=True)
    client.delete_payload("durable", keys=["nested"], points=[104], wait=True)

    # collection 2: named vectors
    client.create_collection("durable_named", vectors_config={
        "a": models.VectorParams(size=3, distance=models.Distance.COSINE),
        "b": models.VectorParams(size=2, distance=models.Distance.EUCLID)})
    client.upsert("durable_named", wait=True, points=[
        models.PointStruct(id=i, vector={"a": [1.0, i, 2.0], "b": [i, -i]}, payload={"i": i}) for i in range(1, 21)])

    before = {name: snapshot_state(client, name) for name in ("durable", "durable_named")}
    info_before = client.get_collection("durable")
    q = rng.normal(size=8).astype(np.float32).tolist()
    search_before = [(h.id, h.score) for h in client.query_points(
        "durable", query=q, limit=10, search_params=models.SearchParams(exact=True)).points]
    client.close()

    server.restart(kill9=True)
    client = server.client(transport)

    assert sorted(c.name for c in client.get_collections().collections) == ["durable", "durable_named"]
    info = client.get_collection("durable")
    assert info.points_count == 451
    assert info.config.params.vectors.size == 8
    assert info.config.params.vectors.distance == models.Distance.DOT
    assert info.config.params.shard_number == 2
    assert info.config.hnsw_config.m == 20
    assert info.config.optimizer_config.indexing_threshold == 7777
    assert set(info.payload_schema) == {"city", "n"}
    assert info.payload_schema["city"].data_type == models.PayloadSchemaType.KEYWORD
    assert info.payload_schema["n"].data_type == models.PayloadSchemaType.INTEGER
    assert info.payload_schema["city"].points == info_before.payload_schema["city"].points
    assert info.payload_schema["n"].points == info_before.payload_schema["n"].points

    for name in ("durable", "durable_named"):
        same_state(before[name], snapshot_state(client, name))
    assert client.retrieve("durable", ids=[102])[0].payload == {"only": "this"}
    assert client.retrieve("durable", ids=[7]) == []

    search_after = [(h.id, h.score) for h in client.query_points(
        "durable", query=q, limit=10, search_params=models.SearchParams(exact=True)).points]
    assert [i for i, _ in search_after] == [i for i, _ in search_before]
    assert [s for _, s in search_after] == pytest.approx([s for _, s in search_before], abs=1e-4)

    # the indexes still work for filtering after the restart
    flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="paris")),
                              models.FieldCondition(key="n", range=models.Range(gte=400))])
    got = sorted(p.id for p in client.scroll("durable", scroll_filter=flt, limit=1000)[0])
    assert got == [i for i in range(400, 500) if i % 3 == 1]

    # and the node keeps accepting writes; a second kill -9 keeps them too
    client.upsert("durable", wait=True, points=[models.PointStruct(id=10_000, vector=[2.0] * 8, payload={"late": True})])
    client.delete_collection("durable_named")
    client.close()
    server.restart(kill9=True)
    client = server.client(transport)
    assert [c.name for c in client.get_collections().collections] == ["durable"]
    assert client.retrieve("durable", ids=[10_000])[0].payload == {"late": True}
    assert client.count("durable", exact=True).count == 452
    client.close()


@pytest.mark.timeout(180)
def test_graceful_restart_keeps_data(qdrant_factory, transport):
    server = qdrant_factory(name="graceful")
    client = server.client(transport)
    client.create_collection("c", vectors_config=models.VectorParams(size=2, distance=models.Distance.MANHATTAN))
    client.upsert("c", wait=True, points=[models.PointStruct(id=i, vector=[i, 0], payload={"i": i}) for i in range(100)])
    client.close()
    server.restart(kill9=False)
    client = server.client(transport)
    assert client.count("c", exact=True).count == 100
    hits = client.query_points("c", query=[10.2, 0], limit=3, search_params=models.SearchParams(exact=True)).points
    assert [h.id for h in hits] == [10, 11, 9]
    assert [h.score for h in hits] == pytest.approx([0.2, 0.8, 1.2], abs=1e-4)
    client.close()
