"""A minimal JSON-over-HTTP client for the harness, and how a response becomes an outcome.

One new connection per call (stdlib http.client): after a partition or a kill a pooled
connection could hang on a dead socket, and a fresh one costs little on the private bridge.
"""

import http.client
import json
import socket

OK = "ok"            # 2xx: the operation happened as answered
FAILED = "failed"    # a definite error (4xx other than 408), or the connection was refused
UNKNOWN = "unknown"  # timeout, connection error, 408 or 5xx: it may or may not have happened

PORT = 6333


def classify(status):
    """The outcome of an HTTP status. 408 is the node's "bounded wait ran out": indefinite."""
    if status is None:
        return UNKNOWN
    if 200 <= status < 300:
        return OK
    if status == 408 or status == 429 or status >= 500:
        return UNKNOWN
    return FAILED


class Reply:
    """What one call produced: an outcome, the HTTP status (None without one), the parsed body's
    `result` (or the whole body when it has none) and an error text."""

    __slots__ = ("outcome", "status", "result", "error")

    def __init__(self, outcome, status=None, result=None, error=None):
        self.outcome, self.status, self.result, self.error = outcome, status, result, error

    def __repr__(self):
        return f"Reply({self.outcome}, {self.status}, {self.error or self.result!r:.200})"


def call(host, method, path, body=None, timeout=10.0, port=PORT):
    """One request; never raises for network or HTTP errors (they become the outcome)."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"content-type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        status = resp.status
    except ConnectionRefusedError as e:
        # Refused at connect: the request never reached a server (the node is down).
        return Reply(FAILED, None, None, f"{type(e).__name__}: {e}")
    except (OSError, socket.timeout, http.client.HTTPException) as e:
        return Reply(UNKNOWN, None, None, f"{type(e).__name__}: {e}")
    finally:
        conn.close()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    outcome = classify(status)
    if outcome == OK:
        result = parsed.get("result") if isinstance(parsed, dict) and "result" in parsed else parsed
        return Reply(OK, status, result)
    error = parsed.get("status", {}).get("error") if isinstance(parsed, dict) and isinstance(
        parsed.get("status"), dict) else parsed
    return Reply(outcome, status, None, str(error)[:300])
