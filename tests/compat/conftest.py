"""Fixtures for the Qdrant compatibility suite (REST and gRPC).

Every test talks to a real `qdrant` binary (ours) started here, on loopback only, with free ports
and a fresh temp directory as cwd / storage.  Configuration is passed the way deployments and
Qdrant's own test-suites do it: through `QDRANT__SECTION__KEY` environment variables.

Fixtures:
  * `qdrant`          – one session-wide server shared by most tests (tests use unique names).
  * `qdrant_factory`  – start extra servers with custom env (API key, request-size limit, restart
                        tests); they are stopped and their temp dirs removed at the end of the test.
  * `transport`       – "rest" or "grpc"; parametrizes every test that asks for it (ids `[rest]` /
                        `[grpc]`): `-k grpc` selects the gRPC half, `-k "not grpc"` the REST half
                        (`-k rest` would also match test_restart.py's gRPC runs).
  * `client`          – a `qdrant_client.QdrantClient` bound to `qdrant` over `transport`: REST
                        (`prefer_grpc=False`) or gRPC (`prefer_grpc=True`, the server's gRPC port).
                        Every test that goes through `QdrantClient` therefore runs over both.
  * `rest_client`     – a REST-only client, for the set-up of tests that check REST-specific
                        behaviour with raw HTTP (status codes, error JSON, headers, raw shapes).
  * `collection_name` – a unique collection name, deleted after the test.

Clients made here carry `compat_transport` ("rest"/"grpc"), which `compat_helpers.expect_error`
uses to check the transport's error form.

Per-test timeouts come from pytest-timeout (default 120 s, `@pytest.mark.timeout(N)` overrides);
the `slow` marker selects the long-running tests (`-m slow`), which still run by default.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / "target" / "release" / "qdrant"
READY_TIMEOUT_S = float(os.environ.get("QDRANT_COMPAT_READY_TIMEOUT", "30"))
DEFAULT_TEST_TIMEOUT_S = 120
TRANSPORTS = ["rest", "grpc"]


# --------------------------------------------------------------------------------------------
# pytest hooks: markers and default per-test timeout (works without any ini file)
# --------------------------------------------------------------------------------------------

def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running test (HNSW recall); runs by default, select with -m slow")
    config.addinivalue_line("markers", "timeout(seconds): per-test timeout (pytest-timeout)")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_TEST_TIMEOUT_S))


# --------------------------------------------------------------------------------------------
# server handle
# --------------------------------------------------------------------------------------------

def qdrant_binary() -> Path:
    return Path(os.environ.get("QDRANT_BIN", str(DEFAULT_BIN)))


def free_ports(n: int) -> list:
    """n distinct free TCP ports on 127.0.0.1 (sockets held open until all are chosen)."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class QdrantServer:
    """A `qdrant` process in its own temp dir. `url`, `port`, `storage_path`, `log_path`, `process`."""

    def __init__(self, binary: Path, extra_env: dict | None = None, name: str = "node"):
        self.binary = Path(binary)
        self.name = name
        self.root = Path(tempfile.mkdtemp(prefix=f"qdrant-compat-{name}-"))
        self.workdir = self.root / "work"           # cwd of the process
        self.storage_path = self.root / "storage"
        self.snapshots_path = self.root / "snapshots"
        self.log_path = self.root / "node.log"
        self.workdir.mkdir()
        self.http_port, self.grpc_port, self.p2p_port = free_ports(3)
        self.port = self.http_port
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.extra_env = dict(extra_env or {})
        self.args: list[str] = []                  # command-line arguments of the next start
        self.process: subprocess.Popen | None = None
        self._log_file = None
        self.starts = 0

    # -- environment ---------------------------------------------------------------------
    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("QDRANT__") and k not in ("QDRANT_URI", "QDRANT_BOOTSTRAP", "RUN_MODE")}
        env.update({
            "QDRANT__SERVICE__HOST": "127.0.0.1",
            "QDRANT__SERVICE__HTTP_PORT": str(self.http_port),
            "QDRANT__SERVICE__GRPC_PORT": str(self.grpc_port),
            "QDRANT__CLUSTER__P2P__PORT": str(self.p2p_port),
            "QDRANT__STORAGE__STORAGE_PATH": str(self.storage_path),
            "QDRANT__STORAGE__SNAPSHOTS_PATH": str(self.snapshots_path),
            # never phone home; the endpoint /telemetry must keep working regardless
            "QDRANT__TELEMETRY_DISABLED": "true",
            "QDRANT__LOG_LEVEL": os.environ.get("QDRANT_COMPAT_LOG_LEVEL", "INFO"),
        })
        env.update(self.extra_env)
        return env

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = READY_TIMEOUT_S):
        if not self.binary.is_file() or not os.access(self.binary, os.X_OK):
            pytest.fail(f"qdrant binary not found or not executable: {self.binary} "
                        f"(build it with `cargo build --release -p node` or set QDRANT_BIN)", pytrace=False)
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== start #{self.starts + 1} =====\n".encode())
        self._log_file.flush()
        self.process = subprocess.Popen(
            [str(self.binary), *self.args], cwd=self.workdir, env=self.env(),
            stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.starts += 1
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            rc = self.process.poll()
            if rc is not None:
                pytest.fail(f"qdrant ({self.name}) exited with code {rc} before /readyz answered 200\n"
                            f"--- log {self.log_path} ---\n{self.log_tail()}", pytrace=False)
            try:
                r = requests.get(self.url + "/readyz", timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as e:
                last = f"{type(e).__name__}"
            time.sleep(0.1)
        self.stop(kill9=True)
        pytest.fail(f"qdrant ({self.name}) not ready within {timeout:.0f}s (last /readyz: {last})\n"
                    f"--- log {self.log_path} ---\n{self.log_tail()}", pytrace=False)

    def stop(self, kill9: bool = False, grace: float = 10.0):
        p = self.process
        if p is not None and p.poll() is None:
            try:
                if kill9:
                    p.kill()
                else:
                    p.terminate()
                    try:
                        p.wait(timeout=grace)
                    except subprocess.TimeoutExpired:
                        p.kill()
                p.wait(timeout=10)
            except ProcessLookupError:
                pass
        # anything the node itself spawned in its session (it should spawn nothing)
        if p is not None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self, kill9: bool = True, timeout: float = READY_TIMEOUT_S):
        """Stop (SIGKILL by default, i.e. no graceful flush) and start again on the same storage/ports."""
        self.stop(kill9=kill9)
        return self.start(timeout)

    def cleanup(self):
        self.stop(kill9=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 80) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def client(self, transport: str = "rest", **kwargs):
        """A QdrantClient over `transport` ("rest" or "grpc"); kwargs go to QdrantClient."""
        from qdrant_client import QdrantClient
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r}")
        kwargs.setdefault("timeout", 60)
        kwargs.setdefault("check_compatibility", False)
        if "api_key" in kwargs:
            kwargs.setdefault("https", False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # "Api key is used with an insecure connection."
            if transport == "grpc":
                c = QdrantClient(url=self.url, grpc_port=self.grpc_port, prefer_grpc=True, **kwargs)
            else:
                c = QdrantClient(url=self.url, prefer_grpc=False, **kwargs)
        c.compat_transport = transport
        return c


# --------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def qdrant():
    server = QdrantServer(qdrant_binary(), name="session")
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def qdrant_factory():
    """Call with (extra_env: dict, name=...) to start a private server; cleaned up after the test."""
    servers = []

    def make(extra_env=None, name="private"):
        server = QdrantServer(qdrant_binary(), extra_env=extra_env, name=name)
        servers.append(server)
        return server.start()

    try:
        yield make
    finally:
        for s in servers:
            s.cleanup()


@pytest.fixture(scope="session", params=TRANSPORTS, ids=TRANSPORTS)
def transport(request):
    return request.param


@pytest.fixture(scope="session")
def client(qdrant, transport):
    c = qdrant.client(transport)
    yield c
    c.close()


@pytest.fixture(scope="session")
def rest_client(qdrant):
    """REST only: for tests of REST-specific behaviour (raw HTTP), which run once."""
    c = qdrant.client("rest")
    yield c
    c.close()


@pytest.fixture
def collection_name(qdrant):
    name = f"compat_{uuid.uuid4().hex[:12]}"
    yield name
    try:
        requests.delete(f"{qdrant.url}/collections/{name}", timeout=30)
    except requests.RequestException:
        pass


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of the session node's log to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when in ("call", "setup"):
        server = item.funcargs.get("qdrant") if hasattr(item, "funcargs") else None
        if isinstance(server, QdrantServer):
            rep.sections.append(("qdrant node log (tail)", server.log_tail(40)))


def pytest_terminal_summary(terminalreporter):
    """Print metrics recorded with record_property("compat_metric", ...) (e.g. HNSW recall)."""
    lines = []
    for reports in terminalreporter.stats.values():
        for rep in reports:
            for key, value in getattr(rep, "user_properties", []) or []:
                if key == "compat_metric" and getattr(rep, "when", "call") == "call":
                    lines.append(f"{rep.nodeid}: {value}")
    if lines:
        terminalreporter.section("compat metrics")
        for line in lines:
            terminalreporter.write_line(line)
