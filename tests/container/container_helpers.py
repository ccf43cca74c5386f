"""Helpers of the container suite: the docker CLI with labelled, always-cleaned-up resources, a
small Qdrant REST client and deterministic test data.

Every container, network and volume made here carries the label `qdrant-container-test=<run id>`
(and the pid of the run), so `run.sh` can remove whatever a crashed or timed-out run left behind.
The test talks to the containers only through ports published on 127.0.0.1; the containers talk to
each other on private Docker networks this suite creates.
"""

import json
import os
import random
import subprocess
import time
import uuid

import requests

LABEL = "qdrant-container-test"
RUN_ID = os.environ.get("QDRANT_CT_RUN_ID") or f"py{os.getpid()}-{uuid.uuid4().hex[:6]}"
RUN_PID = os.environ.get("QDRANT_CT_RUN_PID") or str(os.getpid())
HTTP_TIMEOUT = 10


class DockerError(RuntimeError):
    pass


def docker(*args, check=True, timeout=120, input=None):
    """Run `docker ARGS`; returns stdout (stripped). Raises DockerError with stderr on failure."""
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise DockerError(f"docker {' '.join(args)} -> {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def labels():
    return ["--label", f"{LABEL}={RUN_ID}", "--label", f"{LABEL}.pid={RUN_PID}"]


class Resources:
    """Creates docker objects under this run's label and removes them (idempotently) on cleanup."""

    def __init__(self, prefix):
        self.prefix = f"qct-{RUN_ID}-{prefix}"
        self.containers, self.networks, self.volumes = [], [], []

    def name(self, suffix):
        return f"{self.prefix}-{suffix}"

    def volume(self, suffix):
        name = self.name(suffix)
        docker("volume", "create", *labels(), name)
        self.volumes.append(name)
        return name

    def network(self, suffix, internal=False, icc=True):
        name = self.name(suffix)
        args = ["network", "create", "--driver", "bridge", *labels()]
        if internal:
            args.append("--internal")
        if not icc:
            args += ["-o", "com.docker.network.bridge.enable_icc=false"]
        docker(*args, name)
        self.networks.append(name)
        return name

    def create_container(self, suffix, image, args=(), run_opts=()):
        name = self.name(suffix)
        docker("create", "--name", name, *labels(), *run_opts, image, *args)
        self.containers.append(name)
        return name

    def cleanup(self):
        errors = []
        for c in reversed(self.containers):
            r = subprocess.run(["docker", "rm", "-f", "-v", c], capture_output=True, text=True)
            if r.returncode != 0 and "No such container" not in r.stderr:
                errors.append(r.stderr.strip())
        for n in reversed(self.networks):
            r = subprocess.run(["docker", "network", "rm", n], capture_output=True, text=True)
            if r.returncode != 0 and "not found" not in r.stderr:
                errors.append(r.stderr.strip())
        for v in reversed(self.volumes):
            r = subprocess.run(["docker", "volume", "rm", "-f", v], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append(r.stderr.strip())
        self.containers, self.networks, self.volumes = [], [], []
        return errors


def published_url(container, port=6333):
    """http://127.0.0.1:<host port> of a port the container published on loopback."""
    out = docker("port", container, f"{port}/tcp")
    for line in out.splitlines():
        host, _, hport = line.rpartition(":")
        if host in ("127.0.0.1", "0.0.0.0"):
            return f"http://127.0.0.1:{hport}"
    raise DockerError(f"{container} publishes no loopback port for {port}: {out!r}")


def container_state(container):
    return json.loads(docker("inspect", "-f", "{{json .State}}", container))


def logs(container, tail=80):
    r = subprocess.run(["docker", "logs", "--tail", str(tail), container], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


# ---------------------------------------------------------------------------------------------
# REST
# ---------------------------------------------------------------------------------------------

class Rest:
    """Minimal Qdrant REST client bound to one base URL (a published loopback port)."""

    def __init__(self, base):
        self.base = base.rstrip("/")

    def call(self, method, path, body=None, params=None, timeout=HTTP_TIMEOUT):
        return requests.request(method, self.base + path, json=body, params=params, timeout=timeout)

    def ok(self, method, path, body=None, params=None, timeout=HTTP_TIMEOUT):
        r = self.call(method, path, body, params, timeout)
        if r.status_code != 200:
            raise AssertionError(f"{method} {path} -> HTTP {r.status_code}: {r.text[:400]}")
        doc = r.json()
        if isinstance(doc, dict) and "result" in doc:
            return doc["result"]
        return doc

    def is_ready(self, path="/readyz"):
        try:
            return self.call("GET", path, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    # --- collections and points ---
    def create_collection(self, name, dim, **extra):
        body = {"vectors": {"size": dim, "distance": "Cosine"}, **extra}
        return self.ok("PUT", f"/collections/{name}", body, params={"timeout": 30}, timeout=40)

    def upsert(self, name, points, wait=True, timeout=HTTP_TIMEOUT):
        return self.ok("PUT", f"/collections/{name}/points", {"points": points},
                       params={"wait": str(wait).lower()}, timeout=timeout)

    def search(self, name, vector, limit=5, exact=False):
        # exact=True when results of different replicas are compared: each replica builds its
        # own HNSW graph, so approximate neighbours beyond the first may legitimately differ.
        return self.ok("POST", f"/collections/{name}/points/search",
                       {"vector": vector, "limit": limit, "with_payload": True,
                        "params": {"exact": exact}})

    def count(self, name):
        return self.ok("POST", f"/collections/{name}/points/count", {"exact": True})["count"]

    def retrieve(self, name, ids):
        got = []
        for i in range(0, len(ids), 256):
            got += self.ok("POST", f"/collections/{name}/points",
                           {"ids": ids[i:i + 256], "with_payload": True, "with_vector": True}, timeout=30)
        return got

    def cluster(self):
        return self.ok("GET", "/cluster")


def wait_until(predicate, timeout, interval=0.2, what="condition"):
    """Poll `predicate` until it returns a truthy value; AssertionError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # noqa: BLE001 - keep polling; report the last error on timeout
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc})" if last_exc else ""))
        time.sleep(interval)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

DIM = 8


def vector_for(point_id):
    """Deterministic unit-ish vector per id: the same id always gets the same vector."""
    rnd = random.Random(point_id * 7919 + 17)
    return [round(rnd.uniform(-1.0, 1.0), 6) for _ in range(DIM)]


def make_points(ids, tag):
    return [{"id": i, "vector": vector_for(i), "payload": {"tag": tag, "n": i}} for i in ids]


def assert_points_intact(rest, collection, expected):
    """Every id of `expected` ({id: tag}) is stored with its vector and payload."""
    ids = sorted(expected)
    got = {p["id"]: p for p in rest.retrieve(collection, ids)}
    missing = [i for i in ids if i not in got]
    assert not missing, f"{len(missing)} acknowledged points lost, e.g. {missing[:10]}"
    for i in ids:
        p = got[i]
        assert p["payload"] == {"tag": expected[i], "n": i}, (i, p["payload"])
        vec = p["vector"]
        if isinstance(vec, dict):  # unnamed vector may come back as {"": [...]}
            vec = next(iter(vec.values()))
        want = vector_for(i)
        # Cosine collections store normalised vectors: compare directions.
        norm = sum(x * x for x in want) ** 0.5
        assert all(abs(a - b / norm) < 1e-4 for a, b in zip(vec, want)) or \
            all(abs(a - b) < 1e-4 for a, b in zip(vec, want)), (i, vec, want)
