"""Strict mode (`strict_mode_config` of a collection): every limit, its exact error, and that only
`enabled: true` turns the checks on. Mostly raw REST (status codes, exact messages, Retry-After);
the client tests run over REST and gRPC. Full fact sheet: docs/strict-mode-facts.md.

Facts (Qdrant 1.19.0; `verif/` = lib/collection/src/operations/verification/):
* Checks run only when `enabled == true` (lib/storage/src/content_manager/collection_verification.rs
  `.filter(|c| c.enabled.unwrap_or_default())`); `unindexed_filtering_*` and `search_allow_exact` only
  bite on an explicit `false`. PATCH merges field-wise, `null` keeps the old value
  (operations/config_diff.rs); GET omits unset fields.
* Strict violations: `CollectionError::strict_mode(e, h)` = "{e}. Help: {h}" -> StorageError::BadRequest
  -> REST 400 "Bad request: {e}. Help: {h}", gRPC INVALID_ARGUMENT (content_manager/errors.rs,
  conversions.rs). Limits: `Limit exceeded {v} > {max} for "{name}". Help: Reduce the "{name}" parameter
  to or below {max}.` (verif/mod.rs check_limit_opt), names "limit", "timeout", "hnsw_ef",
  "oversampling", "upsert limit", "update limit", "search batch size".
* Query limit per request (verif/*.rs): limit; groups limit*group_size (query groups defaults 10*3);
  REST matrix sample*limit (only the given ones); scroll/facet only when `limit` is given; prefetches too.
* `search_allow_exact: false`: "Exact search disabled!. Help: Set exact=false." for params.exact,
  count (exact defaults to true!) and facet exact; plus the full-scan guard of the query API when
  hnsw m = 0 (verif/query.rs check_fullscan; tenant filters + payload_m > 0 pass).
* Filter limits (verif/mod.rs check_filter_limits, lib/segment/src/types.rs): condition count sums
  must/should/must_not/min_should, sub-filters and `nested` count their inner conditions; condition
  size = max over conditions of len(any) / len(except) / len(has_id), recursive.
* Unindexed filters (lib/collection/src/problems/unindexed_field.rs): "Index required but not found for
  "{key}" of one of the following types: [{sorted schemas}]. Help: Create an index for this key or use
  a different filter." Read filters: search-like reads, scroll, count, facet, matrix; write filters:
  delete/set/overwrite/delete/clear payload/delete vectors by filter (not update_filter).
* group_by (verif/mod.rs check_grouping_field), formula (verif/query.rs), payload index count
  (src/common/update.rs), collection size limits (verif/update.rs, checked before the write, cached
  estimates refreshed every 32 checks), multivector / sparse limits (verif/update.rs, no "Help").
* Rate limiters (lib/common/common/src/rate_limiting.rs): token bucket per shard, capacity = limit per
  minute, starts full, refills limit/60 per second; cost > capacity -> 429 "... rate limit exceeded,
  request larger than rate limiter capacity, please try to split your request" (no Retry-After);
  otherwise 429 "Rate limiting exceeded: Read rate limit exceeded: Operation requires {cost} tokens but
  only {t:.1} were available. Retry after {s}s" + Retry-After (gRPC RESOURCE_EXHAUSTED + retry-after).
  Read cost: dense query 1, multivector = vectors, + filter conditions; scroll/count 1 + conditions;
  retrieve = ids. Write cost: max(1, points). Each PATCH of the strict config refills the buckets.
"""

import re
import secrets
import uuid as _uuid

import grpc
import pytest
from qdrant_client import grpc as qgrpc
from qdrant_client import models
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import UnexpectedResponse

from compat_helpers import assert_error, expect_error, ok_result, rest, transport_of

V = [0.2, 0.1, 0.9, 0.7]
CITIES = ["Berlin", "London", "Paris"]
UUID_S = "3f1c2a9e-8b7d-4c6e-9f0a-1b2c3d4e5f60"
ALL_TYPES = ("bool, datetime, float, geo, integer, keyword, keyword (with prefix: true), text, "
             "text (with phrase_matching: true), uuid")
FULL_SCAN_GLOBAL = ("Request is forbidden{label} because global vector indexing is disabled (hnsw_config.m = 0). "
                    "Help: Use tenant-specific filter, enable global vector indexing or enable strict mode "
                    "`search_allow_exact` option")
FULL_SCAN_PAYLOAD = ("Request is forbidden{label} because vector indexing is disabled (hnsw_config.m = 0 and "
                     "hnsw_config.payload_m = 0). Help: Enable vector indexing, use a prefetch query with indexed "
                     "vectors or enable strict mode `search_allow_exact` option")
EXACT_DISABLED = "Exact search disabled!. Help: Set exact=false."



# Parts of strict mode this node does not enforce yet. The tests stay as the specification and are
# strict xfails: each must fail today, and turns into a failure (XPASS) once implemented, so its
# entry is removed then.
NOT_YET: dict = {}


@pytest.fixture(autouse=True)
def _not_yet(request):
    reason = NOT_YET.get(request.node.name)
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------

def _vec(i):
    return [1.0, (i % 7) / 7.0, ((i * 3) % 11) / 11.0, 0.5]


def _payload(i):
    return {"city": CITIES[i % 3], "price": i, "docId": i % 4, "flag": i % 2 == 0, "t": "some text here",
            "arr": [{"a": i}], "tenant": f"t{i % 2}"}


def _point(i, named=None):
    vector = _vec(i) if named is None else {named: _vec(i)}
    return {"id": i, "vector": vector, "payload": _payload(i)}


def _upsert(server, name, ids, named=None, params=None):
    return rest(server, "PUT", f"/collections/{name}/points", {"points": [_point(i, named) for i in ids]},
                params={"wait": "true", **(params or {})})


def _create(server, name, strict=None, vectors=None, extra=None):
    body = {"vectors": vectors if vectors is not None else {"size": 4, "distance": "Dot"}}
    if strict is not None:
        body["strict_mode_config"] = strict
    body.update(extra or {})
    assert ok_result(rest(server, "PUT", f"/collections/{name}", body)) is True


def _strict(server, name, cfg):
    assert ok_result(rest(server, "PATCH", f"/collections/{name}", {"strict_mode_config": cfg})) is True


def _setup(server, name, strict=None, n=10, named=None, vectors=None, extra=None):
    """Collection with points 1..n (payload _payload), then strict mode applied by PATCH."""
    _create(server, name, vectors=vectors, extra=extra)
    if n:
        ok_result(_upsert(server, name, range(1, n + 1), named))
    if strict is not None:
        _strict(server, name, strict)


def _index(server, name, field, schema):
    r = rest(server, "PUT", f"/collections/{name}/index", {"field_name": field, "field_schema": schema},
             params={"wait": "true"})
    return ok_result(r)


def _strict_cfg(server, name):
    return ok_result(rest(server, "GET", f"/collections/{name}"))["config"].get("strict_mode_config")


def _c(path, name):
    return f"/collections/{name}{path}"


def _limit_msg(param, value, limit):
    return f'Limit exceeded {value} > {limit} for "{param}". Help: Reduce the "{param}" parameter to or below {limit}.'


def _unindexed_msg(key, types):
    return (f'Index required but not found for "{key}" of one of the following types: [{types}]. '
            f"Help: Create an index for this key or use a different filter.")


def assert_400_exact(resp, text):
    """A strict-mode / size-limit error: HTTP 400 with exactly "Bad request: <text>"."""
    msg = assert_error(resp, 400)
    assert msg == "Bad request: " + text, f"\n got: {msg!r}\nwant: {'Bad request: ' + text!r}"


def assert_400(resp, contains):
    return assert_error(resp, 400, startswith="Bad request: ", contains=contains)


def assert_429(resp, contains, retry_after=True):
    msg = assert_error(resp, 429, startswith="Rate limiting exceeded: ", contains=contains)
    if retry_after:
        assert "Retry-After" in resp.headers, dict(resp.headers)
        secs = int(resp.headers["Retry-After"])
        m = re.search(r"Retry after (\d+)s$", msg)
        assert m, msg
        assert int(m.group(1)) == secs, (msg, secs)
        return msg, secs
    assert "Retry-After" not in resp.headers, dict(resp.headers)
    return msg, None


def _query(server, name, body=None, params=None):
    return rest(server, "POST", _c("/points/query", name), body or {"query": V, "limit": 3}, params=params)


def _scroll(server, name, flt, limit=None):
    body = {"filter": flt}
    if limit is not None:
        body["limit"] = limit
    return rest(server, "POST", _c("/points/scroll", name), body)


def _cond(i, key="price"):
    return {"key": key, "match": {"value": i}}


def _temp_collection():
    return f"compat_sm_{_uuid.uuid4().hex[:10]}"


def _drop(server, name):
    try:
        rest(server, "DELETE", f"/collections/{name}")
    except Exception:
        pass


# --------------------------------------------------------------------------------------------
# config object
# --------------------------------------------------------------------------------------------

def test_config_roundtrip_and_patch_merge(qdrant, collection_name):
    _create(qdrant, collection_name, strict={"enabled": True, "max_query_limit": 3,
                                             "unindexed_filtering_retrieve": False,
                                             "search_max_oversampling": 1.5})
    assert _strict_cfg(qdrant, collection_name) == {"enabled": True, "max_query_limit": 3,
                                                    "unindexed_filtering_retrieve": False,
                                                    "search_max_oversampling": 1.5}
    # field-wise merge
    _strict(qdrant, collection_name, {"max_query_limit": 5, "read_rate_limit": 7})
    assert _strict_cfg(qdrant, collection_name) == {"enabled": True, "max_query_limit": 5,
                                                    "unindexed_filtering_retrieve": False,
                                                    "search_max_oversampling": 1.5, "read_rate_limit": 7}
    # null keeps the old value (limits can't be unset by PATCH)
    _strict(qdrant, collection_name, {"read_rate_limit": None, "enabled": False})
    cfg = _strict_cfg(qdrant, collection_name)
    assert cfg["enabled"] is False
    assert cfg["read_rate_limit"] == 7
    assert cfg["max_query_limit"] == 5
    # map-valued sub-configs are replaced as a whole
    _strict(qdrant, collection_name, {"multivector_config": {"a": {"max_vectors": 2}}})
    _strict(qdrant, collection_name, {"multivector_config": {"b": {"max_vectors": 3}}})
    assert _strict_cfg(qdrant, collection_name)["multivector_config"] == {"b": {"max_vectors": 3}}


def test_config_absent_without_strict_mode(qdrant, collection_name):
    _create(qdrant, collection_name)
    # Qdrant's default config has no `storage.collection.strict_mode`: nothing stored, field omitted
    assert _strict_cfg(qdrant, collection_name) in (None, {"enabled": False})


def test_config_validation(qdrant, collection_name):
    r = rest(qdrant, "PUT", f"/collections/{collection_name}",
             {"vectors": {"size": 4, "distance": "Dot"}, "strict_mode_config": {"enabled": True, "max_query_limit": 0}})
    assert_error(r, 422, startswith="Validation error in JSON body", contains="max_query_limit")
    assert rest(qdrant, "GET", f"/collections/{collection_name}").status_code == 404
    _create(qdrant, collection_name, strict={"enabled": True, "max_query_limit": 4})
    for field in ("max_query_limit", "max_timeout", "read_rate_limit", "write_rate_limit", "max_points_count"):
        r = rest(qdrant, "PATCH", f"/collections/{collection_name}", {"strict_mode_config": {field: 0}})
        assert_error(r, 422, startswith="Validation error in JSON body", contains=field)
    assert _strict_cfg(qdrant, collection_name) == {"enabled": True, "max_query_limit": 4}
    # max_payload_index_count has min 0
    _strict(qdrant, collection_name, {"max_payload_index_count": 0})
    assert _strict_cfg(qdrant, collection_name)["max_payload_index_count"] == 0


def test_config_client(client, collection_name):
    client.create_collection(
        collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
        strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=7, unindexed_filtering_retrieve=False,
                                                   upsert_max_batchsize=50, search_max_hnsw_ef=64,
                                                   read_rate_limit=1000))
    cfg = client.get_collection(collection_name).config.strict_mode_config
    assert cfg.enabled is True
    assert cfg.max_query_limit == 7
    assert cfg.unindexed_filtering_retrieve is False
    assert cfg.upsert_max_batchsize == 50
    assert cfg.search_max_hnsw_ef == 64
    assert cfg.read_rate_limit == 1000
    assert cfg.max_timeout is None
    client.update_collection(collection_name, strict_mode_config=models.StrictModeConfig(max_query_limit=9))
    cfg = client.get_collection(collection_name).config.strict_mode_config
    assert (cfg.enabled, cfg.max_query_limit, cfg.upsert_max_batchsize, cfg.unindexed_filtering_retrieve) == \
        (True, 9, 50, False)


# --------------------------------------------------------------------------------------------
# enabled
# --------------------------------------------------------------------------------------------

def test_checks_need_enabled_true(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"max_query_limit": 1, "unindexed_filtering_retrieve": False})
    body = {"query": V, "limit": 5, "filter": {"must": [_cond(3)]}}
    ok_result(_query(qdrant, collection_name, body))                      # enabled unset -> off
    _strict(qdrant, collection_name, {"enabled": False})
    ok_result(_query(qdrant, collection_name, body))                      # enabled false -> off
    _strict(qdrant, collection_name, {"enabled": True})                   # limits kept by the merge
    assert_400_exact(_query(qdrant, collection_name, body), _limit_msg("limit", 5, 1))
    _strict(qdrant, collection_name, {"enabled": False})
    ok_result(_query(qdrant, collection_name, body))


# --------------------------------------------------------------------------------------------
# max_query_limit
# --------------------------------------------------------------------------------------------

_DISC = {"target": 1, "context": [{"positive": 2, "negative": 3}]}
LIMIT_CASES = [
    # id, path, ok body, bad body, checked value in the bad body (max_query_limit = 15)
    ("query", "/points/query", {"query": V, "limit": 15}, {"query": V, "limit": 16}, 16),
    ("query_prefetch", "/points/query",
     {"prefetch": {"query": V, "limit": 15}, "query": {"fusion": "rrf"}, "limit": 5},
     {"prefetch": [{"query": V, "limit": 3}, {"query": V, "limit": 20}], "query": {"fusion": "rrf"}, "limit": 5}, 20),
    ("query_nested_prefetch", "/points/query",
     {"prefetch": {"prefetch": {"query": V, "limit": 15}, "query": V, "limit": 10}, "query": V, "limit": 5},
     {"prefetch": {"prefetch": {"query": V, "limit": 40}, "query": V, "limit": 10}, "query": V, "limit": 5}, 40),
    ("query_batch", "/points/query/batch", {"searches": [{"query": V, "limit": 15}, {"query": V, "limit": 2}]},
     {"searches": [{"query": V, "limit": 3}, {"query": V, "limit": 16}]}, 16),
    ("query_groups", "/points/query/groups", {"query": V, "group_by": "city", "limit": 5, "group_size": 3},
     {"query": V, "group_by": "city", "limit": 4, "group_size": 4}, 16),
    ("query_groups_defaults", "/points/query/groups", {"query": V, "group_by": "city", "limit": 5},
     {"query": V, "group_by": "city"}, 30),
    ("search", "/points/search", {"vector": V, "limit": 15}, {"vector": V, "limit": 16}, 16),
    ("search_batch", "/points/search/batch", {"searches": [{"vector": V, "limit": 15}]},
     {"searches": [{"vector": V, "limit": 2}, {"vector": V, "limit": 16}]}, 16),
    ("search_groups", "/points/search/groups", {"vector": V, "group_by": "city", "limit": 5, "group_size": 3},
     {"vector": V, "group_by": "city", "limit": 4, "group_size": 4}, 16),
    ("recommend", "/points/recommend", {"positive": [1], "limit": 15}, {"positive": [1], "limit": 16}, 16),
    ("recommend_batch", "/points/recommend/batch", {"searches": [{"positive": [1], "limit": 15}]},
     {"searches": [{"positive": [1], "limit": 16}]}, 16),
    ("recommend_groups", "/points/recommend/groups", {"positive": [1], "group_by": "city", "limit": 5, "group_size": 3},
     {"positive": [1], "group_by": "city", "limit": 4, "group_size": 4}, 16),
    ("discover", "/points/discover", {**_DISC, "limit": 15}, {**_DISC, "limit": 16}, 16),
    ("discover_batch", "/points/discover/batch", {"searches": [{**_DISC, "limit": 15}]},
     {"searches": [{**_DISC, "limit": 16}]}, 16),
    ("scroll", "/points/scroll", {"limit": 15}, {"limit": 16}, 16),
    ("facet", "/facet", {"key": "city", "limit": 15}, {"key": "city", "limit": 16}, 16),
    ("matrix_pairs", "/points/search/matrix/pairs", {"sample": 5, "limit": 3}, {"sample": 8, "limit": 2}, 16),
    ("matrix_offsets", "/points/search/matrix/offsets", {"sample": 5, "limit": 3}, {"sample": 4, "limit": 4}, 16),
]


@pytest.fixture(scope="module")
def limit_coll(qdrant):
    name = _temp_collection()
    _setup(qdrant, name, n=12)
    _index(qdrant, name, "city", "keyword")
    _strict(qdrant, name, {"enabled": True, "max_query_limit": 15})
    yield name
    _drop(qdrant, name)


@pytest.mark.parametrize("case", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_max_query_limit(qdrant, limit_coll, case):
    _, path, ok_body, bad_body, value = case
    ok_result(rest(qdrant, "POST", _c(path, limit_coll), ok_body))
    assert_400_exact(rest(qdrant, "POST", _c(path, limit_coll), bad_body), _limit_msg("limit", value, 15))


def test_max_query_limit_unchecked_defaults(qdrant, collection_name):
    """Only explicitly given limits are checked for scroll, facet and REST matrix (Option fields);
    count and retrieve have no limit."""
    _setup(qdrant, collection_name, n=12)
    _index(qdrant, collection_name, "city", "keyword")
    _strict(qdrant, collection_name, {"enabled": True, "max_query_limit": 5})
    res = ok_result(rest(qdrant, "POST", _c("/points/scroll", collection_name), {}))
    assert len(res["points"]) == 10                      # default limit 10 > 5, not checked
    ok_result(rest(qdrant, "POST", _c("/facet", collection_name), {"key": "city"}))
    # only `sample` given: the checked value is 5 (the default limit 3 is not multiplied in)
    ok_result(rest(qdrant, "POST", _c("/points/search/matrix/pairs", collection_name), {"sample": 5}))
    assert_400_exact(rest(qdrant, "POST", _c("/points/search/matrix/pairs", collection_name), {"sample": 6}),
                     _limit_msg("limit", 6, 5))
    assert ok_result(rest(qdrant, "POST", _c("/points/count", collection_name), {}))["count"] == 12
    assert len(ok_result(rest(qdrant, "POST", _c("/points", collection_name), {"ids": list(range(1, 13))}))) == 12
    # offset is not added to the limit
    ok_result(_query(qdrant, collection_name, {"query": V, "limit": 5, "offset": 5}))


def test_max_query_limit_client(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, max_query_limit=3))
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=_vec(i), payload=_payload(i)) for i in range(1, 7)])
    assert len(client.query_points(collection_name, query=V, limit=3).points) == 3
    with expect_error(client, "invalid_argument", contains=_limit_msg("limit", 5, 3)) as info:
        client.query_points(collection_name, query=V, limit=5)
    msg = info.value.details() if isinstance(info.value, grpc.RpcError) else info.value.content.decode()
    assert "Bad request: Limit exceeded 5 > 3" in msg
    with expect_error(client, "invalid_argument", contains=_limit_msg("limit", 4, 3)):
        client.scroll(collection_name, limit=4)


# --------------------------------------------------------------------------------------------
# max_timeout
# --------------------------------------------------------------------------------------------

def test_max_timeout(qdrant, collection_name):
    _setup(qdrant, collection_name, n=5, strict={"enabled": True, "max_timeout": 2})
    name = collection_name
    ok_result(_query(qdrant, name, params={"timeout": 2}))
    ok_result(_query(qdrant, name))                       # no timeout: nothing to check
    want = _limit_msg("timeout", 3, 2)
    t3 = {"timeout": 3}
    assert_400_exact(_query(qdrant, name, params=t3), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/scroll", name), {"limit": 2}, params=t3), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/count", name), {"exact": True}, params=t3), want)
    assert_400_exact(rest(qdrant, "GET", _c("/points/1", name), params=t3), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points", name), {"ids": [1]}, params=t3), want)
    assert_400_exact(_upsert(qdrant, name, [20], params=t3), want)
    assert_400_exact(rest(qdrant, "PUT", _c("/index", name), {"field_name": "city", "field_schema": "keyword"},
                          params={"wait": "true", "timeout": 3}), want)
    ok_result(_upsert(qdrant, name, [20], params={"timeout": 1}))


def test_max_timeout_client(client, collection_name):
    """`timeout` reaches strict mode from both transports (REST `?timeout=`, gRPC's field), for
    reads, writes and index creation alike; it is checked after the request's other limits."""
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, max_timeout=2, max_query_limit=10))
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=_vec(i), payload=_payload(i)) for i in range(1, 7)])
    assert len(client.query_points(collection_name, query=V, limit=2, timeout=2).points) == 2
    want = _limit_msg("timeout", 3, 2)
    calls = [lambda: client.query_points(collection_name, query=V, limit=2, timeout=3),
             lambda: client.scroll(collection_name, limit=2, timeout=3),
             lambda: client.count(collection_name, exact=False, timeout=3),
             lambda: client.retrieve(collection_name, ids=[1], timeout=3),
             lambda: client.facet(collection_name, key="city", timeout=3),
             lambda: client.search_matrix_pairs(collection_name, sample=3, limit=1, timeout=3),
             lambda: client.query_points_groups(collection_name, query=V, group_by="city", limit=1, group_size=1,
                                                timeout=3),
             lambda: client.upsert(collection_name, points=[models.PointStruct(id=9, vector=_vec(9))], wait=True,
                                   timeout=3),
             lambda: client.delete(collection_name, points_selector=models.PointIdsList(points=[1]), wait=True,
                                   timeout=3),
             lambda: client.create_payload_index(collection_name, field_name="city",
                                                 field_schema=models.PayloadSchemaType.KEYWORD, wait=True, timeout=3)]
    for call in calls:
        with expect_error(client, "invalid_argument", contains=want):
            call()
    # the request's own limits come first
    with expect_error(client, "invalid_argument", contains=_limit_msg("limit", 11, 10)):
        client.query_points(collection_name, query=V, limit=11, timeout=3)
    assert client.count(collection_name, exact=True).count == 6          # nothing was written or deleted
    assert client.get_collection(collection_name).payload_schema == {}


def test_matrix_limit_grpc_defaults(qdrant, collection_name):
    """REST checks `sample × limit` of what the request gives; Qdrant's gRPC request carries the
    defaults (sample 10, limit 3) when it reaches strict mode, so they are multiplied in."""
    name = collection_name
    _setup(qdrant, name, n=12, strict={"enabled": True, "max_query_limit": 29})
    ok_result(rest(qdrant, "POST", _c("/points/search/matrix/pairs", name), {"sample": 10}))
    gclient = qdrant.client("grpc")
    try:
        pairs = gclient.grpc_points.SearchMatrixPairs
        with pytest.raises(grpc.RpcError) as info:
            pairs(qgrpc.SearchMatrixPoints(collection_name=name, sample=10), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert info.value.details() == "Bad request: " + _limit_msg("limit", 30, 29)
        with pytest.raises(grpc.RpcError) as info:
            pairs(qgrpc.SearchMatrixPoints(collection_name=name), timeout=10)
        assert _limit_msg("limit", 30, 29) in info.value.details()
        assert len(pairs(qgrpc.SearchMatrixPoints(collection_name=name, sample=9), timeout=10).result.pairs) > 0
        assert len(pairs(qgrpc.SearchMatrixPoints(collection_name=name, limit=2), timeout=10).result.pairs) > 0
    finally:
        gclient.close()


# --------------------------------------------------------------------------------------------
# search params: hnsw_ef, oversampling, exact
# --------------------------------------------------------------------------------------------

def test_search_max_hnsw_ef(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"enabled": True, "search_max_hnsw_ef": 5})
    name = collection_name
    ok_result(_query(qdrant, name, {"query": V, "limit": 3, "params": {"hnsw_ef": 5}}))
    want = _limit_msg("hnsw_ef", 6, 5)
    assert_400_exact(_query(qdrant, name, {"query": V, "limit": 3, "params": {"hnsw_ef": 6}}), want)
    assert_400_exact(_query(qdrant, name, {"prefetch": {"query": V, "params": {"hnsw_ef": 6}}, "query": V}), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/search", name),
                          {"vector": V, "limit": 3, "params": {"hnsw_ef": 6}}), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/recommend", name),
                          {"positive": [1], "limit": 3, "params": {"hnsw_ef": 6}}), want)
    _strict(qdrant, name, {"enabled": False})
    ok_result(_query(qdrant, name, {"query": V, "limit": 3, "params": {"hnsw_ef": 6}}))


def test_search_max_oversampling(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"enabled": True, "search_max_oversampling": 1.5})
    name = collection_name

    def body(x):
        return {"query": V, "limit": 3, "params": {"quantization": {"oversampling": x}}}

    ok_result(_query(qdrant, name, body(1.5)))
    assert_400_exact(_query(qdrant, name, body(2.0)), _limit_msg("oversampling", 2, 1.5))
    assert_400_exact(rest(qdrant, "POST", _c("/points/search", name),
                          {"vector": V, "limit": 3, "params": {"quantization": {"oversampling": 3.25}}}),
                     _limit_msg("oversampling", 3.25, 1.5))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_query(qdrant, name, body(2.0)))


def test_search_allow_exact(qdrant, collection_name):
    _setup(qdrant, collection_name)
    _index(qdrant, collection_name, "city", "keyword")
    _strict(qdrant, collection_name, {"enabled": True, "search_allow_exact": False})
    name = collection_name
    ok_result(_query(qdrant, name, {"query": V, "limit": 3, "params": {"exact": False}}))
    assert_400_exact(_query(qdrant, name, {"query": V, "limit": 3, "params": {"exact": True}}), EXACT_DISABLED)
    assert_400_exact(_query(qdrant, name, {"prefetch": {"query": V, "params": {"exact": True}}, "query": V}),
                     EXACT_DISABLED)
    assert_400_exact(rest(qdrant, "POST", _c("/points/search", name),
                          {"vector": V, "limit": 3, "params": {"exact": True}}), EXACT_DISABLED)
    assert_400_exact(rest(qdrant, "POST", _c("/points/recommend", name),
                          {"positive": [1], "limit": 3, "params": {"exact": True}}), EXACT_DISABLED)
    # count: `exact` defaults to true
    assert_400_exact(rest(qdrant, "POST", _c("/points/count", name), {}), EXACT_DISABLED)
    assert_400_exact(rest(qdrant, "POST", _c("/points/count", name), {"exact": True}), EXACT_DISABLED)
    ok_result(rest(qdrant, "POST", _c("/points/count", name), {"exact": False}))
    # facet: `exact` defaults to false
    ok_result(rest(qdrant, "POST", _c("/facet", name), {"key": "city"}))
    assert_400_exact(rest(qdrant, "POST", _c("/facet", name), {"key": "city", "exact": True}), EXACT_DISABLED)
    _strict(qdrant, name, {"search_allow_exact": True})
    ok_result(_query(qdrant, name, {"query": V, "limit": 3, "params": {"exact": True}}))
    assert ok_result(rest(qdrant, "POST", _c("/points/count", name), {}))["count"] == 10


def test_search_allow_exact_count_client(client, collection_name):
    """Both transports default count's `exact` to true, which `search_allow_exact: false` refuses."""
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, search_allow_exact=False))
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=i, vector=_vec(i)) for i in range(1, 4)])
    with expect_error(client, "invalid_argument", contains=EXACT_DISABLED):
        client.count(collection_name)
    assert client.count(collection_name, exact=False).count == 3
    with expect_error(client, "invalid_argument", contains=EXACT_DISABLED):
        client.query_points(collection_name, query=V, search_params=models.SearchParams(exact=True))


# --------------------------------------------------------------------------------------------
# full-scan guard of the query API (search_allow_exact: false + hnsw m = 0)
# --------------------------------------------------------------------------------------------

def test_full_scan_default_vector(qdrant, collection_name):
    _setup(qdrant, collection_name, extra={"hnsw_config": {"m": 0}})
    name = collection_name
    ok_result(_query(qdrant, name))
    _strict(qdrant, name, {"enabled": True, "search_allow_exact": False})
    want = FULL_SCAN_GLOBAL.format(label="")
    assert_400_exact(_query(qdrant, name), want)
    assert_400_exact(_query(qdrant, name, {"query": 1, "limit": 3}), want)
    assert_400_exact(_query(qdrant, name, {"query": {"recommend": {"positive": [1]}}, "limit": 3}), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/query/batch", name), {"searches": [{"query": V}]}), want)
    assert_400_exact(rest(qdrant, "POST", _c("/points/query/groups", name), {"query": V, "group_by": "city"}), want)
    assert_400_exact(_query(qdrant, name, {"prefetch": {"query": V}, "query": {"fusion": "rrf"}}), want)
    # a filter on a non-tenant (or missing) index does not help
    _index(qdrant, name, "city", "keyword")
    assert_400_exact(_query(qdrant, name, {"query": V, "filter": {"must": [_cond("Berlin", "city")]}}), want)
    # not checked: legacy search/recommend, non-vector queries, no query at all
    ok_result(rest(qdrant, "POST", _c("/points/search", name), {"vector": V, "limit": 3}))
    ok_result(rest(qdrant, "POST", _c("/points/recommend", name), {"positive": [1], "limit": 3}))
    ok_result(_query(qdrant, name, {"query": {"sample": "random"}, "limit": 3}))
    ok_result(_query(qdrant, name, {"limit": 3}))
    _strict(qdrant, name, {"search_allow_exact": True})
    ok_result(_query(qdrant, name))


def test_full_scan_named_vectors_and_tenant_filters(qdrant, collection_name):
    name = collection_name
    vectors = {"a": {"size": 4, "distance": "Dot", "hnsw_config": {"m": 0, "payload_m": 0}},
               "b": {"size": 4, "distance": "Dot", "hnsw_config": {"m": 0, "payload_m": 16}},
               "c": {"size": 4, "distance": "Dot"}}
    _create(qdrant, name, vectors=vectors, extra={"sparse_vectors": {"s": {}}})
    pts = [{"id": i, "vector": {"a": _vec(i), "b": _vec(i), "c": _vec(i),
                                "s": {"indices": [0, i], "values": [1.0, 0.5]}}, "payload": _payload(i)}
           for i in range(1, 9)]
    ok_result(rest(qdrant, "PUT", _c("/points", name), {"points": pts}, params={"wait": "true"}))
    _index(qdrant, name, "tenant", {"type": "keyword", "is_tenant": True})
    _index(qdrant, name, "city", "keyword")
    _strict(qdrant, name, {"enabled": True, "search_allow_exact": False})
    sparse_q = {"indices": [0, 1], "values": [1.0, 1.0]}
    tenant_f = {"must": [{"key": "tenant", "match": {"value": "t1"}}]}
    city_f = {"must": [{"key": "city", "match": {"value": "Berlin"}}]}

    ok_result(_query(qdrant, name, {"query": V, "using": "c"}))             # global HNSW (collection m=16)
    ok_result(_query(qdrant, name, {"query": sparse_q, "using": "s"}))      # sparse always indexed
    assert_400_exact(_query(qdrant, name, {"query": V, "using": "a"}), FULL_SCAN_GLOBAL.format(label=" on 'a'"))
    assert_400_exact(_query(qdrant, name, {"query": V, "using": "a", "filter": tenant_f}),
                     FULL_SCAN_PAYLOAD.format(label=" on 'a'"))
    ok_result(_query(qdrant, name, {"query": V, "using": "b", "filter": tenant_f}))
    assert_400_exact(_query(qdrant, name, {"query": V, "using": "b", "filter": city_f}),
                     FULL_SCAN_GLOBAL.format(label=" on 'b'"))
    assert_400_exact(_query(qdrant, name, {"query": V, "using": "b"}), FULL_SCAN_GLOBAL.format(label=" on 'b'"))
    # rescoring a prefetch is fine; a prefetch searching an unindexed vector is not
    ok_result(_query(qdrant, name, {"prefetch": {"query": sparse_q, "using": "s", "limit": 5},
                                    "query": V, "using": "a"}))
    assert_400_exact(_query(qdrant, name, {"prefetch": {"query": V, "using": "a", "limit": 5},
                                           "query": sparse_q, "using": "s"}),
                     FULL_SCAN_GLOBAL.format(label=" on 'a'"))


# --------------------------------------------------------------------------------------------
# batch sizes
# --------------------------------------------------------------------------------------------

def test_search_max_batchsize(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"enabled": True, "search_max_batchsize": 2})
    name = collection_name
    want = _limit_msg("search batch size", 3, 2)
    cases = [("/points/query/batch", {"query": V, "limit": 2}),
             ("/points/search/batch", {"vector": V, "limit": 2}),
             ("/points/recommend/batch", {"positive": [1], "limit": 2}),
             ("/points/discover/batch", {**_DISC, "limit": 2})]
    for path, one in cases:
        res = ok_result(rest(qdrant, "POST", _c(path, name), {"searches": [one, one]}))
        assert len(res) == 2
        assert_400_exact(rest(qdrant, "POST", _c(path, name), {"searches": [one, one, one]}), want)
    _strict(qdrant, name, {"enabled": False})
    for path, one in cases:
        ok_result(rest(qdrant, "POST", _c(path, name), {"searches": [one, one, one]}))


def test_upsert_max_batchsize(qdrant, collection_name):
    _setup(qdrant, collection_name, n=0, strict={"enabled": True, "upsert_max_batchsize": 5})
    name = collection_name
    ok_result(_upsert(qdrant, name, range(1, 6)))
    want = _limit_msg("upsert limit", 6, 5)
    assert_400_exact(_upsert(qdrant, name, range(1, 7)), want)
    batch6 = {"batch": {"ids": list(range(1, 7)), "vectors": [_vec(i) for i in range(1, 7)]}}
    assert_400_exact(rest(qdrant, "PUT", _c("/points", name), batch6, params={"wait": "true"}), want)
    # POST /points/batch: the limit applies per operation
    op5 = {"upsert": {"points": [_point(i) for i in range(1, 6)]}}
    op6 = {"upsert": {"points": [_point(i) for i in range(1, 7)]}}
    ok_result(rest(qdrant, "POST", _c("/points/batch", name), {"operations": [op5, op5]}, params={"wait": "true"}))
    assert_400_exact(rest(qdrant, "POST", _c("/points/batch", name), {"operations": [op6]},
                          params={"wait": "true"}), want)
    # update vectors: "update limit"
    upd = lambda n: {"points": [{"id": i, "vector": _vec(i + 1)} for i in range(1, n + 1)]}  # noqa: E731
    ok_result(rest(qdrant, "PUT", _c("/points/vectors", name), upd(5), params={"wait": "true"}))
    assert_400_exact(rest(qdrant, "PUT", _c("/points/vectors", name), upd(6), params={"wait": "true"}),
                     _limit_msg("update limit", 6, 5))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_upsert(qdrant, name, range(1, 7)))


def test_upsert_max_batchsize_client(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, upsert_max_batchsize=5))
    pts = [models.PointStruct(id=i, vector=_vec(i)) for i in range(1, 7)]
    client.upsert(collection_name, points=pts[:5], wait=True)
    with expect_error(client, "invalid_argument", contains=_limit_msg("upsert limit", 6, 5)):
        client.upsert(collection_name, points=pts, wait=True)
    assert client.count(collection_name, exact=True).count == 5


# --------------------------------------------------------------------------------------------
# filter limits
# --------------------------------------------------------------------------------------------

def test_filter_max_conditions(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"enabled": True, "filter_max_conditions": 5})
    name = collection_name
    c = [_cond(i) for i in range(10)]
    nested = lambda k: {"nested": {"key": "arr", "filter": {"must": [_cond(i, "a") for i in range(k)]}}}  # noqa: E731

    def want(n):
        return f"Filter condition limit reached ({n} > 5). Help: Reduce the amount of conditions of your filter."

    ok = [{"must": c[:5]},
          {"must": [nested(5)]},                                     # the nested wrapper itself counts 0
          {"must": [{"must": c[:2]}, {"should": c[2:5]}]}]
    bad = [({"must": c[:6]}, 6),
           ({"must": c[:2], "should": c[2:4], "must_not": c[4:6]}, 6),
           ({"must": [{"must": c[:3]}, {"should": c[3:6]}]}, 6),     # sub-filters count their conditions
           ({"must": [nested(3), c[0], c[1], c[2]]}, 6),
           ({"min_should": {"conditions": c[:6], "min_count": 1}}, 6),
           ({"must": [{"has_id": [1, 2]}, {"is_empty": {"key": "x"}}, c[0], c[1], c[2], c[3]]}, 6),
           ({"must": c[:7]}, 7)]
    for flt in ok:
        ok_result(_scroll(qdrant, name, flt))
    for flt, n in bad:
        assert_400_exact(_scroll(qdrant, name, flt), want(n))
    # other read endpoints and write (filtered update) endpoints
    assert_400_exact(rest(qdrant, "POST", _c("/points/count", name), {"filter": {"must": c[:6]}, "exact": False}), want(6))
    assert_400_exact(_query(qdrant, name, {"query": V, "filter": {"must": c[:6]}}), want(6))
    assert_400_exact(rest(qdrant, "POST", _c("/points/delete", name), {"filter": {"must": c[:6]}},
                          params={"wait": "true"}), want(6))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_scroll(qdrant, name, {"must": c[:7]}))


def test_condition_max_size(qdrant, collection_name):
    _setup(qdrant, collection_name, strict={"enabled": True, "condition_max_size": 5})
    name = collection_name

    def want(n):
        return f"Condition size limit reached ({n} > 5). Help: Reduce the size of your condition."

    any_ = lambda k, key="price": {"key": key, "match": {"any": list(range(k))}}  # noqa: E731
    ok = [{"must": [any_(5)]},
          {"must": [any_(4), any_(5), any_(5)]},                     # max, not sum
          {"must": [{"has_id": [1, 2, 3, 4, 5]}]},
          {"must": [{"key": "price", "range": {"gte": 0, "lte": 1000}}, _cond(1),
                    {"key": "t", "match": {"text": "a b c d e f g"}}]}]
    bad = [({"must": [any_(6)]}, 6),
           ({"must_not": [{"key": "price", "match": {"except": list(range(7))}}]}, 7),
           ({"must": [{"has_id": [1, 2, 3, 4, 5, 6]}]}, 6),
           ({"must": [{"nested": {"key": "arr", "filter": {"must": [any_(6, "a")]}}}]}, 6),
           ({"should": [{"must": [any_(2), any_(8)]}]}, 8)]
    for flt in ok:
        ok_result(_scroll(qdrant, name, flt))
    for flt, n in bad:
        assert_400_exact(_scroll(qdrant, name, flt), want(n))
    assert_400_exact(rest(qdrant, "POST", _c("/points/payload/clear", name), {"filter": {"must": [any_(6)]}},
                          params={"wait": "true"}), want(6))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_scroll(qdrant, name, {"must": [any_(6)]}))


# --------------------------------------------------------------------------------------------
# unindexed filters
# --------------------------------------------------------------------------------------------

UNINDEXED_CASES = [
    # id, filter, reported key, listed types
    ("match_keyword", {"must": [{"key": "city", "match": {"value": "Berlin"}}]}, "city", "keyword"),
    ("match_uuid_string", {"must": [{"key": "uid", "match": {"value": UUID_S}}]}, "uid", "keyword, uuid"),
    ("match_integer", {"must": [_cond(3)]}, "price", "integer"),
    ("match_bool", {"must": [{"key": "flag", "match": {"value": True}}]}, "flag", "bool"),
    ("any_strings", {"must": [{"key": "city", "match": {"any": ["Berlin", "Paris"]}}]}, "city", "keyword"),
    ("any_uuids", {"must": [{"key": "uid", "match": {"any": [UUID_S]}}]}, "uid", "keyword, uuid"),
    ("any_mixed_uuid_and_not", {"must": [{"key": "uid", "match": {"any": [UUID_S, "x"]}}]}, "uid", "keyword"),
    ("any_integers", {"must": [{"key": "price", "match": {"any": [1, 2]}}]}, "price", "integer"),
    ("except_integers", {"must": [{"key": "price", "match": {"except": [1]}}]}, "price", "integer"),
    ("except_strings", {"must": [{"key": "city", "match": {"except": ["x"]}}]}, "city", "keyword"),
    ("text", {"must": [{"key": "t", "match": {"text": "some"}}]}, "t", "text"),
    ("text_any", {"must": [{"key": "t", "match": {"text_any": "some other"}}]}, "t", "text"),
    ("phrase", {"must": [{"key": "t", "match": {"phrase": "some text"}}]}, "t", "text (with phrase_matching: true)"),
    ("prefix", {"must": [{"key": "city", "match": {"prefix": "Ber"}}]}, "city", "keyword (with prefix: true)"),
    ("range_numeric", {"must": [{"key": "price", "range": {"gt": 1}}]}, "price", "float, integer"),
    ("range_datetime", {"must": [{"key": "dt", "range": {"gt": "2024-01-01T00:00:00Z"}}]}, "dt", "datetime"),
    ("geo_radius", {"must": [{"key": "loc", "geo_radius": {"center": {"lon": 13.4, "lat": 52.5}, "radius": 1000.0}}]},
     "loc", "geo"),
    ("geo_bounding_box", {"must": [{"key": "loc", "geo_bounding_box": {
        "top_left": {"lon": 13.0, "lat": 53.0}, "bottom_right": {"lon": 14.0, "lat": 52.0}}}]}, "loc", "geo"),
    ("values_count", {"must": [{"key": "arr", "values_count": {"gt": 0}}]}, "arr", ALL_TYPES),
    ("is_empty", {"must": [{"is_empty": {"key": "city"}}]}, "city", ALL_TYPES),
    ("is_null", {"must": [{"is_null": {"key": "city"}}]}, "city", ALL_TYPES),
    ("nested", {"must": [{"nested": {"key": "arr", "filter": {"must": [_cond(1, "a")]}}}]}, "arr[].a", "integer"),
    ("must_not", {"must_not": [_cond(3)]}, "price", "integer"),
    ("should", {"should": [_cond(3)]}, "price", "integer"),
    ("min_should", {"min_should": {"conditions": [_cond(3)], "min_count": 1}}, "price", "integer"),
    ("sub_filter", {"must": [{"should": [_cond(3)]}]}, "price", "integer"),
    ("after_has_id", {"must": [{"has_id": [1]}, {"key": "city", "match": {"value": "x"}}]}, "city", "keyword"),
]


@pytest.fixture(scope="module")
def unindexed_coll(qdrant):
    name = _temp_collection()
    _setup(qdrant, name, strict={"enabled": True, "unindexed_filtering_retrieve": False})
    yield name
    _drop(qdrant, name)


@pytest.mark.parametrize("case", UNINDEXED_CASES, ids=[c[0] for c in UNINDEXED_CASES])
def test_unindexed_filter_required_types(qdrant, unindexed_coll, case):
    _, flt, key, types = case
    assert_400_exact(_scroll(qdrant, unindexed_coll, flt), _unindexed_msg(key, types))


@pytest.mark.parametrize("flt", [
    {"must": [{"has_id": [1, 2]}]},
    {"must": [{"key": "price", "match": {"any": []}}]},
    {"must": [{"key": "price", "match": {"except": []}}]},
    {},
], ids=["has_id", "any_empty", "except_empty", "empty_filter"])
def test_unindexed_filter_no_index_needed(qdrant, unindexed_coll, flt):
    ok_result(_scroll(qdrant, unindexed_coll, flt))


CAPABILITY_INDEXES = {
    "i_nolookup": {"type": "integer", "lookup": False, "range": True},
    "i_norange": {"type": "integer", "lookup": True, "range": False},
    "f": "float",
    "kw": "keyword",
    "txt": "text",
    "txtp": {"type": "text", "phrase_matching": True},
    "u": "uuid",
    "dt": "datetime",
    "b": "bool",
    "g": "geo",
}
_RANGE = {"gt": 1}
CAPABILITY_CASES = [
    # id, field condition, None (= allowed) or listed types
    ("int_nolookup_match", {"key": "i_nolookup", "match": {"value": 1}}, "integer"),
    ("int_nolookup_range", {"key": "i_nolookup", "range": _RANGE}, None),
    ("int_norange_range", {"key": "i_norange", "range": _RANGE}, "float, integer"),
    ("int_norange_match", {"key": "i_norange", "match": {"value": 1}}, None),
    ("int_norange_any", {"key": "i_norange", "match": {"any": [1, 2]}}, None),
    ("float_match_int", {"key": "f", "match": {"value": 1}}, "integer"),
    ("float_range", {"key": "f", "range": _RANGE}, None),
    ("keyword_match", {"key": "kw", "match": {"value": "x"}}, None),
    ("keyword_match_uuid", {"key": "kw", "match": {"value": UUID_S}}, None),
    ("keyword_match_int", {"key": "kw", "match": {"value": 1}}, "integer"),
    ("keyword_range", {"key": "kw", "range": _RANGE}, "float, integer"),
    ("keyword_prefix", {"key": "kw", "match": {"prefix": "x"}}, "keyword (with prefix: true)"),
    ("keyword_values_count", {"key": "kw", "values_count": {"gte": 1}}, None),
    ("keyword_is_empty", {"is_empty": {"key": "kw"}}, None),
    ("keyword_is_null", {"is_null": {"key": "kw"}}, None),
    ("text_text", {"key": "txt", "match": {"text": "x"}}, None),
    ("text_text_any", {"key": "txt", "match": {"text_any": "x y"}}, None),
    ("text_phrase", {"key": "txt", "match": {"phrase": "x y"}}, "text (with phrase_matching: true)"),
    ("text_match_value", {"key": "txt", "match": {"value": "x"}}, "keyword"),
    ("phrase_index_phrase", {"key": "txtp", "match": {"phrase": "x y"}}, None),
    ("phrase_index_text", {"key": "txtp", "match": {"text": "x"}}, None),
    ("uuid_match_uuid", {"key": "u", "match": {"value": UUID_S}}, None),
    ("uuid_match_plain_string", {"key": "u", "match": {"value": "x"}}, "keyword"),
    ("datetime_range", {"key": "dt", "range": {"gte": "2024-01-01T00:00:00Z"}}, None),
    ("datetime_numeric_range", {"key": "dt", "range": _RANGE}, "float, integer"),
    ("bool_match", {"key": "b", "match": {"value": True}}, None),
    ("geo_radius", {"key": "g", "geo_radius": {"center": {"lon": 1.0, "lat": 1.0}, "radius": 10.0}}, None),
    ("geo_index_match", {"key": "g", "match": {"value": "x"}}, "keyword"),
]


@pytest.fixture(scope="module")
def capability_coll(qdrant):
    name = _temp_collection()
    _setup(qdrant, name, n=5)
    for field, schema in CAPABILITY_INDEXES.items():
        _index(qdrant, name, field, schema)
    _strict(qdrant, name, {"enabled": True, "unindexed_filtering_retrieve": False})
    yield name
    _drop(qdrant, name)


@pytest.mark.parametrize("case", CAPABILITY_CASES, ids=[c[0] for c in CAPABILITY_CASES])
def test_unindexed_filter_index_capabilities(qdrant, capability_coll, case):
    _, cond, types = case
    resp = _scroll(qdrant, capability_coll, {"must": [cond]})
    if types is None:
        ok_result(resp)
    else:
        key = cond.get("key") or next(iter(cond.values()))["key"]
        assert_400_exact(resp, _unindexed_msg(key, types))


def test_unindexed_filter_keyword_prefix_index(qdrant, collection_name):
    """Match prefix needs a keyword index created with `prefix: true` (Qdrant 1.19 KeywordIndexParams)."""
    _setup(qdrant, collection_name, strict={"enabled": True, "unindexed_filtering_retrieve": False})
    name = collection_name
    _index(qdrant, name, "city", {"type": "keyword", "prefix": True})
    res = ok_result(_scroll(qdrant, name, {"must": [{"key": "city", "match": {"prefix": "Ber"}}]}, limit=100))
    assert sorted(p["id"] for p in res["points"]) == [3, 6, 9]
    ok_result(_scroll(qdrant, name, {"must": [{"key": "city", "match": {"value": "Berlin"}}]}))


UNINDEXED_F = {"must": [_cond(3)]}
READ_ENDPOINTS = [
    ("query", "/points/query", {"query": V, "filter": UNINDEXED_F}),
    ("query_without_vector", "/points/query", {"filter": UNINDEXED_F}),
    ("query_prefetch", "/points/query", {"prefetch": {"query": V, "filter": UNINDEXED_F}, "query": V}),
    ("query_batch", "/points/query/batch", {"searches": [{"query": V}, {"query": V, "filter": UNINDEXED_F}]}),
    ("query_groups", "/points/query/groups", {"query": V, "group_by": "city", "filter": UNINDEXED_F}),
    ("search", "/points/search", {"vector": V, "limit": 3, "filter": UNINDEXED_F}),
    ("search_batch", "/points/search/batch", {"searches": [{"vector": V, "limit": 3, "filter": UNINDEXED_F}]}),
    ("search_groups", "/points/search/groups",
     {"vector": V, "group_by": "city", "limit": 2, "group_size": 2, "filter": UNINDEXED_F}),
    ("recommend", "/points/recommend", {"positive": [1], "limit": 3, "filter": UNINDEXED_F}),
    ("recommend_batch", "/points/recommend/batch", {"searches": [{"positive": [1], "limit": 3, "filter": UNINDEXED_F}]}),
    ("recommend_groups", "/points/recommend/groups",
     {"positive": [1], "group_by": "city", "limit": 2, "group_size": 2, "filter": UNINDEXED_F}),
    ("discover", "/points/discover", {**_DISC, "limit": 3, "filter": UNINDEXED_F}),
    ("discover_batch", "/points/discover/batch", {"searches": [{**_DISC, "limit": 3, "filter": UNINDEXED_F}]}),
    ("scroll", "/points/scroll", {"filter": UNINDEXED_F}),
    ("count", "/points/count", {"filter": UNINDEXED_F, "exact": False}),
    ("facet", "/facet", {"key": "city", "filter": UNINDEXED_F}),
    ("matrix_pairs", "/points/search/matrix/pairs", {"sample": 5, "limit": 2, "filter": UNINDEXED_F}),
    ("matrix_offsets", "/points/search/matrix/offsets", {"sample": 5, "limit": 2, "filter": UNINDEXED_F}),
]


@pytest.fixture(scope="module")
def unindexed_read_coll(qdrant):
    name = _temp_collection()
    _setup(qdrant, name)
    _index(qdrant, name, "city", "keyword")
    _strict(qdrant, name, {"enabled": True, "unindexed_filtering_retrieve": False})
    yield name
    _drop(qdrant, name)


@pytest.mark.parametrize("case", READ_ENDPOINTS, ids=[c[0] for c in READ_ENDPOINTS])
def test_unindexed_filter_read_endpoints(qdrant, unindexed_read_coll, case):
    _, path, body = case
    assert_400_exact(rest(qdrant, "POST", _c(path, unindexed_read_coll), body), _unindexed_msg("price", "integer"))


def test_unindexed_filter_flags_and_index(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True})
    body = {"query": V, "limit": 3, "filter": UNINDEXED_F}
    ok_result(_query(qdrant, name, body))                                     # unset: allowed
    _strict(qdrant, name, {"unindexed_filtering_retrieve": True})
    ok_result(_query(qdrant, name, body))
    _strict(qdrant, name, {"unindexed_filtering_retrieve": False})
    assert_400_exact(_query(qdrant, name, body), _unindexed_msg("price", "integer"))
    # the read flag does not restrict filtered updates, and retrieve has no filter
    ok_result(rest(qdrant, "POST", _c("/points/payload", name), {"payload": {"x": 1}, "filter": UNINDEXED_F},
                   params={"wait": "true"}))
    assert len(ok_result(rest(qdrant, "POST", _c("/points", name), {"ids": [1, 2]}))) == 2
    _index(qdrant, name, "price", "integer")
    hits = ok_result(_query(qdrant, name, body))["points"]
    assert [h["id"] for h in hits] == [3]
    _strict(qdrant, name, {"enabled": False})
    ok_result(_query(qdrant, name, {"query": V, "filter": {"must": [_cond("x", "city")]}}))


def test_unindexed_filter_write_endpoints(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, named="v", vectors={"v": {"size": 4, "distance": "Dot"}},
           strict={"enabled": True, "unindexed_filtering_update": False})
    w = {"wait": "true"}
    want = _unindexed_msg("price", "integer")
    writes = [("POST", "/points/delete", {"filter": UNINDEXED_F}),
              ("POST", "/points/payload", {"payload": {"x": 1}, "filter": UNINDEXED_F}),
              ("PUT", "/points/payload", {"payload": {"x": 1}, "filter": UNINDEXED_F}),
              ("POST", "/points/payload/delete", {"keys": ["city"], "filter": UNINDEXED_F}),
              ("POST", "/points/payload/clear", {"filter": UNINDEXED_F}),
              ("POST", "/points/vectors/delete", {"filter": UNINDEXED_F, "vector": ["v"]}),
              ("POST", "/points/batch", {"operations": [{"delete": {"filter": UNINDEXED_F}}]}),
              ("POST", "/points/batch", {"operations": [{"set_payload": {"payload": {"x": 1}, "filter": UNINDEXED_F}}]})]
    for method, path, body in writes:
        assert_400_exact(rest(qdrant, method, _c(path, name), body, params=w), want)
    assert ok_result(rest(qdrant, "POST", _c("/points/count", name), {}))["count"] == 10   # nothing deleted
    # by ids: no filter to check; reads are governed by the other flag
    ok_result(rest(qdrant, "POST", _c("/points/payload", name), {"payload": {"x": 1}, "points": [1]}, params=w))
    ok_result(_scroll(qdrant, name, UNINDEXED_F))
    # the update_filter of a conditional upsert is not checked
    ok_result(rest(qdrant, "PUT", _c("/points", name),
                   {"points": [_point(3, "v")], "update_filter": UNINDEXED_F}, params=w))
    _index(qdrant, name, "price", "integer")
    for method, path, body in writes:
        ok_result(rest(qdrant, method, _c(path, name), body, params=w))


def test_unindexed_filter_client(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, unindexed_filtering_retrieve=False,
                                                                        unindexed_filtering_update=False))
    client.upsert(collection_name, wait=True,
                  points=[models.PointStruct(id=i, vector=_vec(i), payload=_payload(i)) for i in range(1, 7)])
    flt = models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="Berlin"))])
    want = _unindexed_msg("city", "keyword")
    with expect_error(client, "invalid_argument", contains=want):
        client.scroll(collection_name, scroll_filter=flt)
    with expect_error(client, "invalid_argument", contains=want):
        client.query_points(collection_name, query=V, query_filter=flt)
    with expect_error(client, "invalid_argument", contains=want):
        client.delete(collection_name, points_selector=models.FilterSelector(filter=flt), wait=True)
    client.create_payload_index(collection_name, field_name="city", field_schema=models.PayloadSchemaType.KEYWORD,
                                wait=True)
    assert sorted(p.id for p in client.scroll(collection_name, scroll_filter=flt)[0]) == [3, 6]


def test_unindexed_formula_variables(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name)
    body = {"prefetch": {"query": V, "limit": 5},
            "query": {"formula": {"sum": ["price", "$score"]}, "defaults": {"price": 0}}}
    ok_result(_query(qdrant, name, body))
    _strict(qdrant, name, {"enabled": True, "unindexed_filtering_retrieve": False})
    assert_400_exact(_query(qdrant, name, body),
                     'Index required but not found for "price" of one of the following types: [float, integer]. '
                     "Help: Create an index for this key or use a different formula expression.")
    _index(qdrant, name, "price", {"type": "integer", "lookup": True, "range": False})
    ok_result(_query(qdrant, name, body))


# --------------------------------------------------------------------------------------------
# group_by
# --------------------------------------------------------------------------------------------

def test_group_by_needs_match_index(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, n=12)
    _index(qdrant, name, "docF", "float")
    _index(qdrant, name, "docI", "integer")
    _index(qdrant, name, "docK", "keyword")
    _strict(qdrant, name, {"enabled": True, "unindexed_filtering_retrieve": False})
    help_ = "Help: Create an index supporting `match` for this key."

    def both(key):
        return [rest(qdrant, "POST", _c("/points/query/groups", name), {"query": V, "group_by": key, "limit": 3}),
                rest(qdrant, "POST", _c("/points/search/groups", name),
                     {"vector": V, "group_by": key, "limit": 3, "group_size": 2})]

    for r in both("docId"):
        assert_400_exact(r, f'Index required but not found for "docId". {help_}')
    for r in both("docF"):
        assert_400_exact(r, f'Index of type "Float" found for "docF". {help_}')
    for key in ("docI", "docK"):
        for r in both(key):
            ok_result(r)
    # recommend groups has no group_by check
    ok_result(rest(qdrant, "POST", _c("/points/recommend/groups", name),
                   {"positive": [1], "group_by": "docId", "limit": 3, "group_size": 2}))
    _strict(qdrant, name, {"unindexed_filtering_retrieve": True})
    for r in both("docId"):
        ok_result(r)


def test_group_by_integer_params_need_explicit_lookup(qdrant, collection_name):
    """Quirk (segment types.rs `supports_match`): a params-form integer index supports `match` for
    group_by only with an explicit `"lookup": true`."""
    name = collection_name
    _setup(qdrant, name, n=6)
    _index(qdrant, name, "g1", {"type": "integer", "range": True})
    _index(qdrant, name, "g2", {"type": "integer", "lookup": True})
    _strict(qdrant, name, {"enabled": True, "unindexed_filtering_retrieve": False})
    r = rest(qdrant, "POST", _c("/points/query/groups", name), {"query": V, "group_by": "g1", "limit": 3})
    assert_400_exact(r, 'Index of type "Integer" found for "g1". Help: Create an index supporting `match` for this key.')
    ok_result(rest(qdrant, "POST", _c("/points/query/groups", name), {"query": V, "group_by": "g2", "limit": 3}))


# --------------------------------------------------------------------------------------------
# payload index count
# --------------------------------------------------------------------------------------------

def test_max_payload_index_count(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, n=3, strict={"enabled": True, "max_payload_index_count": 0})

    def create(field, schema="keyword"):
        return rest(qdrant, "PUT", _c("/index", name), {"field_name": field, "field_schema": schema},
                    params={"wait": "true"})

    def want(n):
        return (f"Collection already has the maximum number of payload indices ({n}). "
                f"Help: Please delete an existing index before creating a new one.")

    assert_400_exact(create("city"), want(0))
    _strict(qdrant, name, {"max_payload_index_count": 1})
    ok_result(create("city"))
    assert_400_exact(create("price", "float"), want(1))
    assert_400_exact(create("city"), want(1))            # counted before creating, even for the same field
    ok_result(rest(qdrant, "DELETE", _c("/index/city", name), params={"wait": "true"}))
    ok_result(create("price", "float"))
    _strict(qdrant, name, {"enabled": False})
    ok_result(create("city"))
    assert set(ok_result(rest(qdrant, "GET", f"/collections/{name}"))["payload_schema"]) == {"city", "price"}


# --------------------------------------------------------------------------------------------
# collection size limits (checked before the write; estimates may lag, Qdrant refreshes every 32)
# --------------------------------------------------------------------------------------------

def _upsert_until_refused(server, name, per_call=3, attempts=40, payload_fn=None):
    """Upsert `per_call` new points per request until one is refused; returns (resp, stored_count)."""
    stored = 0
    for k in range(attempts):
        ids = list(range(1000 + k * per_call, 1000 + (k + 1) * per_call))
        pts = [{"id": i, "vector": _vec(i), "payload": payload_fn(i) if payload_fn else {}} for i in ids]
        r = rest(server, "PUT", _c("/points", name), {"points": pts}, params={"wait": "true"})
        if r.status_code != 200:
            return r, stored
        stored += per_call
    raise AssertionError(f"no upsert refused after {attempts} requests ({stored} points stored)")


def test_max_points_count(qdrant, collection_name):
    name = collection_name
    _create(qdrant, name, strict={"enabled": True, "max_points_count": 10})
    ok_result(_upsert(qdrant, name, range(1, 21)))        # 0 < 10 before the write: a 20-point batch passes
    r, _ = _upsert_until_refused(qdrant, name, per_call=1)
    assert_400_exact(r, "Max points count limit of 10 reached!")
    # deletes are never size-checked
    ok_result(rest(qdrant, "POST", _c("/points/delete", name), {"points": [1]}, params={"wait": "true"}))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_upsert(qdrant, name, [500]))


def test_max_collection_vector_size_bytes(qdrant, collection_name):
    name = collection_name
    # 4-dim float32 = 16 bytes per point: the limit of 160 bytes is reached at 10 points
    _create(qdrant, name, strict={"enabled": True, "max_collection_vector_size_bytes": 160})
    r, stored = _upsert_until_refused(qdrant, name, per_call=3)
    msg = assert_400(r, "Max vector storage size limit of ")
    assert msg.endswith("MB reached!"), msg
    assert "Help:" not in msg
    # refused only once the stored size reached the limit; the crossing batch (9 -> 12 points) was accepted
    assert stored >= 12, stored
    # update vectors checks the vector size too; set payload only checks the payload size
    assert_400(rest(qdrant, "PUT", _c("/points/vectors", name), {"points": [{"id": 1000, "vector": _vec(1)}]},
                    params={"wait": "true"}), "Max vector storage size limit of ")
    ok_result(rest(qdrant, "POST", _c("/points/payload", name), {"payload": {"x": 1}, "points": [1000]},
                   params={"wait": "true"}))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_upsert(qdrant, name, [1]))


def test_max_collection_payload_size_bytes(qdrant, collection_name):
    name = collection_name
    _create(qdrant, name, strict={"enabled": True, "max_collection_payload_size_bytes": 1024})
    r, _ = _upsert_until_refused(qdrant, name, per_call=3, payload_fn=lambda i: {"blob": secrets.token_hex(100)})
    msg = assert_400(r, "Max payload storage size limit of ")
    assert msg.endswith("MB reached!"), msg
    # set/overwrite payload check the payload size; delete payload is never checked
    assert_400(rest(qdrant, "POST", _c("/points/payload", name), {"payload": {"x": 1}, "points": [1000]},
                    params={"wait": "true"}), "Max payload storage size limit of ")
    ok_result(rest(qdrant, "POST", _c("/points/payload/delete", name), {"keys": ["blob"], "points": [1000]},
                   params={"wait": "true"}))
    _strict(qdrant, name, {"enabled": False})
    ok_result(_upsert(qdrant, name, [1]))


# --------------------------------------------------------------------------------------------
# multivector / sparse limits
# --------------------------------------------------------------------------------------------

def test_multivector_max_vectors(qdrant, collection_name):
    name = collection_name
    _create(qdrant, name, vectors={"mv": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}},
            strict={"enabled": True, "multivector_config": {"mv": {"max_vectors": 2}}})
    w = {"wait": "true"}
    two, three = [[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]
    want = "Multivector 'mv' has a limit of 2 vectors, but 3 were provided!"
    ok_result(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 1, "vector": {"mv": two}}]}, params=w))
    assert_400_exact(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 2, "vector": {"mv": three}}]},
                          params=w), want)
    assert_400_exact(rest(qdrant, "PUT", _c("/points", name), {"batch": {"ids": [2], "vectors": {"mv": [three]}}},
                          params=w), want)
    assert_400_exact(rest(qdrant, "PUT", _c("/points/vectors", name), {"points": [{"id": 1, "vector": {"mv": three}}]},
                          params=w), want)
    # query vectors are not limited
    ok_result(_query(qdrant, name, {"query": three, "using": "mv", "limit": 1}))
    _strict(qdrant, name, {"enabled": False})
    ok_result(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 2, "vector": {"mv": three}}]}, params=w))


def test_sparse_max_length(qdrant, collection_name):
    name = collection_name
    ok_result(rest(qdrant, "PUT", f"/collections/{name}", {"sparse_vectors": {"sp": {}}, "strict_mode_config": {
        "enabled": True, "sparse_config": {"sp": {"max_length": 4}}}}))
    w = {"wait": "true"}

    def sv(k):
        return {"indices": list(range(1, k + 1)), "values": [0.1 * (j + 1) for j in range(k)]}

    want = "Sparse vector 'sp' has a limit of 4 indices, but 6 were provided!"
    ok_result(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 1, "vector": {"sp": sv(4)}}]}, params=w))
    assert_400_exact(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 2, "vector": {"sp": sv(6)}}]},
                          params=w), want)
    assert_400_exact(rest(qdrant, "PUT", _c("/points", name), {"batch": {"ids": [2], "vectors": {"sp": [sv(6)]}}},
                          params=w), want)
    assert_400_exact(rest(qdrant, "PUT", _c("/points/vectors", name), {"points": [{"id": 1, "vector": {"sp": sv(6)}}]},
                          params=w), want)
    ok_result(_query(qdrant, name, {"query": sv(6), "using": "sp", "limit": 1}))
    _strict(qdrant, name, {"enabled": False})
    ok_result(rest(qdrant, "PUT", _c("/points", name), {"points": [{"id": 2, "vector": {"sp": sv(6)}}]}, params=w))


# --------------------------------------------------------------------------------------------
# rate limiting
# --------------------------------------------------------------------------------------------

READ_CAPACITY = "Read rate limit exceeded, request larger than rate limiter capacity, please try to split your request"
WRITE_CAPACITY = "Write rate limit exceeded, request larger than rate limiter capacity, please try to split your request"


def test_read_rate_limit_bucket(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True, "read_rate_limit": 2})
    ok_result(_query(qdrant, name))
    ok_result(_query(qdrant, name))
    msg, secs = assert_429(_query(qdrant, name),
                           "Rate limiting exceeded: Read rate limit exceeded: Operation requires 1 tokens but only 0.")
    # 2 per minute: one token takes 30 s to come back
    assert 20 <= secs <= 30, msg
    # writes have their own bucket (none configured)
    ok_result(_upsert(qdrant, name, [50]))
    # any PATCH of the strict config refills the buckets
    _strict(qdrant, name, {"read_rate_limit": 2})
    ok_result(_query(qdrant, name))
    # disabled strict mode: no rate limiting
    _strict(qdrant, name, {"enabled": False})
    for _ in range(5):
        ok_result(_query(qdrant, name))


def test_read_rate_limit_cost_retrieve(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True, "read_rate_limit": 4})
    r = rest(qdrant, "POST", _c("/points", name), {"ids": [1, 2, 3, 4, 5]})
    assert_429(r, READ_CAPACITY, retry_after=False)
    assert len(ok_result(rest(qdrant, "POST", _c("/points", name), {"ids": [1, 2, 3, 4]}))) == 4
    assert_429(rest(qdrant, "POST", _c("/points", name), {"ids": [1, 2, 3, 4]}),
               "Read rate limit exceeded: Operation requires 4 tokens but only 0.")


def test_read_rate_limit_cost_filter_conditions(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True, "read_rate_limit": 10})
    flt = lambda k: {"must": [_cond(i) for i in range(k)]}  # noqa: E731
    assert_429(_scroll(qdrant, name, flt(11)), READ_CAPACITY, retry_after=False)   # 1 + 11 > 10
    ok_result(_scroll(qdrant, name, flt(6)))                                        # 7 tokens
    assert_429(_scroll(qdrant, name, flt(6)), "Read rate limit exceeded: Operation requires 7 tokens but only 3.")
    ok_result(rest(qdrant, "POST", _c("/points/count", name), {"filter": flt(1), "exact": True}))   # 2 tokens
    assert_429(rest(qdrant, "POST", _c("/points/count", name), {"filter": flt(1), "exact": True}),
               "Read rate limit exceeded: Operation requires 2 tokens but only 1.")


def test_read_rate_limit_cost_multivector(qdrant, collection_name):
    name = collection_name
    _create(qdrant, name, vectors={"mv": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}})
    ok_result(rest(qdrant, "PUT", _c("/points", name),
                   {"points": [{"id": i, "vector": {"mv": [[1.0, i], [i, 1.0]]}} for i in range(1, 6)]},
                   params={"wait": "true"}))
    q = {"query": [[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]], "using": "mv", "limit": 3}      # 3 vectors = 3 tokens
    _strict(qdrant, name, {"enabled": True, "read_rate_limit": 2})
    assert_429(_query(qdrant, name, q), READ_CAPACITY, retry_after=False)
    _strict(qdrant, name, {"read_rate_limit": 3})
    ok_result(_query(qdrant, name, q))
    assert_429(_query(qdrant, name, q), "Read rate limit exceeded: Operation requires 3 tokens but only 0.")


def test_read_rate_limit_cost_query_by_id(qdrant, collection_name):
    """A query by point id also spends a token per id looked up and one for the `has_id`
    exclusion of the example (Qdrant's test: a 3-vector multivector by id costs 5)."""
    name = collection_name
    _create(qdrant, name, vectors={"mv": {"size": 2, "distance": "Dot", "multivector_config": {"comparator": "max_sim"}}})
    ok_result(rest(qdrant, "PUT", _c("/points", name),
                   {"points": [{"id": i, "vector": {"mv": [[1.0, i], [i, 1.0], [0.5, 0.5]]}} for i in range(1, 6)]},
                   params={"wait": "true"}))
    _strict(qdrant, name, {"enabled": True, "read_rate_limit": 5})
    q = {"query": 1, "using": "mv", "limit": 2}
    assert 1 not in [p["id"] for p in ok_result(_query(qdrant, name, q))["points"]]
    assert_429(_query(qdrant, name, q), "Read rate limit exceeded: Operation requires 5 tokens but only 0.")
    # a prefetch costs its own search; re-scoring the prefetched points costs nothing more
    _strict(qdrant, name, {"read_rate_limit": 4})
    body = {"prefetch": {"query": [[1.0, 0.0], [0.0, 1.0]], "using": "mv", "limit": 3},
            "query": [[1.0, 0.0], [0.0, 1.0]], "using": "mv", "limit": 2}
    ok_result(_query(qdrant, name, body))                                        # 2 tokens
    ok_result(_query(qdrant, name, body))                                        # 2 tokens
    assert_429(_query(qdrant, name, body), "Read rate limit exceeded: Operation requires 2 tokens but only 0.")
    # a batch is charged at once: 2 + 2 > 4 refuses it whole
    _strict(qdrant, name, {"read_rate_limit": 3})
    r = rest(qdrant, "POST", _c("/points/query/batch", name), {"searches": [body, body]})
    assert_429(r, READ_CAPACITY, retry_after=False)


def test_write_rate_limit_filters_and_indexes(qdrant, collection_name):
    """A write selected by a filter costs the points the filter matches; creating a payload index
    costs one token."""
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True, "write_rate_limit": 5})
    w = {"wait": "true"}
    le = lambda n: {"must": [{"key": "price", "range": {"lte": n}}]}  # noqa: E731
    assert_429(rest(qdrant, "POST", _c("/points/delete", name), {"filter": le(6)}, params=w),
               WRITE_CAPACITY, retry_after=False)                                # 6 points > 5
    ok_result(rest(qdrant, "POST", _c("/points/payload", name), {"payload": {"x": 1}, "filter": le(2)}, params=w))
    ok_result(rest(qdrant, "PUT", _c("/index", name), {"field_name": "city", "field_schema": "keyword"}, params=w))
    assert_429(rest(qdrant, "POST", _c("/points/delete", name), {"points": [7, 8, 9]}, params=w),
               "Write rate limit exceeded: Operation requires 3 tokens but only 2.")
    assert ok_result(rest(qdrant, "POST", _c("/points/count", name), {}))["count"] == 10
    # the index was created, the refused index is not
    _strict(qdrant, name, {"write_rate_limit": 1})
    ok_result(rest(qdrant, "PUT", _c("/index", name), {"field_name": "price", "field_schema": "integer"}, params=w))
    assert_429(rest(qdrant, "PUT", _c("/index", name), {"field_name": "t", "field_schema": "text"}, params=w),
               "Write rate limit exceeded: Operation requires 1 tokens but only 0.")
    schema = ok_result(rest(qdrant, "GET", f"/collections/{name}"))["payload_schema"]
    assert set(schema) == {"city", "price"}


def test_rejected_requests_consume_no_tokens(qdrant, collection_name):
    name = collection_name
    _setup(qdrant, name, strict={"enabled": True, "read_rate_limit": 2, "max_query_limit": 3})
    for _ in range(4):
        assert_400_exact(_query(qdrant, name, {"query": V, "limit": 10}), _limit_msg("limit", 10, 3))
    ok_result(_query(qdrant, name))
    ok_result(_query(qdrant, name))
    assert_429(_query(qdrant, name), "Read rate limit exceeded: Operation requires 1 tokens")


def test_write_rate_limit(qdrant, collection_name):
    name = collection_name
    _create(qdrant, name, strict={"enabled": True, "write_rate_limit": 10})
    assert_429(_upsert(qdrant, name, range(1, 12)), WRITE_CAPACITY, retry_after=False)   # 11 points > 10
    ok_result(_upsert(qdrant, name, range(1, 11)))
    msg, secs = assert_429(_upsert(qdrant, name, range(1, 11)),
                           "Rate limiting exceeded: Write rate limit exceeded: Operation requires 10 tokens but only 0.")
    assert 50 <= secs <= 60, msg                           # 10 tokens at 10/min
    # reads are not affected
    ok_result(_query(qdrant, name))
    # delete by ids costs one token per id
    _strict(qdrant, name, {"write_rate_limit": 3})
    assert_429(rest(qdrant, "POST", _c("/points/delete", name), {"points": [1, 2, 3, 4]}, params={"wait": "true"}),
               WRITE_CAPACITY, retry_after=False)
    ok_result(rest(qdrant, "POST", _c("/points/delete", name), {"points": [1, 2, 3]}, params={"wait": "true"}))
    # each operation of a batch update is charged separately
    _strict(qdrant, name, {"write_rate_limit": 10})
    op = {"upsert": {"points": [_point(i) for i in range(20, 26)]}}
    assert_429(rest(qdrant, "POST", _c("/points/batch", name), {"operations": [op, op]}, params={"wait": "true"}),
               "Write rate limit exceeded: Operation requires 6 tokens but only 4.")
    _strict(qdrant, name, {"enabled": False})
    for _ in range(3):
        ok_result(_upsert(qdrant, name, range(1, 11)))


def test_read_rate_limit_client(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT),
                             strict_mode_config=models.StrictModeConfig(enabled=True, read_rate_limit=2))
    client.upsert(collection_name, wait=True, points=[models.PointStruct(id=i, vector=_vec(i)) for i in range(1, 6)])
    client.query_points(collection_name, query=V, limit=2)
    client.query_points(collection_name, query=V, limit=2)
    # REST: Retry-After header; gRPC: RESOURCE_EXHAUSTED + `retry-after` metadata -> the client's exception
    with pytest.raises(ResourceExhaustedResponse) as info:
        client.query_points(collection_name, query=V, limit=2)
    assert "Rate limiting exceeded: Read rate limit exceeded: Operation requires 1 tokens but only 0." \
        in info.value.message, info.value.message
    assert 20 <= info.value.retry_after_s <= 30, info.value.retry_after_s
    # over capacity: no retry-after, plain 429 / RESOURCE_EXHAUSTED
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as info:
        client.retrieve(collection_name, ids=[1, 2, 3])
    exc = info.value
    if transport_of(client) == "grpc":
        assert isinstance(exc, grpc.RpcError), exc
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.code()
        assert READ_CAPACITY in exc.details()
    else:
        assert isinstance(exc, UnexpectedResponse), exc
        assert exc.status_code == 429
        assert READ_CAPACITY in exc.content.decode()
