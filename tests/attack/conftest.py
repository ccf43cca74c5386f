"""Fixtures of the attack suite: real `qdrant` nodes (ours) on loopback, started as the
compatibility suite starts them (its `QdrantServer`, loaded from tests/compat/conftest.py), with
short client timeouts so that slow-client attacks resolve within seconds.

Every test is bounded by pytest-timeout (default 120 s).
"""

import importlib.util
from pathlib import Path

import pytest

_COMPAT = Path(__file__).resolve().parents[1] / "compat" / "conftest.py"
_spec = importlib.util.spec_from_file_location("compat_conftest", _COMPAT)
compat = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(compat)

QdrantServer = compat.QdrantServer
qdrant_binary = compat.qdrant_binary

# Seconds a client may take over a request head, and may stall its body (see node/src/api/rest/serve.rs).
HEADER_TIMEOUT = 2
BODY_TIMEOUT = 2
DEFAULT_TEST_TIMEOUT_S = 120


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


@pytest.fixture(scope="module")
def node():
    """A node with 1 MiB request bodies and 2 s client timeouts."""
    server = QdrantServer(qdrant_binary(), name="attack", extra_env={
        "QDRANT__SERVICE__MAX_REQUEST_SIZE_MB": "1",
        "QDRANT__SERVICE__HEADER_TIMEOUT_SEC": str(HEADER_TIMEOUT),
        "QDRANT__SERVICE__BODY_TIMEOUT_SEC": str(BODY_TIMEOUT),
    })
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
