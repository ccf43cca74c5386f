"""Shared helpers: raw REST calls, error-shape assertions, numpy brute force, and a Python
reference evaluator of Qdrant filters (the semantics of Qdrant 1.19's
`lib/segment/src/payload_storage/{query_checker,condition_checker}.rs`)."""

import json
import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone

import grpc
import numpy as np
import pytest
import requests
from qdrant_client.http.exceptions import UnexpectedResponse

HTTP_TIMEOUT = 60


# --------------------------------------------------------------------------------------------
# raw REST
# --------------------------------------------------------------------------------------------

def rest(server, method, path, body=None, raw=None, headers=None, params=None, timeout=HTTP_TIMEOUT):
    """One REST call. `body` is JSON-encoded (allow_nan: NaN becomes the invalid literal NaN),
    `raw` is sent verbatim (bytes/str)."""
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    return requests.request(method, server.url + path, data=data, headers=h, params=params, timeout=timeout)


def ok_result(resp):
    """Assert Qdrant's success envelope {"result": ..., "status": "ok", "time": float} and return result."""
    assert resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:500]}"
    body = resp.json()
    assert body.get("status") == "ok", body
    assert isinstance(body.get("time"), (int, float)), body
    return body.get("result")


def assert_error(resp, status, contains=None, startswith=None):
    """Qdrant error envelope: HTTP `status`, body {"status": {"error": "<msg>"}, "time": ...},
    `result` absent or null (src/actix/helpers.rs / api::grpc::models::ApiResponse)."""
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"error body is not JSON: {resp.text[:300]!r}")
    assert isinstance(body.get("status"), dict), f"no status object in {body}"
    msg = body["status"].get("error")
    assert isinstance(msg, str) and msg, f"no error message in {body}"
    assert body.get("result") is None, body
    if contains is not None:
        assert contains in msg, f"{contains!r} not in error message {msg!r}"
    if startswith is not None:
        assert msg.startswith(startswith), f"error message {msg!r} does not start with {startswith!r}"
    return msg


def raw_http(host, port, request_head: bytes, body: bytes, timeout=30):
    """Send a request over a plain socket, tolerating the server answering (and closing) before the
    whole body was written. Returns (status_code, headers_text, body_bytes)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(request_head)
        try:
            view = memoryview(body)
            for i in range(0, len(body), 65536):
                s.sendall(view[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass
        s.settimeout(timeout)
        chunks = []
        try:
            while True:
                c = s.recv(65536)
                if not c:
                    break
                chunks.append(c)
                data = b"".join(chunks)
                if b"\r\n\r\n" in data:
                    head, rest_ = data.split(b"\r\n\r\n", 1)
                    hl = head.decode("latin1").lower()
                    for line in hl.split("\r\n"):
                        if line.startswith("content-length:"):
                            if len(rest_) >= int(line.split(":", 1)[1]):
                                raise StopIteration
        except StopIteration:
            pass
        except (ConnectionResetError, socket.timeout):
            pass
    data = b"".join(chunks)
    assert data, "server sent no response at all"
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    headers = head.decode("latin1")
    if "transfer-encoding: chunked" in headers.lower():
        payload = _dechunk(payload)
    return status, headers, payload


def _dechunk(data: bytes) -> bytes:
    out, i = [], 0
    while i < len(data):
        j = data.find(b"\r\n", i)
        if j < 0:
            break
        size = int(data[i:j].split(b";")[0], 16)
        if size == 0:
            break
        out.append(data[j + 2:j + 2 + size])
        i = j + 2 + size + 2
    return b"".join(out)


# --------------------------------------------------------------------------------------------
# client errors on either transport
# --------------------------------------------------------------------------------------------

# kind -> (REST status, gRPC status). REST: qdrant-client raises UnexpectedResponse(status_code);
# gRPC: grpc.RpcError with .code(). Qdrant's mapping (src/actix/helpers.rs, src/tonic/api/*):
# StorageError::NotFound 404/NOT_FOUND, BadInput/BadRequest 400/INVALID_ARGUMENT, body validation
# 422 over REST but INVALID_ARGUMENT over gRPC, AlreadyExists 409/ALREADY_EXISTS, missing or wrong
# API key 401/UNAUTHENTICATED, read-only key used for a write 403/PERMISSION_DENIED.
ERROR_KINDS = {
    "not_found": (404, grpc.StatusCode.NOT_FOUND),
    "invalid_argument": (400, grpc.StatusCode.INVALID_ARGUMENT),
    "validation": (422, grpc.StatusCode.INVALID_ARGUMENT),
    "already_exists": (409, grpc.StatusCode.ALREADY_EXISTS),
    "unauthenticated": (401, grpc.StatusCode.UNAUTHENTICATED),
    "permission_denied": (403, grpc.StatusCode.PERMISSION_DENIED),
}


def transport_of(client):
    """"rest" or "grpc" for clients made by conftest (QdrantServer.client)."""
    return client.compat_transport


def error_message(exc):
    """The server's error text: REST JSON status.error (or the plain-text body), gRPC details."""
    if isinstance(exc, grpc.RpcError):
        return exc.details() or ""
    raw = exc.content.decode(errors="replace") if isinstance(exc.content, bytes) else str(exc.content)
    try:
        status = json.loads(raw).get("status")
        if isinstance(status, dict) and isinstance(status.get("error"), str):
            return status["error"]
    except (ValueError, AttributeError):
        pass
    return raw


@contextmanager
def expect_error(client, kind, contains=None):
    """The block must fail the way `client`'s transport reports `kind` (see ERROR_KINDS), with
    `contains` in the message when given. Yields pytest's ExceptionInfo."""
    status, code = ERROR_KINDS[kind]
    with pytest.raises((UnexpectedResponse, grpc.RpcError)) as info:
        yield info
    exc = info.value
    if transport_of(client) == "grpc":
        assert isinstance(exc, grpc.RpcError), f"gRPC client raised {type(exc).__name__}: {exc}"
        assert exc.code() == code, f"expected {code.name}, got {exc.code().name}: {exc.details()!r}"
    else:
        assert isinstance(exc, UnexpectedResponse), f"REST client raised {type(exc).__name__}: {exc}"
        assert exc.status_code == status, f"expected HTTP {status}, got {exc.status_code}: {exc.content[:300]!r}"
    if contains is not None:
        msg = error_message(exc)
        assert contains in msg, f"{contains!r} not in error message {msg!r}"


# --------------------------------------------------------------------------------------------
# waiting
# --------------------------------------------------------------------------------------------

def wait_until(pred, timeout=30.0, interval=0.2, what="condition"):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last={last!r})")


def wait_green(client, name, timeout=60.0):
    """Collection status 'green' = all segments optimized; real Qdrant may pass through 'yellow'."""
    def check():
        info = client.get_collection(name)
        return info if str(getattr(info.status, "value", info.status)) == "green" else None
    return wait_until(check, timeout, what=f"collection {name} to become green")


# --------------------------------------------------------------------------------------------
# vectors
# --------------------------------------------------------------------------------------------

def normalize(v):
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.where(n == 0, 1, n)


def brute_force(distance, data, query, limit, exclude=()):
    """Reference top-`limit` (ids-as-positions, scores) with Qdrant's score conventions:
    Cosine = dot of L2-normalised vectors, Dot = raw dot (both higher-better, descending);
    Euclid = L2 distance, Manhattan = L1 distance (Qdrant returns the distance itself as the score,
    lower-better, ascending). Source: lib/segment/src/spaces/simple*.rs `postprocess`."""
    data = np.asarray(data, dtype=np.float64)
    q = np.asarray(query, dtype=np.float64)
    d = distance.lower()
    if d == "cosine":
        scores = normalize(data) @ normalize(q)
        order = np.argsort(-scores, kind="stable")
    elif d == "dot":
        scores = data @ q
        order = np.argsort(-scores, kind="stable")
    elif d == "euclid":
        scores = np.sqrt(((data - q) ** 2).sum(axis=1))
        order = np.argsort(scores, kind="stable")
    elif d == "manhattan":
        scores = np.abs(data - q).sum(axis=1)
        order = np.argsort(scores, kind="stable")
    else:
        raise ValueError(distance)
    excl = set(exclude)
    order = [i for i in order if i not in excl][:limit]
    return order, [float(scores[i]) for i in order]


def similarity(distance, a, b):
    """Raw similarity as Qdrant's scorers see it for recommendation best_score (vectors as stored)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d = distance.lower()
    if d == "cosine":
        return float(normalize(a) @ normalize(b))
    if d == "dot":
        return float(a @ b)
    raise ValueError(distance)


def scaled_fast_sigmoid(x):
    # lib/common/common/src/math.rs: 0.5 * (x / (1 + |x|) + 1)
    return 0.5 * (x / (1.0 + abs(x)) + 1.0)


# --------------------------------------------------------------------------------------------
# filter reference evaluator (operates on plain-dict filters in Qdrant's JSON shape)
# --------------------------------------------------------------------------------------------

def _parse_path(key):
    """'a.b[].c' / 'arr[]' / 'a[0].b' -> list of ('key', name) | ('all',) | ('idx', n)."""
    items = []
    for part in key.split("."):
        name, rest_ = (part.split("[", 1) + [""])[:2] if "[" in part else (part, "")
        if name:
            items.append(("key", name))
        while rest_:
            inner, rest_ = rest_.split("]", 1)
            items.append(("all",) if inner == "" else ("idx", int(inner)))
            rest_ = rest_[1:] if rest_.startswith("[") else rest_
    return items


def get_values(payload, key):
    """Qdrant JsonPath::value_get: values at the path; `[]` expands arrays; no implicit expansion."""
    cur = [payload]
    for item in _parse_path(key):
        nxt = []
        for v in cur:
            if item[0] == "key":
                if isinstance(v, dict) and item[1] in v:
                    nxt.append(v[item[1]])
            elif item[0] == "all":
                if isinstance(v, list):
                    nxt.extend(v)
            else:
                if isinstance(v, list) and item[1] < len(v):
                    nxt.append(v[item[1]])
        cur = nxt
    return cur


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _parse_dt(s):
    dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def _tokens(text):
    # word tokenizer, lowercase (Qdrant default text index params)
    out, cur = [], []
    for ch in text.lower():
        if ch.isalnum():
            cur.append(ch)
        elif cur:
            out.append("".join(cur))
            cur = []
    if cur:
        out.append("".join(cur))
    return out


def _check_match(m, v):
    if "value" in m:
        want = m["value"]
        if isinstance(want, bool):
            return isinstance(v, bool) and v == want
        if isinstance(want, str):
            return isinstance(v, str) and v == want
        return _is_int(v) and v == want
    if "any" in m:
        lst = m["any"]
        if isinstance(v, str):
            return any(isinstance(x, str) and x == v for x in lst)
        if _is_int(v):
            return any(_is_int(x) and x == v for x in lst)
        return False
    if "except" in m:
        lst = m["except"]
        strings = all(isinstance(x, str) for x in lst)  # `[]` deserialises as the string variant
        if v is None:
            return False
        if isinstance(v, str) and strings:
            return v not in lst
        if _is_num(v) and not strings:
            return not (_is_int(v) and v in lst)
        return True
    if "text" in m:
        # All query tokens must occur among the value's tokens (word tokenizer, lowercase) -- with a
        # default text index, and, since Qdrant 1.19.1 (qdrant/qdrant PR #10341), without an index
        # too (1.19.0 and older did a raw case-sensitive substring test when unindexed).
        if not isinstance(v, str):
            return False
        return set(_tokens(m["text"])) <= set(_tokens(v))
    raise ValueError(m)


def _check_range(r, v):
    def ok(x, conv):
        return ((r.get("gt") is None or x > conv(r["gt"])) and (r.get("gte") is None or x >= conv(r["gte"]))
                and (r.get("lt") is None or x < conv(r["lt"])) and (r.get("lte") is None or x <= conv(r["lte"])))
    bounds = [r.get(k) for k in ("gt", "gte", "lt", "lte") if r.get(k) is not None]
    if bounds and isinstance(bounds[0], str):   # DatetimeRange
        if not isinstance(v, str):
            return False
        try:
            return ok(_parse_dt(v), _parse_dt)
        except ValueError:
            return False
    return _is_num(v) and ok(v, float)


def _check_field(cond, payload):
    values = get_values(payload, cond["key"])
    if "is_empty" in cond and cond["is_empty"] is not None:
        empty = all(v is None or v == [] for v in values)
        return empty == cond["is_empty"]
    if "is_null" in cond and cond["is_null"] is not None:
        null = any(v is None or (isinstance(v, list) and any(x is None for x in v)) for v in values)
        return null == cond["is_null"]
    if not values:
        return False

    def one(v):
        if "match" in cond:
            return _check_match(cond["match"], v)
        if "range" in cond:
            return _check_range(cond["range"], v)
        raise ValueError(cond)

    return any(any(one(x) for x in v) if isinstance(v, list) else one(v) for v in values)


def _check_condition(c, point_id, payload):
    if "has_id" in c:
        return any(normalize_id(x) == point_id for x in c["has_id"])
    if "is_empty" in c and "key" not in c:
        values = get_values(payload, c["is_empty"]["key"])
        return all(v is None or v == [] for v in values)
    if "is_null" in c and "key" not in c:
        values = get_values(payload, c["is_null"]["key"])
        return any(v is None or (isinstance(v, list) and any(x is None for x in v)) for v in values)
    if "nested" in c:
        key, flt = c["nested"]["key"], c["nested"]["filter"]
        return any(isinstance(obj, dict) and eval_filter(flt, None, obj)
                   for obj in get_values(payload, key + "[]"))
    if "key" in c:
        return _check_field(c, payload)
    if any(k in c for k in ("must", "should", "must_not", "min_should")):
        return eval_filter(c, point_id, payload)
    raise ValueError(c)


def _as_list(x):
    if x is None:
        return None
    return x if isinstance(x, list) else [x]


def eval_filter(flt, point_id, payload):
    """True iff the point passes `flt`: all must, >=1 should (when given), min_should.min_count of
    its conditions, no must_not (query_checker.rs check_filter)."""
    payload = payload or {}
    must, should, must_not = _as_list(flt.get("must")), _as_list(flt.get("should")), _as_list(flt.get("must_not"))
    ms = flt.get("min_should")
    if should is not None and not any(_check_condition(c, point_id, payload) for c in should):
        return False
    if ms is not None:
        n = sum(1 for c in ms["conditions"] if _check_condition(c, point_id, payload))
        if n < ms["min_count"]:
            return False
    if must is not None and not all(_check_condition(c, point_id, payload) for c in must):
        return False
    if must_not is not None and any(_check_condition(c, point_id, payload) for c in must_not):
        return False
    return True


def normalize_id(x):
    if isinstance(x, int):
        return x
    return str(uuid.UUID(str(x)))


def expected_ids(points, flt):
    """points: iterable of (id, payload)."""
    return {normalize_id(pid) for pid, payload in points if eval_filter(flt, normalize_id(pid), payload)}


def id_sort_key(pid):
    """Qdrant's ExtendedPointId order: all numeric ids (ascending) before all UUIDs (by bytes)."""
    if isinstance(pid, int):
        return (0, pid, b"")
    return (1, 0, uuid.UUID(pid).bytes)
