"""Attacks on a live node: each sends what a hostile or broken client would, checks the answer is
a clean refusal (4xx with Qdrant's error JSON, a gRPC error status, or a closed connection), and
that the node still serves a normal request afterwards.
"""

import http.client
import json
import socket
import threading
import time
import uuid

import grpc
import pytest
import requests

from conftest import BODY_TIMEOUT, HEADER_TIMEOUT


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def assert_alive(node):
    """The process runs and answers a real request quickly."""
    assert node.process.poll() is None, f"node exited\n{node.log_tail()}"
    r = requests.get(node.url + "/collections", timeout=5)
    assert r.status_code == 200, r.text


def assert_refused(r, *codes):
    assert r.status_code in (codes or (400, 404, 413, 422)), f"{r.status_code}: {r.text[:300]}"
    assert r.status_code < 500
    body = r.json()
    assert body["status"]["error"], body


def raw(node, data: bytes, read_timeout=10.0) -> bytes:
    """Sends `data` on a fresh connection and returns everything read until the server closes or
    `read_timeout` passes."""
    with socket.create_connection(("127.0.0.1", node.http_port), timeout=read_timeout) as s:
        s.sendall(data)
        chunks = []
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
        except socket.timeout:
            pass
        return b"".join(chunks)


def closed_within(sock, seconds) -> float:
    """Seconds until the server closed `sock` (reading and discarding), or fails after `seconds`."""
    started = time.monotonic()
    sock.settimeout(0.2)
    while time.monotonic() - started < seconds:
        try:
            data = sock.recv(65536)
            if not data:
                return time.monotonic() - started
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - started
    raise AssertionError(f"the server kept the connection open for {seconds} s")


@pytest.fixture(scope="module")
def collection(node):
    name = "attack_" + uuid.uuid4().hex[:8]
    r = requests.put(f"{node.url}/collections/{name}", json={"vectors": {"size": 4, "distance": "Cosine"}}, timeout=30)
    assert r.status_code == 200, r.text
    points = [{"id": i, "vector": [1.0, i, 2.0, 3.0], "payload": {"n": i}} for i in range(1, 21)]
    r = requests.put(f"{node.url}/collections/{name}/points?wait=true", json={"points": points}, timeout=30)
    assert r.status_code == 200, r.text
    return name


# ---------------------------------------------------------------------------------------------
# oversized and deeply nested JSON
# ---------------------------------------------------------------------------------------------

def test_an_oversized_body_is_refused(node, collection):
    big = {"points": [{"id": 1, "vector": [0.5] * 4, "payload": {"blob": "x" * (2 * 1024 * 1024)}}]}
    r = requests.put(f"{node.url}/collections/{collection}/points", json=big, timeout=30)
    assert_refused(r, 400, 413)
    assert "max_request_size_mb" in r.text
    assert_alive(node)


def test_a_body_announcing_gigabytes_is_refused_before_it_is_sent(node, collection):
    head = (f"PUT /collections/{collection}/points HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{").encode()
    started = time.monotonic()
    answer = raw(node, head, read_timeout=10)
    assert answer.startswith(b"HTTP/1.1 4"), answer[:200]
    assert time.monotonic() - started < 5
    assert_alive(node)


def nested(depth, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


@pytest.mark.parametrize("depth", [64, 127, 129, 1000, 100_000])
def test_deeply_nested_payloads_are_refused_or_stored(node, collection, depth):
    body = '{"points": [{"id": 1, "vector": [1, 2, 3, 4], "payload": {"deep": ' + "[" * depth + "1" + "]" * depth + "}}]}"
    r = requests.put(f"{node.url}/collections/{collection}/points?wait=true", data=body,
                     headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code < 500, r.text[:300]
    if depth > 128:
        assert_refused(r, 400)
    # Whatever was stored can be read back, filtered on and overwritten.
    r = requests.post(f"{node.url}/collections/{collection}/points/scroll",
                      json={"filter": {"must": [{"key": "deep", "match": {"value": 1}}]}, "with_payload": True}, timeout=30)
    assert r.status_code == 200, r.text[:300]
    assert_alive(node)


def nested_filter(depth):
    f = {"key": "n", "match": {"value": 1}}
    for i in range(depth):
        f = {"must": [f]} if i % 2 else {"should": [f], "must_not": [{"is_empty": {"key": "n"}}]}
    return f


@pytest.mark.parametrize("depth", [10, 40, 60, 200])
def test_deeply_nested_filters_are_answered_or_refused(node, collection, depth):
    for path in ("points/scroll", "points/count", "points/query"):
        r = requests.post(f"{node.url}/collections/{collection}/{path}", json={"filter": nested_filter(depth)}, timeout=60)
        assert r.status_code < 500, f"{path} depth {depth}: {r.status_code} {r.text[:300]}"
    assert_alive(node)


def test_malformed_json_bodies_are_refused(node, collection):
    for body in [b"{", b"\xff\xfe\x00", b'{"points": [' + b"1," * 100000, b"[]" * 1000, b'{"filter": {"must": "\x00"}}',
                 b'{"limit": 1e400}', b'{"limit": -1}', b'{"limit": 18446744073709551616}', b'{"offset": "\\ud800"}']:
        r = requests.post(f"{node.url}/collections/{collection}/points/scroll", data=body,
                          headers={"content-type": "application/json"}, timeout=30)
        assert_refused(r, 400, 422)
    assert_alive(node)


def test_huge_limits_do_not_allocate_what_they_ask_for(node, collection):
    for path, body in [("points/scroll", {"limit": 4_000_000_000}),
                       ("points/query", {"query": [1, 1, 1, 1], "limit": 4_000_000_000}),
                       ("points/query", {"query": [1, 1, 1, 1], "limit": 10, "offset": 4_000_000_000}),
                       ("points/query", {"query": [1, 1, 1, 1], "params": {"hnsw_ef": 4_000_000_000}}),
                       ("points/search/matrix/pairs", {"sample": 4_000_000_000, "limit": 4_000_000_000}),
                       ("facet", {"key": "n", "limit": 4_000_000_000}),
                       ("points/scroll?consistency=556622", {"limit": 1}),  # a factor above the replicas: all of them
                       ("points?consistency=2058758918879", {"ids": [1, 2]}),
                       ("points/query/groups", {"query": [1, 1, 1, 1], "group_by": "n", "limit": 4_000_000_000, "group_size": 4_000_000_000})]:
        r = requests.post(f"{node.url}/collections/{collection}/{path}", json=body, timeout=60)
        assert r.status_code < 500, f"{path}: {r.status_code} {r.text[:300]}"
    assert_alive(node)


# ---------------------------------------------------------------------------------------------
# slow clients
# ---------------------------------------------------------------------------------------------

def test_a_silent_connection_is_closed_after_the_header_timeout(node):
    with socket.create_connection(("127.0.0.1", node.http_port)) as s:
        took = closed_within(s, HEADER_TIMEOUT + 5)
    assert took >= HEADER_TIMEOUT - 0.5


def test_trickled_headers_slowloris_are_cut_off_and_others_still_served(node):
    stop = threading.Event()
    sockets = [socket.create_connection(("127.0.0.1", node.http_port)) for _ in range(64)]

    def trickle():
        head = b"GET /collections HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"a" * 10_000
        for i in range(len(head)):
            if stop.is_set():
                return
            for s in sockets:
                try:
                    s.send(head[i:i + 1])
                except OSError:
                    pass
            time.sleep(0.1)

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        # Normal clients are served while the slow ones are attached.
        for _ in range(10):
            started = time.monotonic()
            assert requests.get(node.url + "/collections", timeout=5).status_code == 200
            assert time.monotonic() - started < 1.0
        for s in sockets:
            closed_within(s, HEADER_TIMEOUT + 5)
    finally:
        stop.set()
        for s in sockets:
            s.close()
    assert_alive(node)


def test_an_idle_keep_alive_connection_is_closed(node):
    with socket.create_connection(("127.0.0.1", node.http_port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        closed_within(s, HEADER_TIMEOUT + 5)


@pytest.mark.parametrize("style", ["stalled", "trickled"])
def test_a_slow_body_is_cut_off(node, collection, style):
    body = json.dumps({"points": [{"id": 1, "vector": [1, 2, 3, 4]}]}).encode()
    with socket.create_connection(("127.0.0.1", node.http_port)) as s:
        s.sendall((f"PUT /collections/{collection}/points HTTP/1.1\r\nHost: x\r\n"
                   f"Content-Type: application/json\r\nContent-Length: {len(body) + 1_000_000}\r\n\r\n").encode() + body[:10])
        started = time.monotonic()
        answer = b""
        s.settimeout(0.2)
        while time.monotonic() - started < BODY_TIMEOUT * 4 + 5:
            if style == "trickled":
                try:
                    s.send(b" ")
                except OSError:
                    break
            try:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
            except socket.timeout:
                continue
            except ConnectionResetError:
                break
        else:
            raise AssertionError(f"the {style} body held the connection for {time.monotonic() - started:.1f} s")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), answer[:300]
    assert_alive(node)


# ---------------------------------------------------------------------------------------------
# malformed protobuf
# ---------------------------------------------------------------------------------------------

GRPC_METHODS = [
    "/qdrant.Points/Upsert", "/qdrant.Points/Search", "/qdrant.Points/Query", "/qdrant.Points/Scroll",
    "/qdrant.Points/Delete", "/qdrant.Collections/Create", "/qdrant.Collections/Get",
    "/qdrant.Collections/UpdateAliases", "/qdrant.Snapshots/Create", "/qdrant.Qdrant/HealthCheck",
]

GARBAGE = [
    b"\xff" * 64,                                  # invalid varints
    b"\x0a\xff\xff\xff\xff\x0f",                   # a length far beyond the message
    b"\x0a\x05abc",                                # a truncated string
    b"\x12" + b"\x80" * 20,                        # an over-long varint
    bytes(range(256)) * 16,                        # everything
    b"\x1a\x02\x08" * 5000,                        # repeated broken sub-messages
]


def nested_protobuf(depth):
    """A message nesting field 1 (length-delimited) `depth` times: recursion the decoder must bound."""
    msg = b"\x08\x01"
    for _ in range(depth):
        msg = b"\x0a" + _varint(len(msg)) + msg
    return msg


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_malformed_protobuf_is_refused_with_a_grpc_error(node, collection):
    with grpc.insecure_channel(f"127.0.0.1:{node.grpc_port}") as channel:
        for method in GRPC_METHODS:
            call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
            for payload in GARBAGE + [nested_protobuf(200), nested_protobuf(5000)]:
                try:
                    call(payload, timeout=10)
                except grpc.RpcError as e:
                    assert e.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.INTERNAL,
                                        grpc.StatusCode.NOT_FOUND), f"{method}: {e.code()} {e.details()}"
        # A well-formed call on the same channel still works.
        from qdrant_client.grpc import qdrant_pb2, qdrant_pb2_grpc
        reply = qdrant_pb2_grpc.QdrantStub(channel).HealthCheck(qdrant_pb2.HealthCheckRequest(), timeout=10)
        assert reply.title
    assert_alive(node)


# ---------------------------------------------------------------------------------------------
# path traversal in snapshot names
# ---------------------------------------------------------------------------------------------

TRAVERSALS = ["..%2F..%2F..%2Fetc%2Fpasswd", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "..", "../../../../etc/passwd", "%2E%2E", "..%5C..%5Cwindows",
              "%2Fetc%2Fpasswd", "x%00.snapshot", "..%2Fstorage%2Fraft_state.json", "....%2F%2F....%2F%2Fetc%2Fpasswd"]


def as_sent(node, method, path):
    """(status, body) of `method path` sent exactly as written (clients would resolve `..`)."""
    conn = http.client.HTTPConnection("127.0.0.1", node.http_port, timeout=10)
    try:
        conn.request(method, path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def test_snapshot_names_cannot_leave_the_snapshot_directory(node, collection):
    for name in TRAVERSALS:
        for path in (f"/collections/{collection}/snapshots/{name}", f"/snapshots/{name}",
                     f"/collections/{collection}/shards/0/snapshots/{name}"):
            status, body = as_sent(node, "GET", path)
            assert status in (400, 404), f"GET {path}: {status}"
            assert b"root:" not in body
            status, _ = as_sent(node, "DELETE", path)
            assert status in (400, 404), f"DELETE {path}: {status}"
    assert (node.storage_path).exists()
    assert_alive(node)


def test_recovery_locations_cannot_read_arbitrary_files(node, collection):
    for location in ["file:///etc/passwd", f"file://{node.storage_path}/../node.log", "file://../../etc/passwd",
                     "/etc/passwd", "../../etc/passwd", "ftp://127.0.0.1/x", "gopher://127.0.0.1:70/x"]:
        for path in ("snapshots/recover", "shards/0/snapshots/recover"):
            r = requests.put(f"{node.url}/collections/{collection}/{path}?wait=true", json={"location": location}, timeout=30)
            assert_refused(r, 400, 403, 404, 422)
            assert b"root:" not in r.content
    r = requests.post(f"{node.url}/collections/{collection}/points/count", json={}, timeout=10)
    assert r.json()["result"]["count"] == 20, "a refused recovery touched the collection"
    assert_alive(node)


def test_an_uploaded_snapshot_name_cannot_place_a_file_outside(node, collection):
    for filename in ["../../escaped.snapshot", "/tmp/escaped.snapshot", "..\\..\\escaped.snapshot"]:
        r = requests.post(f"{node.url}/collections/{collection}/snapshots/upload?wait=true",
                          files={"snapshot": (filename, b"not a tar archive")}, timeout=30)
        assert_refused(r, 400, 422)
    assert not (node.root / "escaped.snapshot").exists()
    assert not (node.root.parent / "escaped.snapshot").exists()
    assert_alive(node)


# ---------------------------------------------------------------------------------------------
# header injection
# ---------------------------------------------------------------------------------------------

def test_names_with_line_breaks_do_not_inject_response_headers(node, collection):
    for path in [f"/collections/x%0D%0AX-Injected:%20yes", f"/collections/{collection}/snapshots/a%0D%0AX-Injected:%20yes.snapshot",
                 f"/snapshots/a%0AX-Injected:yes", f"/collections/{collection}/points/1%0D%0AX-Injected:%20yes",
                 f"/collections?x=%0D%0AX-Injected:%20yes"]:
        r = requests.get(node.url + path, timeout=10)
        assert "X-Injected" not in r.headers, path
        assert r.status_code < 500, f"{path}: {r.status_code}"


def test_malformed_request_heads_are_refused(node):
    for head in [
        b"GET / HTTP/1.1\r\nHost: x\r\napi-key: a\r\n b\r\n\r\n",               # obsolete line folding
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",                     # bare CR in a value
        b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",  # smuggling
        b"POST /collections HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
        b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n" + b"X-Many: y\r\n" * 500 + b"\r\n",  # too many headers
        b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 2_000_000 + b"\r\n\r\n",  # an oversized head
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,       # a TLS hello on the plain port
    ]:
        answer = raw(node, head, read_timeout=HEADER_TIMEOUT + 5)
        # 505 is the answer to an unknown HTTP version.
        assert answer == b"" or answer[:10] in (b"HTTP/1.1 4", b"HTTP/1.1 2") or answer.startswith(b"HTTP/1.1 505"), \
            (head[:60], answer[:200])
    assert_alive(node)


def test_api_keys_with_control_characters_are_refused_not_crashed(node_with_key):
    node = node_with_key
    for key in [b"secret\x00", b"secret\x7f", b"s" * 100_000, b"\xff\xfe", b"secret, secret"]:
        head = b"GET /collections HTTP/1.1\r\nHost: x\r\napi-key: " + key + b"\r\n\r\n"
        answer = raw(node, head, read_timeout=HEADER_TIMEOUT + 5)
        assert answer == b"" or answer.startswith(b"HTTP/1.1 4"), (key[:20], answer[:200])
    r = requests.get(node.url + "/collections", headers={"api-key": "secret"}, timeout=5)
    assert r.status_code == 200
    r = requests.get(node.url + "/collections", headers={"Authorization": "Bearer " + "a" * 10_000}, timeout=5)
    assert r.status_code == 401


@pytest.fixture(scope="module")
def node_with_key():
    from conftest import QdrantServer, qdrant_binary
    server = QdrantServer(qdrant_binary(), name="attack-key", extra_env={
        "QDRANT__SERVICE__API_KEY": "secret",
        "QDRANT__SERVICE__HEADER_TIMEOUT_SEC": str(HEADER_TIMEOUT),
    })
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


# ---------------------------------------------------------------------------------------------
# state a refused request must not leave behind (found by the fuzz run)
# ---------------------------------------------------------------------------------------------

def test_a_refused_payload_index_leaves_the_collection_usable(node, collection):
    for field in ["\U000f7f72G\x1a", "a..b", "", "a[", "$"]:
        r = requests.put(f"{node.url}/collections/{collection}/index?wait=true",
                         json={"field_name": field, "field_schema": "keyword"}, timeout=10)
        assert_refused(r, 400, 422)
    # A change of the vectors reopens the shards with their indexes; then a restart.
    r = requests.put(f"{node.url}/collections/{collection}/vectors/extra?wait=true", json={"sparse": {}}, timeout=30)
    assert r.status_code == 200, r.text
    node.restart(kill9=False)
    r = requests.get(f"{node.url}/collections/{collection}/cluster", timeout=10)
    assert len(r.json()["result"]["local_shards"]) == 1, r.text
    r = requests.post(f"{node.url}/collections/{collection}/points/count", json={}, timeout=10)
    assert r.status_code == 200 and r.json()["result"]["count"] == 20, r.text


def test_snapshots_created_at_once_all_succeed(node, collection):
    results = []

    def create():
        results.append(requests.post(f"{node.url}/collections/{collection}/snapshots?wait=true", timeout=60))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results), [r.text for r in results]
    names = {r.json()["result"]["name"] for r in results}
    assert len(names) == 4, names
    listed = requests.get(f"{node.url}/collections/{collection}/snapshots", timeout=10).json()["result"]
    assert names <= {s["name"] for s in listed}


def test_huge_index_parameters_are_refused_or_bounded(node, collection):
    url = f"{node.url}/collections/{collection}"
    r = requests.patch(url, json={"hnsw_config": {"m": 3600791748174344}}, timeout=30)
    assert_refused(r, 400, 422)
    # A huge ef_construct is Qdrant's to accept; the graph never sizes anything by it.
    r = requests.patch(url, json={"hnsw_config": {"ef_construct": 10 ** 12}}, timeout=60)
    assert r.status_code < 500, r.text
    r = requests.post(f"{url}/points/query", json={"query": [1, 1, 1, 1], "limit": 3}, timeout=30)
    assert r.status_code == 200 and len(r.json()["result"]["points"]) == 3, r.text
    requests.patch(url, json={"hnsw_config": {"ef_construct": 100}}, timeout=60)
    assert_alive(node)
