"""Fixtures of the container end-to-end suite (see tests/container/README.md).

  * `image`        the node image under test (QDRANT_NODE_IMAGE, default qdrant-node:dev); built by
                   run.sh through scripts/image.sh, never pulled.
  * `resources`    a per-test `Resources`: containers, networks and volumes removed after the test,
                   whatever its outcome.
  * `node_factory` starts a single node container like a user would (`docker run -v VOL:/qdrant/storage`)
                   with a Kubernetes-like hardened security context; returns a `Node` handle.
  * `metrics`      records timings (time to a healthy container, ...) into $QDRANT_CT_METRICS.

Markers: `cluster` = the 3-container cluster test (needs the node's cluster mode); run.sh deselects
it unless asked (`run.sh --cluster`).
"""

import json
import os
import time

import pytest

from container_helpers import (DockerError, Resources, Rest, container_state, docker, logs,
                               published_url, wait_until)

DEFAULT_IMAGE = "qdrant-node:dev"
DEFAULT_TEST_TIMEOUT_S = 240
READY_TIMEOUT_S = float(os.environ.get("QDRANT_CT_READY_TIMEOUT", "60"))


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: 3-container cluster test (needs cluster mode); run.sh --cluster")
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


@pytest.fixture(scope="session")
def image():
    name = os.environ.get("QDRANT_NODE_IMAGE", DEFAULT_IMAGE)
    try:
        docker("image", "inspect", name)
    except DockerError:
        pytest.fail(f"image {name} does not exist: build it with scripts/image.sh node (run.sh does)")
    return name


@pytest.fixture(scope="session")
def metrics():
    path = os.environ.get("QDRANT_CT_METRICS")
    data = {}
    yield data
    if path and data:
        existing = {}
        if os.path.exists(path):
            with open(path) as f:
                existing = json.load(f)
        existing.update(data)
        with open(path, "w") as f:
            json.dump(existing, f, indent=2, sort_keys=True)


@pytest.fixture
def resources(request):
    res = Resources(request.node.name.replace("[", "-").replace("]", "")[:40].lower().replace("_", "-"))
    yield res
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        for c in res.containers:
            try:
                print(f"\n----- logs of {c} -----\n{logs(c)}")
            except Exception:  # noqa: BLE001 - diagnostics only
                pass
    errors = res.cleanup()
    assert not errors, f"cleanup failed: {errors}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


# Kubernetes-like hardening, as the operator's pod spec runs the image: read-only root filesystem,
# no capabilities, no privilege escalation; writable storage volume, snapshots and /tmp as emptyDirs.
HARDENED = [
    "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
    "--tmpfs", "/tmp:rw,mode=1777",
    "--tmpfs", "/qdrant/snapshots:rw,uid=1000,gid=1000,mode=0750",
]


class Node:
    """One node container with a named storage volume, reachable at a loopback port."""

    def __init__(self, resources, image, suffix, volume, env=(), args=()):
        self.resources = resources
        self.image = image
        self.suffix = suffix
        self.volume = volume
        opts = ["-p", "127.0.0.1::6333", "-p", "127.0.0.1::6334", "-v", f"{volume}:/qdrant/storage",
                *HARDENED]
        for e in env:
            opts += ["-e", e]
        self.name = resources.create_container(suffix, image, args, opts)
        self.rest = None

    def start(self, ready_timeout=READY_TIMEOUT_S):
        """Start; returns seconds until GET /readyz answered 200."""
        t0 = time.monotonic()
        docker("start", self.name)
        self.rest = Rest(published_url(self.name))  # host port may change across restarts
        try:
            wait_until(self.rest.is_ready, ready_timeout, interval=0.05, what=f"{self.name} /readyz")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; state={container_state(self.name)}\n{logs(self.name)}") from None
        return time.monotonic() - t0

    def state(self):
        return container_state(self.name)


@pytest.fixture
def node_factory(resources, image):
    def make(suffix="node", volume=None, env=(), args=()):
        vol = volume or resources.volume(f"{suffix}-storage")
        return Node(resources, image, suffix, vol, env, args)
    return make
