"""Facet counts (`POST /collections/{c}/facet`), over REST and gRPC.

Facts (Qdrant 1.19, docs "Payload / Facet counts"): counts of the values of an indexed key
(keyword, integer, bool, uuid) over the points matching `filter`, a point counted once per distinct
value; most frequent first; `limit` defaults to 10; a key without such an index is refused.
"""

from collections import Counter

import pytest
from qdrant_client import models

from compat_helpers import expect_error

N = 80


def payload(i):
    p = {"color": ["red", "green", "blue", "black"][i % 4] if i % 9 else ["red", "red", "white"],
         "size": i % 5, "big": i % 3 == 0, "n": i}
    if i % 13 == 0:
        del p["color"]
    return p


def expected(key, keep=lambda i: True):
    c = Counter()
    for i in range(N):
        if not keep(i):
            continue
        v = payload(i).get(key)
        for x in set(v if isinstance(v, list) else ([] if v is None else [v])):
            c[x] += 1
    return c


@pytest.fixture
def coll(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1.0, float(i)], payload=payload(i)) for i in range(N)])
    for key, schema in (("color", models.PayloadSchemaType.KEYWORD), ("size", models.PayloadSchemaType.INTEGER),
                        ("big", models.PayloadSchemaType.BOOL)):
        client.create_payload_index(collection_name, key, field_schema=schema, wait=True)
    return collection_name


def as_counts(res):
    return [(h.value, h.count) for h in res.hits]


def test_facet_counts(client, coll):
    for key in ("color", "size", "big"):
        res = client.facet(coll, key, limit=10, exact=True)
        want = expected(key)
        got = as_counts(res)
        assert dict(got) == dict(want), key
        assert [c for _, c in got] == sorted((c for _, c in got), reverse=True)

    res = client.facet(coll, "color", limit=2)
    assert [c for _, c in as_counts(res)] == sorted(expected("color").values(), reverse=True)[:2]

    small = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=30))])
    res = client.facet(coll, "size", facet_filter=small)
    assert dict(as_counts(res)) == dict(expected("size", lambda i: i < 30))


def test_facet_errors(client, coll):
    with expect_error(client, "invalid_argument", "Index required"):
        client.facet(coll, "n")
