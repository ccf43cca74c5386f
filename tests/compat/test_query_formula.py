"""Score boosting formulas (`query: {"formula": ..., "defaults": ...}`), over REST and gRPC.

Facts (Qdrant 1.19, docs "Search Relevance / Score Boosting" and
lib/segment/src/index/query_optimization/rescore_formula, lib/shard/src/query/formula.rs):
  * the formula re-scores the union of its prefetches' points, best (largest) first;
  * `$score` / `$score[i]` is the point's score in prefetch i, else `defaults["$score[i]"]`, else 0;
  * a payload variable is the key's single value, else its default, else an error
    ("Expected number value for <key> ... No value found in a payload nor defaults");
  * a condition is 1 or 0; mult stops at a zero factor; div 0/x = 0, x/0 = by_zero_default or an error;
  * decays: lin max(0, 1 - (1-m)/s |x-t|), exp e^(ln(m)/s |x-t|), gauss e^(ln(m)/s^2 (x-t)^2);
  * datetimes are seconds since the epoch; geo_distance is haversine meters (R = 6371008.8 m);
  * any non-finite value fails the request with "... produced a non-finite number".

Every expected score is computed here from the prefetch results and the payloads.
"""

import math
from datetime import datetime, timezone

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import expect_error

N = 30
RNG = np.random.default_rng(77)
VECS = RNG.normal(size=(N, 3)).round(3)
Q = [0.5, -0.3, 0.8]
ORIGIN = (52.52, 13.405)  # lat, lon


def payload(i):
    p = {"tag": "a" if i % 3 == 0 else "b",
         "loc": {"lat": 52.0 + i * 0.05, "lon": 13.0 + i * 0.03},
         "ts": f"2025-03-{1 + i % 28:02d}T12:00:00Z"}
    if i % 5 != 0:
        p["price"] = float(i) * 1.5
    return p


PAYLOADS = [payload(i) for i in range(N)]


@pytest.fixture
def coll(client, collection_name):
    client.create_collection(collection_name,
                             vectors_config={"d": models.VectorParams(size=3, distance=models.Distance.DOT)})
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector={"d": VECS[i].tolist()}, payload=PAYLOADS[i]) for i in range(N)])
    return collection_name


def prefetch(limit=N, flt=None):
    return models.Prefetch(query=Q, using="d", limit=limit, filter=flt, params=models.SearchParams(exact=True))


def dense_scores(ids=range(N)):
    return {i: float(np.float32(VECS[i] @ np.array(Q))) for i in ids}


def formula_query(client, coll, formula, defaults=None, prefetches=None, limit=N, **kw):
    return client.query_points(coll, prefetch=prefetches or [prefetch()],
                               query=models.FormulaQuery(formula=formula, defaults=defaults or {}),
                               limit=limit, **kw).points


def check(hits, expected, limit=N):
    """hits = the best `limit` of expected {id: score}, best first, scores matching."""
    want = sorted(expected.items(), key=lambda kv: -kv[1])[:limit]
    assert len(hits) == len(want)
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    for h in hits:
        assert h.score == pytest.approx(expected[h.id], rel=1e-5, abs=1e-5), h.id
    cut = min(scores)
    got = {h.id for h in hits}
    assert all(s <= cut + 1e-5 for i, s in expected.items() if i not in got)


def test_score_payload_and_condition(client, coll):
    f = models.SumExpression(sum=[
        "$score",
        models.MultExpression(mult=[0.5, "price"]),
        models.MultExpression(mult=[2.0, models.FieldCondition(key="tag", match=models.MatchValue(value="a"))]),
    ])
    hits = formula_query(client, coll, f, defaults={"price": 1.0})
    s = dense_scores()
    expected = {i: s[i] + 0.5 * PAYLOADS[i].get("price", 1.0) + (2.0 if PAYLOADS[i]["tag"] == "a" else 0.0)
                for i in range(N)}
    check(hits, expected)
    # limit and offset after re-scoring
    page = formula_query(client, coll, f, defaults={"price": 1.0}, limit=5, offset=3)
    assert [h.id for h in page] == [h.id for h in hits[3:8]]


def test_scores_of_several_prefetches_and_defaults(client, coll):
    small = models.Filter(must=[models.HasIdCondition(has_id=list(range(10)))])
    prefetches = [prefetch(), prefetch(flt=small)]
    f = models.SumExpression(sum=["$score[0]", models.MultExpression(mult=[10.0, "$score[1]"]), "$score[7]"])
    s = dense_scores()
    hits = formula_query(client, coll, f, prefetches=prefetches)
    check(hits, {i: s[i] + (10 * s[i] if i < 10 else 0.0) for i in range(N)})
    hits = formula_query(client, coll, f, prefetches=prefetches, defaults={"$score[1]": -1.0, "$score[7]": 0.25})
    check(hits, {i: s[i] + (10 * s[i] if i < 10 else -10.0) + 0.25 for i in range(N)})
    # only the union of the prefetches is scored
    hits = formula_query(client, coll, "$score", prefetches=[prefetch(limit=4)])
    assert len(hits) == 4


def test_arithmetic(client, coll):
    price = lambda i: PAYLOADS[i].get("price", 3.0)  # noqa: E731
    cases = [
        (models.NegExpression(neg="price"), lambda i: -price(i)),
        (models.AbsExpression(abs=models.NegExpression(neg="price")), price),
        (models.DivExpression(div=models.DivParams(left=1.0, right="price", by_zero_default=7.0)),
         lambda i: 1.0 / price(i) if price(i) else 7.0),
        (models.SqrtExpression(sqrt="price"), lambda i: math.sqrt(price(i))),
        (models.PowExpression(pow=models.PowParams(base="price", exponent=2.0)), lambda i: price(i) ** 2),
        (models.ExpExpression(exp=models.MultExpression(mult=[0.1, "price"])),
         lambda i: math.exp(float(np.float32(0.1)) * price(i))),
        (models.LnExpression(ln=models.SumExpression(sum=[1.0, "price"])), lambda i: math.log(1 + price(i))),
        (models.Log10Expression(log10=models.SumExpression(sum=[1.0, "price"])),
         lambda i: math.log10(1 + price(i))),
    ]
    for f, fn in cases:
        hits = formula_query(client, coll, f, defaults={"price": 3.0})
        check(hits, {i: fn(i) for i in range(N)})


def decay(kind, x, target, scale, midpoint):
    d = x - target
    if kind == "lin":
        return max(0.0, 1 - (1 - midpoint) / scale * abs(d))
    if kind == "exp":
        return math.exp(math.log(midpoint) / scale * abs(d))
    return math.exp(math.log(midpoint) / scale ** 2 * d * d)


def test_decays_datetime_and_geo(client, coll):
    for kind, model in (("lin", models.LinDecayExpression), ("exp", models.ExpDecayExpression),
                        ("gauss", models.GaussDecayExpression)):
        params = {f"{kind}_decay": models.DecayParamsExpression(x="price", target=20.0, scale=10.0, midpoint=0.3)}
        hits = formula_query(client, coll, model(**params), defaults={"price": 0.0})
        m = float(np.float32(0.3))
        check(hits, {i: decay(kind, PAYLOADS[i].get("price", 0.0), 20.0, 10.0, m) for i in range(N)})

    # recency: one day from the target halves the score
    target = "2025-03-15T00:00:00Z"
    f = models.ExpDecayExpression(exp_decay=models.DecayParamsExpression(
        x=models.DatetimeKeyExpression(datetime_key="ts"), target=models.DatetimeExpression(datetime=target),
        scale=86400.0, midpoint=0.5))
    hits = formula_query(client, coll, f)
    epoch = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()  # noqa: E731
    check(hits, {i: decay("exp", epoch(PAYLOADS[i]["ts"]), epoch(target), 86400.0, 0.5) for i in range(N)})

    f = models.GeoDistance(geo_distance=models.GeoDistanceParams(
        origin=models.GeoPoint(lat=ORIGIN[0], lon=ORIGIN[1]), to="loc"))
    hits = formula_query(client, coll, models.NegExpression(neg=f))

    def haversine(lat1, lon1, lat2, lon2):
        p1, p2 = math.radians(lat1), math.radians(lat2)
        a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
        return 2 * 6371008.8 * math.asin(math.sqrt(a))

    check(hits, {i: -haversine(*ORIGIN, PAYLOADS[i]["loc"]["lat"], PAYLOADS[i]["loc"]["lon"]) for i in range(N)})


def test_formula_errors(client, coll):
    with expect_error(client, "invalid_argument", "Expected number value for price"):
        formula_query(client, coll, "price")
    with expect_error(client, "invalid_argument", "produced a non-finite number"):
        formula_query(client, coll, models.DivExpression(div=models.DivParams(left=1.0, right=0.0)))
    with expect_error(client, "invalid_argument", "cannot apply Formula without prefetches"):
        client.query_points(coll, query=models.FormulaQuery(formula="$score", defaults={}))
    with expect_error(client, "invalid_argument", "Invalid reserved word: $foo"):
        formula_query(client, coll, "$foo")
    with expect_error(client, "invalid_argument", "Decay midpoint should be in the range (0.0, 1.0), got 1."):
        formula_query(client, coll, models.ExpDecayExpression(
            exp_decay=models.DecayParamsExpression(x="price", midpoint=1.0)))
