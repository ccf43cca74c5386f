"""Sparse vectors next to the default dense vector -- the layout qdrant-client's own helpers use
(research/qdrant-api.md §3 note: `vectors: {size, distance}` + `sparse_vectors: {"sparse-text": {}}`,
points with `vector: {"": [...], "sparse-text": {indices, values}}`), hence P0 although not in the
original brief.

Facts (Qdrant 1.19): sparse score = dot product over the indices both vectors have; points sharing
no index with the query are not returned; negative scores are returned like any other (checked
against Qdrant's segment code via qdrant-edge 0.9); `config.params.sparse_vectors` lists the names.
"""

import pytest
from qdrant_client import models

SPARSE = {1: ([1, 3], [0.5, 2.0]), 2: ([3, 7], [1.0, 1.0]), 3: ([8], [5.0]), 4: ([1, 7], [-1.0, 0.5])}


def test_dense_plus_sparse(qdrant, client, collection_name):
    client.create_collection(collection_name,
                             vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT),
                             sparse_vectors_config={"sparse-text": models.SparseVectorParams()})
    info = client.get_collection(collection_name)
    assert set(info.config.params.sparse_vectors) == {"sparse-text"}
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector={"": [1.0, float(i)],
                                         "sparse-text": models.SparseVector(indices=ix, values=v)})
        for i, (ix, v) in SPARSE.items()])
    assert client.count(collection_name).count == 4

    q = models.SparseVector(indices=[1, 3, 7], values=[2.0, 1.0, 3.0])
    for exact in (False, True):
        hits = client.query_points(collection_name, query=q, using="sparse-text", limit=10,
                                   search_params=models.SearchParams(exact=exact)).points
        assert [h.id for h in hits] == [2, 1, 4]
        assert [h.score for h in hits] == pytest.approx([4.0, 3.0, -0.5], abs=1e-5)

    # the dense default vector is still searchable without `using`
    hits = client.query_points(collection_name, query=[0.0, 1.0], limit=2,
                               search_params=models.SearchParams(exact=True)).points
    assert [h.id for h in hits] == [4, 3]

    rec = client.retrieve(collection_name, ids=[1], with_vectors=True)[0]
    assert rec.vector[""] == pytest.approx([1.0, 1.0])
    assert rec.vector["sparse-text"].indices == [1, 3]
    assert rec.vector["sparse-text"].values == pytest.approx([0.5, 2.0])
