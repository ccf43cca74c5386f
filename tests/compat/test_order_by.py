"""`order_by` in scroll and in the query API, over REST and gRPC.

Facts (Qdrant 1.19, lib/collection/src/collection/point_ops.rs, lib/segment/src/data_types/order_by.rs):
the key needs a range index (integer, float, datetime), else 400 "No range index for `order_by`
key: ..."; points come ordered by value (asc by default), a point once per value it holds, from
`start_from` on (inclusive); each carries its `order_value`; scroll has no next page with
`order_by`, and an id `offset` is refused; in the query API every point scores 1.
"""

from collections import defaultdict
from datetime import datetime, timezone

import pytest
from qdrant_client import models

from compat_helpers import expect_error

N = 40


def payload(i):
    p = {"price": round(100.0 - i * 1.25, 2), "rank": i % 7, "ts": f"2025-01-{1 + i % 28:02d}T00:00:00Z", "n": i}
    if i % 10 == 0:
        p["rank"] = [i % 7, 50 + i]
    return p


@pytest.fixture
def coll(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1.0, float(i)], payload=payload(i)) for i in range(N)])
    for key, schema in (("rank", models.PayloadSchemaType.INTEGER), ("price", models.PayloadSchemaType.FLOAT),
                        ("ts", models.PayloadSchemaType.DATETIME)):
        client.create_payload_index(collection_name, key, field_schema=schema, wait=True)
    return collection_name


def entries(key, desc=False, start=None, keep=lambda i: True):
    out = []
    for i in range(N):
        if not keep(i):
            continue
        v = payload(i)[key]
        for x in sorted(set(v if isinstance(v, list) else [v])):
            if start is None or (x <= start if desc else x >= start):
                out.append((x, i))
    return sorted(out, key=lambda e: e[0], reverse=desc)


def check(points, want):
    """Same order values in order, and the same points for each value."""
    got = [(p.order_value, p.id) for p in points]
    assert [v for v, _ in got] == pytest.approx([v for v, _ in want])
    by_value = lambda es: {v: sorted(i for x, i in es if x == v) for v, _ in es}  # noqa: E731
    assert by_value(got) == by_value(want)


def test_scroll_order_by(client, coll):
    points, next_page = client.scroll(coll, order_by="rank", limit=15)
    assert next_page is None
    check(points, entries("rank")[:15])
    points, _ = client.scroll(coll, order_by=models.OrderBy(key="rank", direction=models.Direction.DESC), limit=100)
    check(points, entries("rank", desc=True))
    points, _ = client.scroll(coll, order_by=models.OrderBy(key="price", start_from=80.0), limit=100)
    check(points, entries("price", start=80.0))
    small = models.Filter(must=[models.FieldCondition(key="n", range=models.Range(lt=20))])
    points, _ = client.scroll(coll, order_by=models.OrderBy(key="price", direction="desc", start_from=90),
                              scroll_filter=small, limit=5, with_payload=True)
    check(points, entries("price", desc=True, start=90, keep=lambda i: i < 20)[:5])
    assert all(p.payload["n"] < 20 for p in points)


def test_datetime_order_by(client, coll):
    points, _ = client.scroll(coll, order_by=models.OrderBy(key="ts", direction="desc"), limit=10)
    micros = lambda s: int(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() * 1_000_000)  # noqa: E731
    want = sorted(((micros(payload(i)["ts"]), i) for i in range(N)), key=lambda e: e[0], reverse=True)[:10]
    check(points, want)


def test_query_order_by(client, coll):
    hits = client.query_points(coll, query=models.OrderByQuery(order_by="rank"), limit=12).points
    check(hits, entries("rank")[:12])
    assert all(h.score == 1.0 for h in hits)
    # over a prefetch's candidates
    pre = models.Prefetch(query=[0.0, 1.0], limit=10)  # ids 30..39 score highest
    hits = client.query_points(coll, prefetch=pre, query=models.OrderByQuery(
        order_by=models.OrderBy(key="price", direction="asc")), limit=3).points
    check(hits, entries("price", keep=lambda i: i >= 30)[:3])


def test_order_by_errors(client, coll):
    with expect_error(client, "invalid_argument", "No range index for `order_by` key: n"):
        client.scroll(coll, order_by="n")
    with expect_error(client, "invalid_argument", "Cannot use an `offset` when using `order_by`"):
        client.scroll(coll, order_by="rank", offset=3)
