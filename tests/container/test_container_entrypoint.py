"""The entrypoint's contract (docker/README.md, "Entrypoint contract"), checked on the host with its
dry run: it prints the command it would exec, one argument per line. No docker needed."""

import os
import subprocess
from pathlib import Path

import pytest

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"
BIN = "/qdrant/qdrant"


def run(args=(), **env):
    full = {"PATH": os.environ["PATH"], "QDRANT_ENTRYPOINT_DRY_RUN": "1", "HOSTNAME": "ignored-x"}
    full.update(env)
    proc = subprocess.run(["bash", str(ENTRYPOINT), *args], capture_output=True, text=True, env=full, timeout=10)
    return proc.returncode, proc.stdout.splitlines(), proc.stderr


def argv(args=(), **env):
    code, out, err = run(args, **env)
    assert code == 0, err
    return out


def test_standalone_passes_arguments_through():
    assert argv() == [BIN]
    assert argv(["--config-path", "/qdrant/config/config.yaml"]) == [BIN, "--config-path", "/qdrant/config/config.yaml"]
    # The binary's own name first is accepted, like the official image's `./qdrant ...`.
    assert argv(["qdrant", "--x"]) == [BIN, "--x"]
    assert argv(["./qdrant"]) == [BIN]


def test_other_commands_run_as_given():
    assert argv(["bash", "-c", "true"]) == ["bash", "-c", "true"]


@pytest.mark.parametrize("ordinal", [0, 1, 2, 11])
def test_cluster_mode_derives_peer_args_from_the_ordinal(ordinal):
    out = argv(HOSTNAME=f"qc-{ordinal}", QDRANT_CLUSTER_NAME="qc", QDRANT_NAMESPACE="default")
    own = f"http://qc-{ordinal}.qc-headless.default:6335"
    if ordinal == 0:
        assert out == [BIN, "--uri", own]
    else:
        assert out == [BIN, "--bootstrap", "http://qc-0.qc-headless.default:6335", "--uri", own]


def test_cluster_mode_exactly_as_the_design_renders_it():
    # DESIGN.md: pod 0 `--uri http://<name>-0.<name>-headless.<ns>:6335`; pod k
    # `--bootstrap http://<name>-0.<name>-headless.<ns>:6335 --uri http://<name>-k.<name>-headless.<ns>:6335`
    assert argv(HOSTNAME="my-db-0", QDRANT_CLUSTER_NAME="my-db", QDRANT_NAMESPACE="team-a") == \
        [BIN, "--uri", "http://my-db-0.my-db-headless.team-a:6335"]
    assert argv(["--config-path", "/qdrant/config/config.yaml"], HOSTNAME="my-db-3",
                QDRANT_CLUSTER_NAME="my-db", QDRANT_NAMESPACE="team-a") == \
        [BIN, "--bootstrap", "http://my-db-0.my-db-headless.team-a:6335",
         "--uri", "http://my-db-3.my-db-headless.team-a:6335", "--config-path", "/qdrant/config/config.yaml"]


def test_pod_name_overrides_hostname_and_fqdn_hostnames_work():
    assert argv(HOSTNAME="other", QDRANT_POD_NAME="qc-1", QDRANT_CLUSTER_NAME="qc")[1:3] == \
        ["--bootstrap", "http://qc-0.qc-headless:6335"]
    assert argv(HOSTNAME="qc-2.qc-headless.ns.svc.cluster.local", QDRANT_CLUSTER_NAME="qc")[-1] == \
        "http://qc-2.qc-headless:6335"


def test_service_namespace_domain_port_and_tls():
    out = argv(HOSTNAME="qc-1", QDRANT_CLUSTER_NAME="qc", QDRANT_HEADLESS_SERVICE="peers",
               QDRANT_NAMESPACE="ns", QDRANT_CLUSTER_DOMAIN="svc.cluster.local",
               QDRANT__CLUSTER__P2P__PORT="7000", QDRANT__CLUSTER__P2P__ENABLE_TLS="true")
    assert out == [BIN, "--bootstrap", "https://qc-0.peers.ns.svc.cluster.local:7000",
                   "--uri", "https://qc-1.peers.ns.svc.cluster.local:7000"]


def test_bootstrap_uri_override_keeps_pod0_from_founding_a_second_cluster():
    seed = "http://qc-2.qc-headless.ns:6335"
    assert argv(HOSTNAME="qc-0", QDRANT_CLUSTER_NAME="qc", QDRANT_NAMESPACE="ns", QDRANT_BOOTSTRAP_URI=seed) == \
        [BIN, "--bootstrap", seed, "--uri", "http://qc-0.qc-headless.ns:6335"]
    # The seed being the pod itself means: found the cluster.
    assert argv(HOSTNAME="qc-2", QDRANT_CLUSTER_NAME="qc", QDRANT_NAMESPACE="ns", QDRANT_BOOTSTRAP_URI=seed) == \
        [BIN, "--uri", seed]


def test_explicit_peer_args_win_over_derivation():
    for args in (["--uri", "http://a:6335"], ["--bootstrap=http://b:6335"], ["--uri=http://a:6335"]):
        code, out, err = run(args, HOSTNAME="qc-1", QDRANT_CLUSTER_NAME="qc")
        assert code == 0 and out == [BIN, *args], (out, err)
        assert "not deriving" in err


def test_cluster_mode_enables_the_cluster_setting_and_execs_the_node(tmp_path):
    # The node only runs consensus with cluster.enabled: cluster mode turns it on unless it is set.
    fake = tmp_path / "qdrant"
    fake.write_text('#!/bin/sh\necho "enabled=$QDRANT__CLUSTER__ENABLED"\nfor a in "$@"; do echo "$a"; done\n')
    fake.chmod(0o755)
    base = {"PATH": os.environ["PATH"], "HOSTNAME": "qc-1", "QDRANT_CLUSTER_NAME": "qc", "QDRANT_BIN": str(fake)}
    proc = subprocess.run(["bash", str(ENTRYPOINT), "--x"], capture_output=True, text=True, env=base, timeout=10)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["enabled=true", "--bootstrap", "http://qc-0.qc-headless:6335",
                                        "--uri", "http://qc-1.qc-headless:6335", "--x"]
    proc = subprocess.run(["bash", str(ENTRYPOINT)], capture_output=True, text=True, timeout=10,
                          env={**base, "QDRANT__CLUSTER__ENABLED": "false"})
    assert proc.stdout.splitlines()[0] == "enabled=false"
    # Standalone: the setting is left alone.
    proc = subprocess.run(["bash", str(ENTRYPOINT)], capture_output=True, text=True, timeout=10,
                          env={"PATH": os.environ["PATH"], "QDRANT_BIN": str(fake)})
    assert proc.stdout.splitlines() == ["enabled="]


@pytest.mark.parametrize("env,message", [
    ({"HOSTNAME": "nodash"}, "not <name>-<ordinal>"),
    ({"HOSTNAME": "qc-x"}, "not <name>-<ordinal>"),
    ({"HOSTNAME": "qc-01"}, "not <name>-<ordinal>"),
    ({"HOSTNAME": "other-1"}, "does not belong"),
    ({"HOSTNAME": "qc-1", "QDRANT_CLUSTER_DOMAIN": "svc.cluster.local"}, "needs QDRANT_NAMESPACE"),
    ({"HOSTNAME": "qc-1", "QDRANT__CLUSTER__P2P__PORT": "x"}, "is not a number"),
])
def test_bad_input_is_a_clear_error(env, message):
    code, out, err = run(QDRANT_CLUSTER_NAME="qc", **env)
    assert code == 64 and out == [], (code, out)
    assert message in err, err
