"""Grouped search: `points/query/groups` (REST and gRPC through the client), and the legacy
`points/search/groups` / `points/recommend/groups` (raw REST).

Facts (Qdrant 1.19, docs "Search / Grouping API"): groups are named by the string or integer values
of `group_by` (a point with several values joins each group; points without a value are left
out); the best `limit` groups (default 10) in order of their best point, each with its best
`group_size` points (default 3), best first; `with_lookup` attaches the point of another
collection whose id is the group id (payload by default, no vectors).
"""

import numpy as np
import pytest
from qdrant_client import models

from qdrant_client import grpc as qgrpc

from compat_helpers import expect_error, ok_result, rest, transport_of

N = 60
RNG = np.random.default_rng(9)
VECS = RNG.normal(size=(N, 3)).round(3)
Q = [0.2, 0.9, -0.4]


def payload(i):
    if i % 11 == 0:
        return {"other": i}
    if i % 10 == 0:
        return {"cat": [i % 7, 100 + i % 3], "n": i}
    return {"cat": i % 7, "n": i}


@pytest.fixture
def coll(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=VECS[i].tolist(), payload=payload(i)) for i in range(N)])
    lookup = collection_name + "_lookup"
    client.create_collection(lookup, vectors_config=models.VectorParams(size=3, distance=models.Distance.DOT))
    client.upsert(lookup, wait=True, points=[
        models.PointStruct(id=g, vector=[1.0, 0.0, 0.0], payload={"name": f"cat{g}"}) for g in range(7)])
    yield collection_name, lookup
    client.delete_collection(lookup)


def expected_groups(limit, size, exclude=()):
    scores = VECS @ np.array(Q)
    order = sorted((i for i in range(N) if i not in exclude), key=lambda i: -scores[i])
    groups = {}
    for i in order:
        cats = payload(i).get("cat")
        if cats is None:
            continue
        for c in (cats if isinstance(cats, list) else [cats]):
            if c not in groups and len(groups) < limit:
                groups[c] = []
            if c in groups and len(groups[c]) < size:
                groups[c].append(i)
    return list(groups.items())


def test_query_groups(client, coll):
    name, lookup = coll
    res = client.query_points_groups(name, group_by="cat", query=Q, limit=4, group_size=2,
                                     search_params=models.SearchParams(exact=True), with_payload=["n"])
    got = [(g.id, [h.id for h in g.hits]) for g in res.groups]
    assert got == expected_groups(4, 2)
    for g in res.groups:
        assert all(h.payload == {"n": h.id} for h in g.hits)
        scores = [h.score for h in g.hits]
        assert scores == sorted(scores, reverse=True)

    # defaults: 10 groups of 3 (there are only 7 + 3 array-only values)
    res = client.query_points_groups(name, group_by="cat", query=Q, search_params=models.SearchParams(exact=True))
    assert [(g.id, [h.id for h in g.hits]) for g in res.groups] == expected_groups(10, 3)

    # lookup by group id in another collection
    res = client.query_points_groups(name, group_by="cat", query=Q, limit=10, group_size=1,
                                     with_lookup=models.WithLookup(collection=lookup, with_payload=True))
    for g in res.groups:
        if isinstance(g.id, int) and g.id < 7:
            assert g.lookup is not None and g.lookup.id == g.id and g.lookup.payload == {"name": f"cat{g.id}"}
        else:
            assert g.lookup is None

    with expect_error(client, "not_found"):
        client.query_points_groups(name, group_by="cat", query=Q, with_lookup="no_such_collection")


def test_legacy_groups(qdrant, client, coll):
    name, lookup = coll
    body = {"vector": Q, "group_by": "cat", "limit": 3, "group_size": 2, "params": {"exact": True},
            "with_lookup": lookup}
    res = ok_result(rest(qdrant, "POST", f"/collections/{name}/points/search/groups", body))
    assert [(g["id"], [h["id"] for h in g["hits"]]) for g in res["groups"]] == expected_groups(3, 2)
    assert all("lookup" in g for g in res["groups"] if g["id"] < 7)

    rec = {"positive": [5], "strategy": "best_score", "group_by": "cat", "limit": 2, "group_size": 3}
    res = ok_result(rest(qdrant, "POST", f"/collections/{name}/points/recommend/groups", rec))
    assert len(res["groups"]) == 2 and all(1 <= len(g["hits"]) <= 3 for g in res["groups"])
    assert 5 not in {h["id"] for g in res["groups"] for h in g["hits"]}


def test_legacy_search_groups_over_grpc(client, coll):
    if transport_of(client) != "grpc":
        pytest.skip("the gRPC stub call; REST is covered by test_legacy_groups")
    name, lookup = coll
    res = client.grpc_points.SearchGroups(qgrpc.SearchPointGroups(
        collection_name=name, vector=Q, group_by="cat", limit=3, group_size=2,
        params=qgrpc.SearchParams(exact=True), with_lookup=qgrpc.WithLookup(collection=lookup)), timeout=30)
    gid = lambda g: g.id.unsigned_value if g.id.HasField("unsigned_value") else g.id.integer_value  # noqa: E731
    assert [(gid(g), [h.id.num for h in g.hits]) for g in res.result.groups] == expected_groups(3, 2)
    assert all(g.HasField("lookup") for g in res.result.groups if gid(g) < 7)
