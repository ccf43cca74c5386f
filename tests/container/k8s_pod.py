"""Runs the Qdrant container of an operator-rendered StatefulSet as `docker create` options, the way
the kubelet would run pod `<name>-<ordinal>`: same command and args, same environment (downward-API
fields resolved), the ConfigMap volumes as read-only files, emptyDirs as tmpfs, the volume claim as a
named volume, the security context as --user/--read-only/--cap-drop, and the pod's hostname.

Where the StatefulSet comes from (`rendered_statefulset`):
  1. QDRANT_CT_STATEFULSET: a YAML file holding the StatefulSet (and optionally its ConfigMap), or
  2. the operator's golden files (operator/tests/golden/**: the output of the pure builders), or
  3. the contract of DESIGN.md ("The operator"), written out below, when neither exists yet.
"""

import glob
import os
import shlex
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
GOLDEN_GLOBS = ["operator/tests/golden/**/*.yaml", "operator/tests/golden/**/*.yml",
                "operator/src/build/golden/**/*.yaml", "operator/golden/**/*.yaml"]


def _docs(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]


def _design_contract(name, namespace):
    """DESIGN.md: pod 0 runs `qdrant --uri http://<name>-0.<name>-headless.<ns>:6335`; pod k>0 runs
    `qdrant --bootstrap <pod 0 uri> --uri http://<name>-k.<name>-headless.<ns>:6335`, the ordinal
    read from the hostname by the image's entrypoint (docker/entrypoint.sh)."""
    sts = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "serviceName": f"{name}-headless",
            "template": {"spec": {
                "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                                    "runAsNonRoot": True},
                "containers": [{
                    "name": "qdrant",
                    "image": "qdrant-node:dev",
                    "env": [
                        {"name": "QDRANT_CLUSTER_NAME", "value": name},
                        {"name": "QDRANT_NAMESPACE",
                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "QDRANT_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "QDRANT__CLUSTER__ENABLED", "value": "true"},
                    ],
                    "securityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                        "capabilities": {"drop": ["ALL"]}},
                    "volumeMounts": [{"name": "storage", "mountPath": "/qdrant/storage"},
                                     {"name": "snapshots", "mountPath": "/qdrant/snapshots"}],
                }],
                "volumes": [{"name": "snapshots", "emptyDir": {}}],
            }},
            "volumeClaimTemplates": [{"metadata": {"name": "storage"}}],
        },
    }
    return sts, None, "DESIGN.md contract (docker/entrypoint.sh derives the args)"


PREFERRED_CASES = ("default", "defaults", "minimal", "basic", "plain")


def rendered_statefulset(default_name="qc", default_namespace="default"):
    """(statefulset, configmap or None, source description).

    Among golden cases (one directory per case), the plainest is taken: a directory named like
    `default`/`minimal`, else the first one whose StatefulSet needs no Secret."""
    env_path = os.environ.get("QDRANT_CT_STATEFULSET")
    paths = [env_path] if env_path else sorted(
        {p for pattern in GOLDEN_GLOBS for p in glob.glob(str(REPO / pattern), recursive=True)})
    cases = {}
    for path in paths:
        for doc in _docs(path):
            if doc.get("kind") in ("StatefulSet", "ConfigMap"):
                cases.setdefault(os.path.dirname(path), []).append((path, doc))
    candidates = []
    for case, docs in cases.items():
        for path, sts in ((p, d) for p, d in docs if d["kind"] == "StatefulSet"):
            pod_spec = sts["spec"]["template"]["spec"]
            volumes = pod_spec.get("volumes", [])
            env = [e for c in pod_spec.get("containers", []) for e in c.get("env", [])]
            if any("secret" in v for v in volumes) or any("secretKeyRef" in (e.get("valueFrom") or {}) for e in env):
                continue  # needs Secrets this test does not make
            wanted = {v["configMap"]["name"] for v in volumes if "configMap" in v}
            cms = [d for _, d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in wanted]
            rank = 0 if os.path.basename(case) in PREFERRED_CASES else 1
            candidates.append((rank, case, path, sts, cms[0] if cms else None))
    if env_path and not candidates:
        raise ValueError(f"{env_path} holds no usable StatefulSet")
    if not candidates:
        return _design_contract(default_name, default_namespace)
    _, _, path, sts, cm = sorted(candidates, key=lambda c: (c[0], c[1]))[0]
    return sts, cm, os.path.relpath(path, REPO)


class PodRunner:
    """Turns one StatefulSet into per-ordinal `docker create` arguments."""

    def __init__(self, sts, configmap, image, workdir):
        self.sts = sts
        self.cm = configmap
        self.image = image
        self.workdir = Path(workdir)
        self.name = sts["metadata"]["name"]
        self.namespace = sts["metadata"].get("namespace") or "default"
        self.headless = sts["spec"]["serviceName"]
        pod_spec = sts["spec"]["template"]["spec"]
        self.pod_spec = pod_spec
        containers = pod_spec["containers"]
        self.container = next((c for c in containers if c["name"] == "qdrant"), containers[0])
        self.claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}

    def pod(self, ordinal):
        return f"{self.name}-{ordinal}"

    def aliases(self, ordinal):
        """DNS names of the pod through the headless Service, as cluster DNS would answer them."""
        base = f"{self.pod(ordinal)}.{self.headless}"
        return [base, f"{base}.{self.namespace}", f"{base}.{self.namespace}.svc",
                f"{base}.{self.namespace}.svc.cluster.local"]

    def _env_value(self, item, ordinal):
        if "value" in item:
            return item["value"]
        ref = item.get("valueFrom", {})
        field = ref.get("fieldRef", {}).get("fieldPath")
        if field == "metadata.name":
            return self.pod(ordinal)
        if field == "metadata.namespace":
            return self.namespace
        if field in ("spec.nodeName",):
            return "docker"
        if field in ("status.podIP", "status.hostIP"):
            return None  # not known before start; the node must not depend on it
        if "secretKeyRef" in ref or "configMapKeyRef" in ref:
            optional = (ref.get("secretKeyRef") or ref.get("configMapKeyRef")).get("optional")
            if optional:
                return None
            raise ValueError(f"env {item['name']} needs a Secret/ConfigMap this test does not provide")
        if "resourceFieldRef" in ref:
            return None
        raise ValueError(f"unsupported env source {item}")

    def _configmap_dir(self, volume):
        src = volume["configMap"]
        target = self.workdir / f"cm-{volume['name']}"
        if target.exists():
            return target
        if self.cm is None or self.cm["metadata"]["name"] != src["name"]:
            raise ValueError(f"ConfigMap {src['name']} was not rendered with the StatefulSet")
        target.mkdir(parents=True)
        data = self.cm.get("data") or {}
        items = src.get("items") or [{"key": k, "path": k} for k in data]
        for it in items:
            path = target / it["path"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data.get(it["key"], ""))
            path.chmod(int(str(it.get("mode", src.get("defaultMode", 0o644))), 0) & 0o777 | 0o444)
        target.chmod(0o755)
        return target

    def create_args(self, ordinal, storage_volume):
        """(docker create options, image args) for pod `ordinal`."""
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}

        def volume_opts(mount, owner):
            name, path = mount["name"], mount["mountPath"]
            ro = ":ro" if mount.get("readOnly") else ""
            if name in self.claims:
                return ["-v", f"{storage_volume}:{path}{ro}"]
            if name in volumes and "configMap" in volumes[name]:
                src = self._configmap_dir(volumes[name])
                if mount.get("subPath"):
                    src = src / mount["subPath"]
                return ["-v", f"{src}:{path}:ro"]
            return None

        opts, args = container_opts(self.pod_spec, self.container, lambda item: self._env_value(item, ordinal),
                                    volume_opts)
        return ["--hostname", self.pod(ordinal), *opts], args

    def describe(self, ordinal):
        opts, args = self.create_args(ordinal, "<volume>")
        return " ".join(shlex.quote(x) for x in ["docker", "create", *opts, self.image, *args])


def container_opts(pod_spec, container, env_value, volume_opts=lambda mount, owner: None):
    """`docker create` options and image arguments running `container` of `pod_spec` as the kubelet
    would: security context, environment (`env_value(item)` resolves an env entry, None = unset),
    volume mounts (`volume_opts(mount, owner)` handles claims/ConfigMaps; emptyDirs become tmpfs),
    command/args."""
    c = container
    psc = pod_spec.get("securityContext") or {}
    csc = c.get("securityContext") or {}
    opts = []
    uid = csc.get("runAsUser", psc.get("runAsUser"))
    gid = csc.get("runAsGroup", psc.get("runAsGroup"))
    if uid is not None:
        opts += ["--user", f"{uid}:{gid if gid is not None else uid}"]
    fs_group = psc.get("fsGroup")
    if fs_group is not None:
        opts += ["--group-add", str(fs_group)]
    if csc.get("readOnlyRootFilesystem"):
        opts.append("--read-only")
    for cap in (csc.get("capabilities") or {}).get("drop", []):
        opts += ["--cap-drop", cap]
    for cap in (csc.get("capabilities") or {}).get("add", []):
        opts += ["--cap-add", cap]
    if csc.get("allowPrivilegeEscalation") is False:
        opts += ["--security-opt", "no-new-privileges"]
    for item in c.get("env", []):
        value = env_value(item)
        if value is not None:
            opts += ["-e", f"{item['name']}={value}"]
    if c.get("workingDir"):
        opts += ["--workdir", c["workingDir"]]
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    owner = f"uid={uid if uid is not None else 0},gid={fs_group if fs_group is not None else (gid or 0)}"
    for m in c.get("volumeMounts", []):
        handled = volume_opts(m, owner)
        if handled is not None:
            opts += handled
        elif m["name"] in volumes and "emptyDir" in volumes[m["name"]]:
            opts += ["--tmpfs", f"{m['mountPath']}:rw,mode=0770,{owner}"]
        elif m["name"] in volumes and "secret" in volumes[m["name"]] and volumes[m["name"]]["secret"].get("optional"):
            continue
        else:
            raise ValueError(f"volume {m['name']} ({volumes.get(m['name'])}) is not supported by this test")
    command = c.get("command")
    args = list(c.get("args", []))
    if command:
        opts += ["--entrypoint", command[0]]
        image_args = list(command[1:]) + args
    else:
        image_args = args
    return opts, image_args


def workdir():
    return tempfile.mkdtemp(prefix="qct-pod-")
