"""Collection aliases over REST and gRPC (qdrant-client's update_collection_aliases, get_aliases,
get_collection_aliases), and every data call through an alias.

Facts (Qdrant 1.19, lib/storage/src/content_manager/{alias_mapping.rs,toc/collection_meta_ops.rs}):
  * create_alias needs an existing collection (404) and an alias name that is not a collection
    (409); creating an existing alias repoints it; delete of a missing alias is a no-op; renaming
    a missing alias is a 404 "Alias ... does not exists!";
  * a collection cannot be created under an alias's name (400);
  * deleting a collection drops its aliases; every endpoint taking a collection name accepts
    an alias (collection_exists too).
This node applies one request's actions all or nothing.
"""

import pytest
from qdrant_client import models

from compat_helpers import expect_error

VEC = models.VectorParams(size=2, distance=models.Distance.DOT)


def aliases_of(client, name=None):
    res = client.get_collection_aliases(name) if name else client.get_aliases()
    return sorted((a.alias_name, a.collection_name) for a in res.aliases)


def create_alias(collection, alias):
    return models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))


def delete_alias(alias):
    return models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))


def rename_alias(old, new):
    return models.RenameAliasOperation(rename_alias=models.RenameAlias(old_alias_name=old, new_alias_name=new))


@pytest.fixture
def two(client, collection_name):
    a, b = collection_name + "_a", collection_name + "_b"
    for name, x in ((a, 1.0), (b, 2.0)):
        client.create_collection(name, vectors_config=VEC)
        client.upsert(name, wait=True, points=[models.PointStruct(id=1, vector=[x, 0.0], payload={"from": name})])
    yield a, b
    for name in (a, b):
        client.delete_collection(name)
    for alias, _ in aliases_of(client):
        if alias.startswith(collection_name):
            client.update_collection_aliases(change_aliases_operations=[delete_alias(alias)])


def test_create_switch_rename_delete(client, collection_name, two):
    a, b = two
    live = collection_name + "_live"
    assert client.update_collection_aliases(change_aliases_operations=[create_alias(a, live)])
    assert (live, a) in aliases_of(client)
    assert aliases_of(client, a) == [(live, a)]
    assert aliases_of(client, b) == []
    # reads, writes, info and existence through the alias
    assert client.retrieve(live, ids=[1])[0].payload == {"from": a}
    client.upsert(live, wait=True, points=[models.PointStruct(id=2, vector=[0.0, 1.0])])
    assert client.count(a).count == 2
    assert client.get_collection(live).points_count == 2
    assert client.collection_exists(live)
    assert client.query_points(live, query=[1.0, 0.0], limit=1).points[0].id == 1

    # switch atomically: delete + create in one request
    client.update_collection_aliases(change_aliases_operations=[delete_alias(live), create_alias(b, live)])
    assert client.retrieve(live, ids=[1])[0].payload == {"from": b}
    assert aliases_of(client, a) == []

    renamed = collection_name + "_prod"
    client.update_collection_aliases(change_aliases_operations=[rename_alias(live, renamed)])
    assert aliases_of(client, b) == [(renamed, b)]
    assert not client.collection_exists(live)
    client.update_collection_aliases(change_aliases_operations=[delete_alias(renamed)])
    assert aliases_of(client, b) == []
    # deleting a missing alias is fine
    assert client.update_collection_aliases(change_aliases_operations=[delete_alias(renamed)])


def test_errors_leave_the_aliases_unchanged(client, collection_name, two):
    a, b = two
    x = collection_name + "_x"
    with expect_error(client, "not_found", "doesn't exist"):
        client.update_collection_aliases(change_aliases_operations=[create_alias(collection_name + "_none", x)])
    with expect_error(client, "already_exists", "already exists"):
        client.update_collection_aliases(change_aliases_operations=[create_alias(a, b)])
    with expect_error(client, "not_found", "does not exist"):
        client.update_collection_aliases(change_aliases_operations=[rename_alias(x, collection_name + "_y")])
    # all or nothing: the valid first action is not applied either
    with expect_error(client, "not_found"):
        client.update_collection_aliases(change_aliases_operations=[
            create_alias(a, x), create_alias(collection_name + "_none", collection_name + "_z")])
    assert aliases_of(client, a) == []
    with expect_error(client, "not_found"):
        client.get_collection_aliases(collection_name + "_none")

    # a collection cannot take an alias's name; deleting a collection drops its aliases
    client.update_collection_aliases(change_aliases_operations=[create_alias(a, x)])
    with expect_error(client, "invalid_argument", "Alias with the same name already exists"):
        client.create_collection(x, vectors_config=VEC)
    client.delete_collection(a)
    assert (x, a) not in aliases_of(client)
    assert not client.collection_exists(x)


def test_lookup_from_through_an_alias(client, collection_name, two):
    a, b = two
    alias = collection_name + "_lk"
    client.update_collection_aliases(change_aliases_operations=[create_alias(b, alias)])
    # b's point 1 is [2, 0]: as a query on a, point 1 ([1, 0]) scores 2 and is not excluded
    hits = client.query_points(a, query=1, limit=1, lookup_from=models.LookupLocation(collection=alias)).points
    assert [(h.id, h.score) for h in hits] == [(1, pytest.approx(2.0))]
    # an alias of the searched collection itself: the example is excluded
    client.update_collection_aliases(change_aliases_operations=[create_alias(a, alias + "2")])
    client.upsert(a, wait=True, points=[models.PointStruct(id=3, vector=[0.5, 0.5])])
    hits = client.query_points(a, query=1, limit=5, lookup_from=models.LookupLocation(collection=alias + "2")).points
    assert 1 not in {h.id for h in hits}


@pytest.mark.timeout(120)
def test_aliases_survive_a_restart(qdrant_factory):
    server = qdrant_factory(name="aliases")
    client = server.client("rest")
    client.create_collection("c", vectors_config=VEC)
    client.update_collection_aliases(change_aliases_operations=[create_alias("c", "c_alias")])
    server.restart(kill9=True)
    client = server.client("rest")
    assert aliases_of(client) == [("c_alias", "c")]
    assert client.collection_exists("c_alias")
