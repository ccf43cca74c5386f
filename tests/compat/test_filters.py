"""Every filter kind, checked against a Python reference evaluation of Qdrant's semantics on the
same payloads (exact id sets), on a collection WITHOUT payload indexes.

Semantics encoded in compat_helpers.eval_filter (Qdrant 1.19 lib/segment/src/payload_storage/
query_checker.rs + condition_checker.rs):
* must = all, should = at least one, must_not = none, min_should = at least min_count;
* field conditions see every value at the JSON path (`a.b`, `arr[].x`); an array value matches
  when any element matches; a missing field never matches match/range (`check_empty` = false),
  including `match: {except: [...]}` (null never matches `except` either);
* match value: strings, integers (JSON ints only) and bools compare by type;
* text match: every query token must be a token of the value (word tokenizer, lowercase), with or
  without a text index -- Qdrant >= 1.19.1 (qdrant/qdrant PR #10341 "tokenize unindexed text";
  1.19.0 did a raw substring test when unindexed);
* range on numbers; datetime range on RFC3339 strings compared as instants (offsets honoured);
* is_empty: missing, null or [] ; is_null: null, or an array containing null
  (tests/openapi/test_is_null_array_consistency.py);
* nested: some element of the array satisfies the whole inner filter.
"""

import pytest
from qdrant_client import models

from compat_helpers import expected_ids, normalize_id
from filter_cases import FILTERS, make_points


@pytest.fixture(scope="module")
def filter_collection(qdrant, transport):
    """One collection per transport, written and queried over that transport."""
    import uuid as _uuid
    name = f"compat_filters_{_uuid.uuid4().hex[:8]}"
    client = qdrant.client(transport)
    points = make_points()
    client.create_collection(name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[models.PointStruct(id=pid, vector=v, payload=p) for pid, v, p in points])
    yield client, name, [(pid, p) for pid, _, p in points]
    client.delete_collection(name)
    client.close()


def run_filter(client, name, flt_dict):
    flt = models.Filter.model_validate(flt_dict)
    pts, nxt = client.scroll(name, scroll_filter=flt, limit=1000, with_payload=False)
    assert nxt is None
    scroll_ids = {normalize_id(p.id) for p in pts}
    assert len(scroll_ids) == len(pts), "duplicate ids in scroll result"
    count = client.count(name, count_filter=flt, exact=True).count
    hits = client.query_points(name, query=[0.1, 0.2, 0.3, 0.4], query_filter=flt, limit=1000,
                               search_params=models.SearchParams(exact=True), with_payload=False).points
    query_ids = {normalize_id(h.id) for h in hits}
    return scroll_ids, count, query_ids


@pytest.mark.parametrize("case", sorted(FILTERS))
def test_filter_matches_reference(filter_collection, case):
    client, name, points = filter_collection
    want = expected_ids(points, FILTERS[case])
    scroll_ids, count, query_ids = run_filter(client, name, FILTERS[case])
    assert scroll_ids == want, f"scroll: missing {sorted(map(str, want - scroll_ids))}, extra {sorted(map(str, scroll_ids - want))}"
    assert count == len(want)
    assert query_ids == want


def test_reference_sets_are_not_trivial(filter_collection):
    """Guard for the suite itself: the data set makes every non-degenerate filter select a proper,
    non-empty subset, so passing means something."""
    _, _, points = filter_collection
    for case, flt in FILTERS.items():
        n = len(expected_ids(points, flt))
        if case == "no_match_at_all":
            assert n == 0, case
        else:
            assert 0 < n < len(points), (case, n)


def test_filter_on_delete_and_set_payload(client, collection_name):
    """Filters also select points for writes (delete / set_payload by filter)."""
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=i, vector=[1, i], payload={"n": i, "tags": ["x"] if i % 3 == 0 else ["y"]}) for i in range(1, 31)])
    client.set_payload(collection_name, payload={"hit": True}, wait=True, points=models.Filter(
        must=[models.FieldCondition(key="tags", match=models.MatchValue(value="x"))]))
    hit = client.count(collection_name, exact=True, count_filter=models.Filter(
        must=[models.FieldCondition(key="hit", match=models.MatchValue(value=True))])).count
    assert hit == 10
    client.delete(collection_name, wait=True, points_selector=models.FilterSelector(filter=models.Filter(
        must=[models.FieldCondition(key="n", range=models.Range(gt=20))])))
    assert sorted(p.id for p in client.scroll(collection_name, limit=100)[0]) == list(range(1, 21))


@pytest.mark.parametrize("case", ["match_any_keyword", "range_float", "nested_condition_must_not", "must_not_has_id"])
def test_filtered_scroll_pagination(filter_collection, case):
    """Paging a filtered scroll with next_page_offset yields exactly the matching ids, in id order
    (numeric ids first, then UUIDs), each once."""
    from compat_helpers import id_sort_key
    client, name, points = filter_collection
    want = sorted(expected_ids(points, FILTERS[case]), key=id_sort_key)
    flt = models.Filter.model_validate(FILTERS[case])
    seen, offset = [], None
    for _ in range(100):
        pts, offset = client.scroll(name, scroll_filter=flt, limit=7, offset=offset, with_payload=False)
        assert len(pts) <= 7
        seen.extend(normalize_id(p.id) for p in pts)
        if offset is None:
            break
    assert seen == want
