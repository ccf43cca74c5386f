"""Payload indexes: create/delete for every scalar schema type, reflection in
`CollectionInfo.payload_schema` ({"<field>": {"data_type": ..., "points": n}}), and filters giving
exactly the same results with the indexes as without (and as the reference).

Facts (Qdrant 1.19): PUT /collections/{c}/index {"field_name", "field_schema"} and
DELETE /collections/{c}/index/{field} return UpdateResult; schema types keyword, integer, float,
bool, datetime, uuid, text (lib/api/src/rest/schema.rs PayloadSchemaType); `points` counts the points
that have at least one value of the indexed type (map/numeric index `count_indexed_points`);
MatchText means "all query tokens occur in the value", tokenised with the default word tokenizer and
lowercased, with a text index and (since 1.19.1, PR #10341) without one.
"""

import uuid as _uuid

import pytest
from qdrant_client import models

from compat_helpers import assert_error, expect_error, expected_ids, get_values, normalize_id, ok_result, rest
from filter_cases import FILTERS, INDEXED_FIELDS, make_points

SCHEMA = {
    "keyword": models.PayloadSchemaType.KEYWORD,
    "integer": models.PayloadSchemaType.INTEGER,
    "float": models.PayloadSchemaType.FLOAT,
    "bool": models.PayloadSchemaType.BOOL,
    "datetime": models.PayloadSchemaType.DATETIME,
    "uuid": models.PayloadSchemaType.UUID,
    "text": models.PayloadSchemaType.TEXT,
}


def _flat(values):
    out = []
    for v in values:
        out.extend(v if isinstance(v, list) else [v])
    return out


def _typed(kind, v):
    if kind in ("keyword", "text"):
        return isinstance(v, str)
    if kind == "integer":
        return isinstance(v, int) and not isinstance(v, bool)
    if kind == "float":
        return isinstance(v, (int, float)) and not isinstance(v, bool)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "datetime":
        return isinstance(v, str)      # all strings in the datetime field are RFC3339
    if kind == "uuid":
        return isinstance(v, str)
    raise ValueError(kind)


def expected_index_points(points, field, kind):
    return sum(1 for _, p in points if any(_typed(kind, v) for v in _flat(get_values(p, field))))


@pytest.fixture(scope="module")
def indexed_collection(qdrant, transport):
    """Same data as test_filters; 60 points written before the indexes exist, 20 after; one
    collection per transport, indexed and queried over that transport."""
    name = f"compat_indexed_{_uuid.uuid4().hex[:8]}"
    client = qdrant.client(transport)
    points = make_points()
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    structs = [models.PointStruct(id=pid, vector=v, payload=p) for pid, v, p in points]
    client.upsert(name, wait=True, points=structs[:60])
    for field, kind in INDEXED_FIELDS.items():
        res = client.create_payload_index(name, field_name=field, field_schema=SCHEMA[kind], wait=True)
        assert res.status == models.UpdateStatus.COMPLETED
    client.upsert(name, wait=True, points=structs[60:])
    yield client, name, [(pid, p) for pid, _, p in points]
    client.delete_collection(name)
    client.close()


def test_payload_schema_reflects_all_indexes(indexed_collection):
    client, name, points = indexed_collection
    schema = client.get_collection(name).payload_schema
    assert set(schema) == set(INDEXED_FIELDS)
    for field, kind in INDEXED_FIELDS.items():
        info = schema[field]
        assert info.data_type == SCHEMA[kind], field
        assert info.points == expected_index_points(points, field, kind), field


@pytest.mark.parametrize("case", sorted(FILTERS))
def test_indexed_filter_matches_reference(indexed_collection, case):
    client, name, points = indexed_collection
    want = expected_ids(points, FILTERS[case])
    flt = models.Filter.model_validate(FILTERS[case])
    pts, _ = client.scroll(name, scroll_filter=flt, limit=1000, with_payload=False)
    got = {normalize_id(p.id) for p in pts}
    assert got == want, f"missing {sorted(map(str, want - got))}, extra {sorted(map(str, got - want))}"
    assert client.count(name, count_filter=flt, exact=True).count == len(want)
    hits = client.query_points(name, query=[0.4, 0.3, 0.2, 0.1], query_filter=flt, limit=1000,
                               search_params=models.SearchParams(exact=True), with_payload=False).points
    assert {normalize_id(h.id) for h in hits} == want


@pytest.mark.parametrize("kind", sorted(SCHEMA))
def test_create_and_delete_each_index_type(qdrant, client, collection_name, kind):
    samples = {
        "keyword": ["a", "b", ["a", "c"]],
        "integer": [1, 2, [3, 4]],
        "float": [1.5, 2.5, [0.5, 9.25]],
        "bool": [True, False, [True]],
        "datetime": ["2024-01-01T00:00:00Z", "2024-02-01T10:00:00+01:00", ["2023-05-05T05:05:05Z"]],
        "uuid": [str(_uuid.UUID(int=k + 1)) for k in range(2)] + [[str(_uuid.UUID(int=77))]],
        "text": ["hello world", "foo bar", ["lorem ipsum"]],
    }[kind]
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    # index on an empty collection: listed with 0 points
    res = client.create_payload_index(collection_name, field_name="f", field_schema=SCHEMA[kind], wait=True)
    assert res.status == models.UpdateStatus.COMPLETED
    info = client.get_collection(collection_name).payload_schema["f"]
    assert info.data_type == SCHEMA[kind]
    assert info.points == 0
    # points written afterwards are counted; points without the field are not
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=i + 1, vector=[1, i], payload={"f": v})
                                                      for i, v in enumerate(samples)] +
                  [models.PointStruct(id=100, vector=[0, 1], payload={"other": 1})])
    raw = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))["payload_schema"]
    assert raw["f"]["data_type"] == kind
    assert raw["f"]["points"] == 3
    # delete
    res = client.delete_payload_index(collection_name, field_name="f", wait=True)
    assert res.status == models.UpdateStatus.COMPLETED
    assert client.get_collection(collection_name).payload_schema == {}


def test_create_index_raw_and_params_form(qdrant, rest_client, collection_name):
    # REST only: raw JSON bodies and responses (test_create_index_params_form covers the client).
    client = rest_client
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    r = ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}/index?wait=true",
                       {"field_name": "city", "field_schema": "keyword"}))
    assert r["status"] == "completed"
    r = ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}/index?wait=true",
                       {"field_name": "body", "field_schema": {"type": "text", "tokenizer": "word",
                                                               "lowercase": True, "min_token_len": 2}}))
    assert r["status"] == "completed"
    r = ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}/index?wait=true",
                       {"field_name": "n", "field_schema": {"type": "integer", "lookup": True, "range": True}}))
    assert r["status"] == "completed"
    schema = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))["payload_schema"]
    assert schema["city"]["data_type"] == "keyword"
    assert schema["body"]["data_type"] == "text"
    assert schema["n"]["data_type"] == "integer"
    r = ok_result(rest(qdrant, "DELETE", f"/collections/{collection_name}/index/city?wait=true"))
    assert r["status"] == "completed"
    schema = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))["payload_schema"]
    assert set(schema) == {"body", "n"}


def test_create_index_params_form(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector=[1, 0], payload={"body": "Hello big World", "n": 5}),
        models.PointStruct(id=2, vector=[0, 1], payload={"body": "small world", "n": 50})])
    res = client.create_payload_index(collection_name, field_name="body", wait=True, field_schema=models.TextIndexParams(
        type=models.TextIndexType.TEXT, tokenizer=models.TokenizerType.WORD, lowercase=True, min_token_len=2))
    assert res.status == models.UpdateStatus.COMPLETED
    res = client.create_payload_index(collection_name, field_name="n", wait=True, field_schema=models.IntegerIndexParams(
        type=models.IntegerIndexType.INTEGER, lookup=True, range=True))
    assert res.status == models.UpdateStatus.COMPLETED
    schema = client.get_collection(collection_name).payload_schema
    assert schema["body"].data_type == models.PayloadSchemaType.TEXT
    assert schema["n"].data_type == models.PayloadSchemaType.INTEGER
    assert (schema["body"].points, schema["n"].points) == (2, 2)
    flt = models.Filter(must=[models.FieldCondition(key="body", match=models.MatchText(text="WORLD hello")),
                              models.FieldCondition(key="n", range=models.Range(lt=10))])
    assert [p.id for p in client.scroll(collection_name, scroll_filter=flt)[0]] == [1]


def test_index_on_missing_collection_is_404(qdrant):
    # REST only: the raw status (test_index_on_missing_collection covers the client).
    r = rest(qdrant, "PUT", "/collections/no_such_coll_idx/index?wait=true", {"field_name": "a", "field_schema": "keyword"})
    assert_error(r, 404, startswith="Not found")


def test_index_on_missing_collection(client):
    with expect_error(client, "not_found", contains="Collection `no_such_coll_idx` doesn't exist!"):
        client.create_payload_index("no_such_coll_idx", field_name="a",
                                    field_schema=models.PayloadSchemaType.KEYWORD, wait=True)


def test_text_match_same_with_and_without_text_index(client, collection_name):
    """MatchText = all query tokens present (word tokenizer, lowercase), not a phrase and not a
    substring; unindexed fields behave like a default text index since Qdrant 1.19.1 (PR #10341)."""
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    docs = {1: "the quick brown fox", 2: "brown quick", 3: "Quickly done", 4: "a fox, brown", 5: "QUICK!"}
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=i, vector=[1, i], payload={"t": t})
                                                      for i, t in docs.items()])

    def ids(text):
        flt = models.Filter(must=[models.FieldCondition(key="t", match=models.MatchText(text=text))])
        return sorted(p.id for p in client.scroll(collection_name, scroll_filter=flt, limit=10)[0])

    def check():
        assert ids("quick") == [1, 2, 5]         # token "quick"; "quickly" is another token
        assert ids("brown fox") == [1, 4]        # both tokens, any order/position
        assert ids("fox brown") == [1, 4]
        assert ids("QUICK") == [1, 2, 5]         # lowercased on both sides
        assert ids("uick") == []                 # no partial tokens
        assert ids("quick fox") == [1]

    check()
    client.create_payload_index(collection_name, field_name="t", field_schema=models.PayloadSchemaType.TEXT, wait=True)
    check()
