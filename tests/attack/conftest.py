"""Fixtures of the attack suite: real `qdrant` nodes (ours) on loopback, started as the
compatibility suite starts them (its `QdrantServer`, loaded from tests/compat/conftest.py), with
short client timeouts so that slow-client attacks resolve within seconds.

Every test is bounded by pytest-timeout (default 120 s, the compatibility suite's hooks).
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

# The compatibility suite's hooks: the timeout marker and its default of 120 s per test.
pytest_configure = compat.pytest_configure
pytest_collection_modifyitems = compat.pytest_collection_modifyitems


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
