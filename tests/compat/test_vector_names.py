"""Named vectors created and deleted on an existing collection
(`PUT`/`DELETE /collections/{c}/vectors/{vector_name}`, gRPC `Points.CreateVectorName` /
`DeleteVectorName`).

Facts (Qdrant 1.19, lib/collection/src/collection/vector_name_schema.rs): creating a vector that
already exists with the same space is a no-op, with another space it is refused ("already exists
with a different configuration", or "as a sparse/dense vector"); an unnamed vector becomes the
vector named "" next to the new one; deleting a vector removes it from the configuration and its
values from every point; existing points simply lack a new vector until they are given one.
"""

import pytest
from qdrant_client import models

from compat_helpers import expect_error, rest


def test_create_use_and_delete_vectors(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
                             shard_number=2)
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=[1.0, float(i)], payload={"i": i}) for i in range(1, 11)])

    client.create_vector_name(collection_name, "img", models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=3, distance=models.Distance.COSINE)))
    client.create_vector_name(collection_name, "bm", models.SparseVectorNameConfig(
        sparse=models.SparseVectorConfig(modifier=models.Modifier.IDF)))
    params = client.get_collection(collection_name).config.params
    assert params.vectors[""].size == 2 and params.vectors["img"].size == 3
    assert params.vectors["img"].distance == models.Distance.COSINE
    assert params.sparse_vectors["bm"].modifier == models.Modifier.IDF

    # old points lack the new vectors; they can be given them and searched
    has_img = models.Filter(must=[models.HasVectorCondition(has_vector="img")])
    assert client.count(collection_name, count_filter=has_img, exact=True).count == 0
    client.update_vectors(collection_name, wait=True, points=[
        models.PointVectors(id=3, vector={"img": [0.0, 1.0, 0.0], "bm": models.SparseVector(indices=[7], values=[1.0])}),
        models.PointVectors(id=4, vector={"img": [1.0, 0.0, 0.0]}),
    ])
    assert client.count(collection_name, count_filter=has_img, exact=True).count == 2
    hits = client.query_points(collection_name, query=[0.1, 0.9, 0.0], using="img", limit=5).points
    assert [h.id for h in hits] == [3, 4]
    hits = client.query_points(collection_name, query=models.SparseVector(indices=[7], values=[1.0]),
                               using="bm", limit=5).points
    assert [h.id for h in hits] == [3]
    # the original vector and the payloads are untouched
    assert client.count(collection_name, exact=True).count == 10
    rec = client.retrieve(collection_name, ids=[3], with_vectors=True, with_payload=True)[0]
    assert rec.vector[""] == [1.0, 3.0] and rec.payload == {"i": 3}

    client.delete_vector_name(collection_name, "img")
    params = client.get_collection(collection_name).config.params
    assert "img" not in params.vectors
    rec = client.retrieve(collection_name, ids=[3], with_vectors=True)[0]
    assert set(rec.vector) == {"", "bm"}
    with expect_error(client, "invalid_argument"):
        client.query_points(collection_name, query=[0.1, 0.9, 0.0], using="img", limit=5)

    # a vector created again under the deleted name starts empty
    client.create_vector_name(collection_name, "img", models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=3, distance=models.Distance.COSINE)))
    assert client.count(collection_name, count_filter=has_img, exact=True).count == 0


def test_conflicting_creations_and_unknown_deletes(client, collection_name):
    client.create_collection(collection_name, vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)},
                             sparse_vectors_config={"s": models.SparseVectorParams()})
    same = models.DenseVectorNameConfig(dense=models.DenseVectorConfig(size=2, distance=models.Distance.DOT))
    client.create_vector_name(collection_name, "a", same)  # identical: a no-op
    with expect_error(client, "invalid_argument", "already exists with a different configuration"):
        client.create_vector_name(collection_name, "a", models.DenseVectorNameConfig(
            dense=models.DenseVectorConfig(size=5, distance=models.Distance.DOT)))
    with expect_error(client, "invalid_argument", "already exists as a sparse vector"):
        client.create_vector_name(collection_name, "s", same)
    with expect_error(client, "invalid_argument", "already exists as a dense vector"):
        client.create_vector_name(collection_name, "a", models.SparseVectorNameConfig(sparse=models.SparseVectorConfig()))
    with expect_error(client, "invalid_argument", "Not existing vector name"):
        client.delete_vector_name(collection_name, "nope")
    with expect_error(client, "not_found"):
        client.delete_vector_name(collection_name + "-missing", "a")


def test_vectors_survive_a_restart(qdrant_factory):
    server = qdrant_factory()
    c = server.client("rest")
    name = "vector-names-restart"
    c.create_collection(name, vectors_config={"a": models.VectorParams(size=2, distance=models.Distance.DOT)})
    c.upsert(name, wait=True, points=[models.PointStruct(id=1, vector={"a": [1.0, 2.0]})])
    c.create_vector_name(name, "x", models.DenseVectorNameConfig(
        dense=models.DenseVectorConfig(size=2, distance=models.Distance.EUCLID)))
    c.update_vectors(name, wait=True, points=[models.PointVectors(id=1, vector={"x": [3.0, 4.0]})])
    c.delete_vector_name(name, "a")
    server.restart()
    c = server.client("rest")
    rec = c.retrieve(name, ids=[1], with_vectors=True)[0]
    assert rec.vector == {"x": [3.0, 4.0]}
    assert set(c.get_collection(name).config.params.vectors) == {"x"}


def test_rest_body_errors(qdrant, collection_name):
    assert rest(qdrant, "PUT", f"/collections/{collection_name}",
                {"vectors": {"size": 2, "distance": "Dot"}}).status_code == 200
    r = rest(qdrant, "PUT", f"/collections/{collection_name}/vectors/v", {"dense": {"size": 2}})
    assert r.status_code in (400, 422), r.text
    r = rest(qdrant, "PUT", f"/collections/{collection_name}/vectors/v", {"dense": {"size": 2, "distance": "Dot"}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["status"] in ("completed", "acknowledged")
    r = rest(qdrant, "DELETE", f"/collections/{collection_name}/vectors/v")
    assert r.status_code == 200, r.text
