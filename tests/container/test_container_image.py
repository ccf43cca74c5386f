"""Single-container tests of the node image, run as users run it: `docker run` with a named volume on
/qdrant/storage, hardened like the operator's pod (read-only root, no capabilities), reached through
a port published on 127.0.0.1."""

import json
import subprocess
import threading
import time

import pytest

from container_helpers import (DIM, DockerError, assert_points_intact, docker, logs, make_points,
                               vector_for, wait_until)


def test_image_metadata(image):
    cfg = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", image))
    user = cfg["User"]
    uid, _, gid = user.partition(":")
    # Numeric, non-root: Kubernetes' runAsNonRoot can only verify a numeric user.
    assert uid.isdigit() and int(uid) != 0, f"image user {user!r} must be a numeric non-root uid"
    assert gid.isdigit() and int(gid) != 0, f"image group {user!r} must be a numeric non-root gid"
    assert set(cfg["ExposedPorts"]) == {"6333/tcp", "6334/tcp", "6335/tcp"}
    assert "/qdrant/storage" in cfg["Volumes"]
    assert cfg["WorkingDir"] == "/qdrant"
    assert cfg["Entrypoint"] == ["/qdrant/entrypoint.sh"]
    assert cfg["Healthcheck"]["Test"][0] == "CMD"
    # The binary runs in the image: every shared library resolves against the base image.
    ldd = docker("run", "--rm", "--entrypoint", "ldd", image, "/qdrant/qdrant")
    assert "not found" not in ldd, ldd
    # Same layout as the official image: /qdrant/qdrant, on PATH too.
    assert docker("run", "--rm", "--entrypoint", "bash", image, "-c", "command -v qdrant") == "/usr/local/bin/qdrant"


def test_runs_as_non_root_with_read_only_root(node_factory):
    node = node_factory()
    node.start()
    status = docker("exec", node.name, "cat", "/proc/1/status")
    uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
    gids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Gid:"))
    assert set(uids) == {"1000"} and set(gids) == {"1000"}, (uids, gids)
    # PID 1 is the node itself (the entrypoint execs it), so it receives SIGTERM directly.
    comm = docker("exec", node.name, "cat", "/proc/1/comm")
    assert comm == "qdrant", comm
    # The root filesystem really is read-only and the storage volume is the node's to write.
    probe = subprocess.run(["docker", "exec", node.name, "touch", "/qdrant/x"], capture_output=True, text=True)
    assert probe.returncode != 0
    listing = docker("exec", node.name, "ls", "-ln", "/qdrant/storage")
    assert listing.startswith("total"), listing
    owner = docker("exec", node.name, "stat", "-c", "%u:%g", "/qdrant/storage")
    assert owner == "1000:1000", owner


def test_rest_answers_and_container_becomes_healthy(node_factory, metrics):
    node = node_factory()
    t_ready = node.start()
    metrics["single_time_to_readyz_s"] = round(t_ready, 2)
    root = node.rest.ok("GET", "/")
    assert "version" in root, root
    assert node.rest.call("GET", "/healthz").status_code == 200
    assert node.rest.call("GET", "/livez").status_code == 200
    assert node.rest.ok("GET", "/collections") == {"collections": []}
    # Docker's HEALTHCHECK (bash /dev/tcp GET /readyz) agrees.
    t0 = time.monotonic()
    wait_until(lambda: node.state()["Health"]["Status"] == "healthy", 30, interval=0.2,
               what="docker health status 'healthy'")
    metrics["single_docker_healthy_after_ready_s"] = round(time.monotonic() - t0, 2)


def _fill(rest, collection, ids, tag):
    for i in range(0, len(ids), 100):
        rest.upsert(collection, make_points(ids[i:i + 100], tag), wait=True)
    return {i: tag for i in ids}


def test_data_survives_restart_and_new_container_on_the_volume(node_factory):
    node = node_factory("a")
    node.start()
    node.rest.create_collection("persist", DIM)
    expected = _fill(node.rest, "persist", list(range(1, 501)), "first")
    hits = node.rest.search("persist", vector_for(42), limit=3)
    assert hits[0]["id"] == 42, hits

    # Graceful restart (SIGTERM).
    docker("restart", "-t", "20", node.name, timeout=60)
    node.start()
    assert node.rest.count("persist") == len(expected)
    assert_points_intact(node.rest, "persist", expected)
    assert node.rest.search("persist", vector_for(42), limit=3)[0]["id"] == 42

    # A new container (think: a new image version) on the same volume sees the same data.
    docker("rm", "-f", node.name)
    second = node_factory("b", volume=node.volume)
    second.start()
    assert second.rest.count("persist") == len(expected)
    assert_points_intact(second.rest, "persist", expected)
    info = second.rest.ok("GET", "/collections/persist")
    assert info["config"]["params"]["vectors"]["size"] == DIM, info


def test_sigkill_keeps_acknowledged_points(node_factory):
    """A writer upserts with wait=true in a loop; the container is SIGKILLed mid-stream. Every
    acknowledged point must be there after the restart (unacknowledged ones may or may not be)."""
    node = node_factory()
    node.start()
    node.rest.create_collection("durable", DIM)
    acked = {}
    stop = threading.Event()
    errors = []

    def writer():
        next_id = 1
        while not stop.is_set() and next_id < 200_000:
            ids = list(range(next_id, next_id + 20))
            try:
                node.rest.upsert("durable", make_points(ids, "w"), wait=True, timeout=5)
            except Exception as exc:  # noqa: BLE001 - the kill makes requests fail; that is expected
                errors.append(exc)
                return
            for i in ids:
                acked[i] = "w"
            next_id += 20

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    wait_until(lambda: len(acked) >= 400, 60, what="400 acknowledged points before the kill")
    docker("kill", "--signal", "KILL", node.name)
    stop.set()
    t.join(15)
    assert not t.is_alive()
    snapshot = dict(acked)
    state = node.state()
    assert state["ExitCode"] == 137 and not state["Running"], state

    node.start()
    assert node.rest.count("durable") >= len(snapshot)
    assert_points_intact(node.rest, "durable", snapshot)
    # And the node still takes writes after recovery.
    node.rest.upsert("durable", make_points([900_001], "after"), wait=True)
    assert_points_intact(node.rest, "durable", {900_001: "after"})


def test_graceful_stop(node_factory, metrics):
    """`docker stop` (and a Kubernetes pod deletion) sends SIGTERM to PID 1 = the node: it must exit
    promptly by itself, not wait for the SIGKILL after the grace period."""
    node = node_factory()
    node.start()
    node.rest.create_collection("stop", DIM)
    node.rest.upsert("stop", make_points([1, 2, 3], "s"), wait=True)
    t0 = time.monotonic()
    docker("stop", "-t", "20", node.name, timeout=60)
    took = time.monotonic() - t0
    metrics["single_sigterm_stop_s"] = round(took, 2)
    state = node.state()
    assert state["ExitCode"] in (0, 143), f"exit code {state['ExitCode']} after SIGTERM\n{logs(node.name)}"
    assert took < 15, f"SIGTERM took {took:.1f}s to stop the node"


def test_cluster_args_reach_the_node_in_standalone(image, resources):
    """Without QDRANT_CLUSTER_NAME the entrypoint adds nothing: `docker run IMAGE` is plain `qdrant`,
    and arguments pass through verbatim (checked with the entrypoint's dry run inside the image)."""
    out = docker("run", "--rm", "-e", "QDRANT_ENTRYPOINT_DRY_RUN=1", image)
    assert out.splitlines() == ["/qdrant/qdrant"]
    out = docker("run", "--rm", "-e", "QDRANT_ENTRYPOINT_DRY_RUN=1", image, "--config-path", "/c.yaml")
    assert out.splitlines() == ["/qdrant/qdrant", "--config-path", "/c.yaml"]
    out = docker("run", "--rm", "--hostname", "db-2", "-e", "QDRANT_ENTRYPOINT_DRY_RUN=1",
                 "-e", "QDRANT_CLUSTER_NAME=db", "-e", "QDRANT_NAMESPACE=prod", image)
    assert out.splitlines() == ["/qdrant/qdrant", "--bootstrap", "http://db-0.db-headless.prod:6335",
                                "--uri", "http://db-2.db-headless.prod:6335"]
    with pytest.raises(DockerError, match="not <name>-<ordinal>"):
        docker("run", "--rm", "--hostname", "nodash", "-e", "QDRANT_CLUSTER_NAME=db", image)
