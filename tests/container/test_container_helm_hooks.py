"""The charts' `helm test` hooks and the operator chart's Deployment, run for real: each pod spec is
rendered by helm from the chart and run with docker the way the kubelet would run it (command,
args, env, security context), next to containers that answer to the Service DNS names the
rendered hook uses (network aliases on a private, internal network)."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from container_helpers import DockerError, docker, logs, wait_until
from k8s_pod import container_opts

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def helm():
    path = os.environ.get("QDRANT_CT_HELM")
    if not path:
        path = subprocess.run([str(REPO / "scripts" / "check-charts.sh"), "--helm-path"], check=True,
                              capture_output=True, text=True, timeout=600).stdout.strip()
    return path


@pytest.fixture(scope="session")
def operator_image():
    name = os.environ.get("QDRANT_OPERATOR_IMAGE", "qdrant-operator:dev")
    try:
        docker("image", "inspect", name)
    except DockerError:
        pytest.fail(f"image {name} does not exist: build it with scripts/image.sh operator (run.sh does)")
    return name


def render(helm, release, chart, namespace, *sets, show_only=None):
    cmd = [helm, "template", release, str(REPO / "charts" / chart), "-n", namespace]
    for s in sets:
        cmd += ["--set", s]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def hook_pod(docs):
    pods = [d for d in docs if d["kind"] == "Pod"
            and (d["metadata"].get("annotations") or {}).get("helm.sh/hook") == "test"]
    assert len(pods) == 1, f"expected one helm test pod, got {len(pods)}"
    return pods[0]


def run_pod_container(resources, suffix, pod_spec, container, network, image=None, secrets=None,
                      extra=(), detach=False):
    """Runs a rendered container; `secrets` resolves secretKeyRef env entries by (name, key)."""
    def env_value(item):
        if "value" in item:
            return item["value"]
        ref = item.get("valueFrom", {})
        if "secretKeyRef" in ref:
            return (secrets or {})[(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])]
        field = ref.get("fieldRef", {}).get("fieldPath")
        if field == "metadata.name":
            return f"{suffix}-0"
        if field == "metadata.namespace":
            return "qdrant-operator"
        raise ValueError(f"unsupported env {item}")

    opts, args = container_opts(pod_spec, container, env_value)
    name = resources.create_container(suffix, image or container["image"], args,
                                      ["--network", network, *extra, *opts])
    if detach:
        docker("start", name)
        return name
    r = subprocess.run(["docker", "start", "-a", name], capture_output=True, text=True, timeout=240)
    return r.returncode, r.stdout + r.stderr


@pytest.mark.parametrize("api_key", [False, True], ids=["no-api-key", "api-key"])
def test_cluster_chart_hook_writes_and_searches_through_the_service(helm, image, resources, api_key):
    repo, _, tag = image.rpartition(":")
    sets = [f"image={repo}", f"version={tag}", "size=3"]
    if api_key:
        sets += ["apiKey.name=qdrant-keys", "apiKey.key=api-key"]
    pod = hook_pod(render(helm, "demo", "qdrant-cluster", "db", *sets))
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == image
    service_host = next(e["value"] for e in container["env"] if e["name"] == "QDRANT_HOST")
    assert service_host == "demo.db.svc"

    net = resources.network("svc", internal=True)
    node_env = ["-e", "QDRANT__SERVICE__API_KEY=s3cret"] if api_key else []
    node = resources.create_container("node", image, [], ["--network", net, "--network-alias", service_host,
                                                          *node_env])
    docker("start", node)
    code, output = run_pod_container(resources, "hook", spec, container, net,
                                     secrets={("qdrant-keys", "api-key"): "s3cret"})
    assert code == 0, f"helm test pod failed:\n{output}\n--- node ---\n{logs(node)}"
    assert "write and search through demo.db.svc:6333 work" in output
    if api_key:
        # The hook really sent the key: without it the same node refuses.
        code, output = run_pod_container(resources, "hook-nokey", spec, container, net,
                                         secrets={("qdrant-keys", "api-key"): ""})
        assert code != 0, output


def test_operator_chart_deployment_runs_and_its_hook_passes(helm, operator_image, resources, tmp_path):
    repo, _, tag = operator_image.rpartition(":")
    docs = render(helm, "qdrant-operator", "qdrant-operator", "qdrant-operator",
                  f"image.repository={repo}", f"image.tag={tag}")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    service = next(d for d in docs if d["kind"] == "Service")
    pod_spec = deployment["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]
    # No apiserver here. The pod gets what the kubelet gives it -- KUBERNETES_SERVICE_HOST/PORT and
    # the service-account mount (token, namespace, the cluster CA) -- pointing at a closed port: the
    # operator takes the in-cluster configuration path, keeps retrying the Lease and keeps serving
    # /healthz and /metrics, which is what the probes and the hook look at.
    sa = tmp_path / "serviceaccount"
    sa.mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=test-cluster-ca", "-keyout", str(tmp_path / "ca.key"),
                    "-out", str(sa / "ca.crt")], check=True, capture_output=True, timeout=30)
    (sa / "token").write_text("test-token")
    (sa / "namespace").write_text("qdrant-operator")
    for f in sa.iterdir():
        f.chmod(0o644)
    sa.chmod(0o755)
    net = resources.network("svc", internal=True)
    alias = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    operator = run_pod_container(
        resources, "operator", pod_spec, container, net, image=operator_image, detach=True,
        extra=["--network-alias", alias, "-v", f"{sa}:/var/run/secrets/kubernetes.io/serviceaccount:ro",
               "-e", "KUBERNETES_SERVICE_HOST=127.0.0.1", "-e", "KUBERNETES_SERVICE_PORT=9"])
    wait_until(lambda: "serving /metrics and /healthz" in logs(operator), 30,
               what="the operator serving /healthz")
    assert docker("inspect", "-f", "{{.State.Running}}", operator) == "true", logs(operator)

    pod = hook_pod(docs)
    hook = pod["spec"]["containers"][0]
    assert hook["image"] == operator_image
    code, output = run_pod_container(resources, "hook", pod["spec"], hook, net)
    assert code == 0, f"helm test pod failed:\n{output}\n--- operator ---\n{logs(operator)}"
    assert "answers /healthz and /metrics" in output
    # It runs as the rendered security context says (non-root, read-only root).
    status = docker("exec", operator, "cat", "/proc/1/status")
    assert "Uid:\t65532" in status, status
