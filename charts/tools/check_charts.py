#!/usr/bin/env python3
"""Checks every Helm chart under charts/ (driven by scripts/check-charts.sh, which provides helm).

For each helm binary given (helm v4 and v3), for each chart:
  1. `helm lint --strict` with the default values and with every charts/<chart>/ci/*.yaml;
  2. `helm template --include-crds` with the same value sets; every rendered object is validated
     offline: built-in kinds against Kubernetes' schemas (kubernetes-validate, strict, for each
     version in K8S_VERSIONS), custom resources against the CRD in deploy/crds (schema, defaults,
     CEL rules); nothing of an unknown kind may be rendered;
  3. every charts/<chart>/ci/invalid/*.yaml must be refused by values.schema.json, with the
     message given on its `# expect: <regex>` line;
  4. chart-specific checks: the operator chart's CRD is the generated one from deploy/crds and
     lives in crds/ (kept on uninstall); its Deployment, RBAC and ServiceAccount, rendered as the
     release deploy/ describes, match deploy/operator/ field by field; helm test hooks exist;
     the cluster chart maps its values onto the QdrantCluster spec and keeps the CRD's defaults.

Exit status 0 when everything passed, 1 otherwise (every problem is listed).
"""

import argparse
import copy
import glob
import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from k8s_checks import CrdIndex, load_docs, validate_builtin, validate_custom  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CHARTS = os.path.join(REPO, "charts")
DEPLOY = os.path.join(REPO, "deploy")
K8S_VERSIONS = os.environ.get("CHECK_K8S_VERSIONS", "1.29 1.35").split()

# How each chart is rendered for the checks: release name and namespace.
RELEASES = {
    "qdrant-operator": ("qdrant-operator", "qdrant-operator"),  # as deploy/operator/ installs it
    "qdrant-cluster": ("demo", "db"),
}


class Report:
    def __init__(self):
        self.problems = []
        self.checks = 0

    def ok(self, what):
        self.checks += 1
        print(f"  ok    {what}")

    def fail(self, what, detail=""):
        self.checks += 1
        self.problems.append(f"{what}: {detail}" if detail else what)
        print(f"  FAIL  {what}" + (f"\n        {detail}".replace("\n", "\n        ") if detail else ""))

    def expect(self, cond, what, detail=""):
        if cond:
            self.ok(what)
        else:
            self.fail(what, detail)
        return cond


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def helm_version(helm):
    rc, out, _ = run([helm, "version", "--template", "{{.Version}}"])
    return out.strip() if rc == 0 else "?"


def read_yaml_files(pattern):
    docs = []
    for path in sorted(glob.glob(pattern, recursive=True)):
        with open(path) as f:
            for d in load_docs(f.read()):
                docs.append((os.path.relpath(path, REPO), d))
    return docs


def deploy_crds():
    return [d for _, d in read_yaml_files(os.path.join(DEPLOY, "crds", "*.yaml"))
            if d.get("kind") == "CustomResourceDefinition"]


def obj_id(o):
    m = o.get("metadata") or {}
    return f"{o.get('kind')}/{m.get('namespace', '-')}/{m.get('name')}"


# ------------------------------------------------------------------------------------------------
# validation of rendered objects
# ------------------------------------------------------------------------------------------------

def validate_objects(docs, crd_index, report, label):
    bad = 0
    for d in docs:
        api = d.get("apiVersion", "")
        schema = crd_index.schema_for(d)
        if schema is not None:
            errors = validate_custom(d, schema)
        elif "." in api.split("/")[0] and not api.split("/")[0].endswith("k8s.io") and "/" in api:
            errors = [f"no schema for custom resource {api} {d.get('kind')}: add its CRD to deploy/crds"]
        else:
            errors = validate_builtin(d, K8S_VERSIONS)
        if errors:
            bad += 1
            report.fail(f"{label}: {obj_id(d)} is valid", "\n".join(errors[:8]))
    if not bad:
        report.ok(f"{label}: {len(docs)} objects valid (Kubernetes {', '.join(K8S_VERSIONS)} schemas, CRD schema + CEL)")


# ------------------------------------------------------------------------------------------------
# comparison with deploy/
# ------------------------------------------------------------------------------------------------

def _strip_image_tag(image):
    if "@" in image:
        return image.split("@")[0]
    last = image.rsplit("/", 1)[-1]
    return image.rsplit(":", 1)[0] if ":" in last else image


PROBE_DEFAULTS = {"timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}


def _default_container(c):
    """The apiserver's defaults for fields manifests usually omit."""
    if "image" in c:
        c["image"] = _strip_image_tag(c["image"])
    # The operator's OPERATOR_IMAGE (image of its backup Jobs) is its own image: compared like it.
    for e in c.get("env", []):
        if e.get("name") == "OPERATOR_IMAGE" and "value" in e:
            e["value"] = _strip_image_tag(e["value"])
    c.setdefault("imagePullPolicy", "IfNotPresent")
    for p in c.get("ports", []):
        p.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        if probe in c:
            for k, v in PROBE_DEFAULTS.items():
                c[probe].setdefault(k, v)
            if "httpGet" in c[probe]:
                c[probe]["httpGet"].setdefault("scheme", "HTTP")
    for e in c.get("env", []):
        ref = (e.get("valueFrom") or {}).get("fieldRef")
        if ref:
            ref.setdefault("apiVersion", "v1")


def normalise(o):
    """The semantically relevant part of an object: no labels/annotations (Helm adds its own), no
    status, no selectors (checked for consistency separately), images without tag (the chart pins
    its appVersion), and the apiserver's defaults made explicit where manifests omit them."""
    o = copy.deepcopy(o)
    o.pop("status", None)
    meta = o.get("metadata") or {}
    o["metadata"] = {k: meta[k] for k in ("name", "namespace") if k in meta}
    kind = o.get("kind")
    if kind in ("ClusterRole", "Role"):
        rules = []
        for r in o.get("rules") or []:
            rules.append({k: sorted(v) if isinstance(v, list) else v for k, v in r.items()})
        o["rules"] = sorted(rules, key=lambda r: yaml.safe_dump(r, sort_keys=True))
    if kind == "Deployment":
        spec = o.setdefault("spec", {})
        spec.pop("selector", None)
        spec.setdefault("replicas", 1)
        tmpl = spec.setdefault("template", {})
        tmpl.pop("metadata", None)
        pod = tmpl.setdefault("spec", {})
        pod.setdefault("terminationGracePeriodSeconds", 30)
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            _default_container(c)
    if kind == "Service":
        spec = o.setdefault("spec", {})
        spec.pop("selector", None)
        spec.setdefault("type", "ClusterIP")
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
    if kind == "ServiceAccount":
        o.setdefault("automountServiceAccountToken", True)
    return o


def selectors_consistent(docs):
    """Problems where a Deployment's or Service's selector does not select its own pods."""
    problems = []
    pods = [d for d in docs if d.get("kind") == "Deployment"]
    for d in pods:
        sel = d["spec"]["selector"].get("matchLabels", {})
        labels = (d["spec"]["template"].get("metadata") or {}).get("labels", {})
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            problems.append(f"{obj_id(d)}: selector {sel} does not match its pod labels {labels}")
    for s in (d for d in docs if d.get("kind") == "Service"):
        sel = s["spec"].get("selector") or {}
        if sel and not any(all((p["spec"]["template"].get("metadata") or {}).get("labels", {}).get(k) == v
                               for k, v in sel.items()) for p in pods):
            problems.append(f"{obj_id(s)}: selector {sel} selects no pod of the chart")
    return problems


def diff(a, b, path=""):
    """Human-readable differences between two normalised objects."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in a:
                out.append(f"{p}: only in deploy/: {b[k]!r}")
            elif k not in b:
                out.append(f"{p}: only in the chart: {a[k]!r}")
            else:
                out += diff(a[k], b[k], p)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            out += diff(x, y, f"{path}[{i}]")
    elif a != b:
        out.append(f"{path}: chart {a!r} != deploy/ {b!r}")
    return out


def compare_with_deploy(rendered, report, label):
    deploy_docs = read_yaml_files(os.path.join(DEPLOY, "operator", "**", "*.yaml"))
    if not deploy_docs:
        report.fail(f"{label}: deploy/operator/ has manifests to compare with", "none found")
        return
    chart_by_id = {obj_id(d): d for d in rendered}
    compared = 0
    for path, d in deploy_docs:
        if d.get("kind") == "Namespace":
            continue  # Helm installs into a namespace it does not own (--create-namespace)
        key = obj_id(d)
        ours = chart_by_id.get(key)
        if ours is None:
            report.fail(f"{label}: {key} (from {path}) is rendered by the chart",
                        f"chart objects: {sorted(chart_by_id)}")
            continue
        differences = diff(normalise(ours), normalise(d))
        compared += 1
        report.expect(not differences, f"{label}: {key} matches {path}", "\n".join(differences[:20]))
    report.expect(compared > 0, f"{label}: compared {compared} objects with deploy/operator/")


# ------------------------------------------------------------------------------------------------
# per-chart checks
# ------------------------------------------------------------------------------------------------

def check_operator_chart(chart_dir, rendered_sets, report, helm, crds):
    label = "qdrant-operator"
    # The CRD ships in crds/ (installed before templates, never upgraded or deleted by Helm, so
    # uninstalling the chart keeps every QdrantCluster), and is exactly the generated one.
    chart_crds = [d for _, d in read_yaml_files(os.path.join(chart_dir, "crds", "*.yaml"))]
    report.expect(len(chart_crds) >= 1 and all(c.get("kind") == "CustomResourceDefinition" for c in chart_crds),
                  f"{label}: crds/ holds the CustomResourceDefinition(s)")
    report.expect(sorted(map(yaml.safe_dump, chart_crds)) == sorted(map(yaml.safe_dump, crds)),
                  f"{label}: crds/ equals deploy/crds (the crdgen output)",
                  "run: cp deploy/crds/*.yaml charts/qdrant-operator/crds/")
    templated_crds = [d for d in rendered_sets["default"]["templates"] if d.get("kind") == "CustomResourceDefinition"]
    report.expect(not templated_crds, f"{label}: no CRD among the templates (Helm would delete it on uninstall)")
    for name, rs in rendered_sets.items():
        hooks = [d for d in rs["templates"]
                 if (d.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook") == "test"]
        if rs["values"].get("tests", {}).get("enabled", True):
            report.expect(any(d["kind"] == "Pod" for d in hooks), f"{label} [{name}]: renders a `helm test` hook pod")
    for name, rs in rendered_sets.items():
        problems = selectors_consistent(rs["templates"])
        report.expect(not problems, f"{label} [{name}]: selectors select the chart's own pods", "\n".join(problems))
    # Rendered as the release deploy/ describes, the chart must produce deploy/operator/.
    compare_with_deploy(rendered_sets["default"]["templates"], report, f"{label} vs deploy/")


SPEC_FROM_VALUES = [
    # (values path, spec path); compared when the value is set (non-empty)
    ("size", "size"), ("image", "image"), ("version", "version"), ("imagePullPolicy", "imagePullPolicy"),
    ("imagePullSecrets", "imagePullSecrets"), ("resources", "resources"), ("storage.size", "storage.size"),
    ("storage.storageClassName", "storage.storageClassName"),
    ("storage.deleteClaimsOnDelete", "storage.deleteClaimsOnDelete"), ("config", "config"),
    ("service.type", "service.type"), ("service.annotations", "service.annotations"),
    ("apiKey", "apiKey"), ("readOnlyApiKey", "readOnlyApiKey"), ("tls", "tls"),
    ("nodeSelector", "nodeSelector"), ("tolerations", "tolerations"), ("affinity", "affinity"),
    ("topologySpreadConstraints", "topologySpreadConstraints"),
    ("podDisruptionBudget.enabled", "podDisruptionBudget.enabled"),
    ("podDisruptionBudget.maxUnavailable", "podDisruptionBudget.maxUnavailable"),
    ("podDisruptionBudget.minAvailable", "podDisruptionBudget.minAvailable"),
    ("networkPolicy.enabled", "networkPolicy.enabled"), ("suspend", "suspend"), ("rebalance", "rebalance"),
    ("terminationGracePeriodSeconds", "terminationGracePeriodSeconds"),
]


def _get(d, path):
    for part in path.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def check_cluster_chart(chart_dir, rendered_sets, report, helm, crds):
    label = "qdrant-cluster"
    index = CrdIndex(crds)
    for name, rs in rendered_sets.items():
        qcs = [d for d in rs["templates"] if d.get("kind") == "QdrantCluster"]
        if not report.expect(len(qcs) == 1, f"{label} [{name}]: renders exactly one QdrantCluster"):
            continue
        qc, values = qcs[0], rs["values"]
        release, namespace = RELEASES[label]
        want_name = values.get("fullnameOverride") or release
        report.expect(qc["metadata"]["name"] == want_name and qc["metadata"]["namespace"] == namespace,
                      f"{label} [{name}]: QdrantCluster is {namespace}/{want_name}")
        mismatches = []
        for vpath, spath in SPEC_FROM_VALUES:
            v = _get(values, vpath)
            if v in (None, "", {}, []):
                continue
            s = _get(qc["spec"], spath)
            if s != v and str(s) != str(v):
                mismatches.append(f"values.{vpath}={v!r} but spec.{spath}={s!r}")
        report.expect(not mismatches, f"{label} [{name}]: values map onto the spec", "\n".join(mismatches))
        hooks = [d for d in rs["templates"]
                 if (d.get("metadata", {}).get("annotations") or {}).get("helm.sh/hook") == "test"]
        want_hook = values.get("tests", {}).get("enabled", True) and not values.get("tls")
        report.expect(bool(hooks) == bool(want_hook), f"{label} [{name}]: helm test hook rendered iff wanted")
        for h in hooks:
            image = h["spec"]["containers"][0]["image"]
            expected_image = values.get("tests", {}).get("image") or None
            if expected_image is None:
                schema = index.schema_for(qc) or {}
                spec_schema = schema.get("properties", {}).get("spec", {}).get("properties", {})
                img = values.get("image") or spec_schema.get("image", {}).get("default")
                ver = values.get("version") or spec_schema.get("version", {}).get("default")
                if not img or not ver:
                    report.fail(f"{label} [{name}]: the CRD gives defaults for spec.image and spec.version")
                    continue
                last = img.rsplit("/", 1)[-1]
                expected_image = img if ("@" in img or ":" in last) else f"{img}:{ver}"
            report.expect(image == expected_image, f"{label} [{name}]: test pod runs {expected_image}",
                          f"got {image}")


CHECKS = {"qdrant-operator": check_operator_chart, "qdrant-cluster": check_cluster_chart}


def check_validators(crds, report):
    """The validators are not vacuous: deploy/examples pass, known-bad objects are caught."""
    index = CrdIndex(crds)
    examples = [(p, d) for p, d in read_yaml_files(os.path.join(DEPLOY, "examples", "*.yaml"))
                if d.get("kind") == "QdrantCluster"]
    report.expect(bool(examples), "validators: deploy/examples has QdrantClusters")
    for path, d in examples:
        schema = index.schema_for(d)
        errors = validate_custom(d, schema) if schema else ["no CRD schema"]
        report.expect(not errors, f"validators: {path} is a valid QdrantCluster", "\n".join(errors))
    if not examples:
        return
    base = examples[0][1]

    def mutated(fn):
        o = copy.deepcopy(base)
        fn(o)
        return o
    bad_crs = {
        "size 0 (schema minimum)": lambda o: o["spec"].__setitem__("size", 0),
        "unknown spec field": lambda o: o["spec"].__setitem__("replicas", 3),
        "service type Foo (enum)": lambda o: o["spec"].__setitem__("service", {"type": "Foo"}),
        "60-character name (CEL rule)": lambda o: o["metadata"].__setitem__("name", "a" * 60),
        "both PDB fields (CEL rule)": lambda o: o["spec"].__setitem__(
            "podDisruptionBudget", {"maxUnavailable": 1, "minAvailable": 1}),
    }
    for what, fn in bad_crs.items():
        obj = mutated(fn)
        report.expect(bool(validate_custom(obj, index.schema_for(obj))),
                      f"validators: a QdrantCluster with {what} is rejected")
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                  "spec": {"replica": 2, "selector": {"matchLabels": {"a": "b"}},
                           "template": {"metadata": {"labels": {"a": "b"}},
                                        "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    report.expect(bool(validate_builtin(deployment, K8S_VERSIONS)),
                  "validators: a Deployment with a misspelt field (spec.replica) is rejected")
    good = copy.deepcopy(deployment)
    good["spec"]["replicas"] = good["spec"].pop("replica")
    report.expect(not validate_builtin(good, K8S_VERSIONS), "validators: the corrected Deployment passes")
    rendered = normalise(good)
    changed = copy.deepcopy(good)
    changed["spec"]["template"]["spec"]["containers"][0]["args"] = ["--x"]
    report.expect(bool(diff(rendered, normalise(changed))), "validators: the deploy/ comparison sees a changed arg")


# ------------------------------------------------------------------------------------------------

def chart_values(chart_dir, values_file):
    with open(os.path.join(chart_dir, "values.yaml")) as f:
        values = yaml.safe_load(f) or {}
    if values_file:
        with open(values_file) as f:
            overlay = yaml.safe_load(f) or {}

        def merge(a, b):
            for k, v in b.items():
                if isinstance(v, dict) and isinstance(a.get(k), dict):
                    merge(a[k], v)
                else:
                    a[k] = v
        merge(values, overlay)
    return values


def check_chart(helm, chart_dir, crds, report):
    chart = os.path.basename(chart_dir)
    release, namespace = RELEASES.get(chart, (chart, "default"))
    crd_index = CrdIndex(crds + [d for _, d in read_yaml_files(os.path.join(chart_dir, "crds", "*.yaml"))])
    value_files = [None] + sorted(glob.glob(os.path.join(chart_dir, "ci", "*.yaml")))
    rendered_sets = {}
    for vf in value_files:
        name = "default" if vf is None else os.path.basename(vf)
        extra = ["-f", vf] if vf else []
        rc, out, err = run([helm, "lint", "--strict", chart_dir, *extra])
        report.expect(rc == 0, f"{chart} [{name}]: helm lint --strict", (out + err)[-2000:])
        rc, out, err = run([helm, "template", release, chart_dir, "-n", namespace, "--include-crds", *extra])
        if not report.expect(rc == 0, f"{chart} [{name}]: helm template", err[-2000:]):
            continue
        try:
            docs = load_docs(out)
        except yaml.YAMLError as exc:
            report.fail(f"{chart} [{name}]: rendered YAML parses", str(exc))
            continue
        validate_objects(docs, crd_index, report, f"{chart} [{name}]")
        rc, out, err = run([helm, "template", release, chart_dir, "-n", namespace, *extra])
        rendered_sets[name] = {"templates": load_docs(out) if rc == 0 else [],
                               "values": chart_values(chart_dir, vf)}
    for bad in sorted(glob.glob(os.path.join(chart_dir, "ci", "invalid", "*.yaml"))):
        name = os.path.basename(bad)
        with open(bad) as f:
            m = re.search(r"^# expect: (.+)$", f.read(), re.M)
        rc, out, err = run([helm, "template", release, chart_dir, "-n", namespace, "-f", bad])
        message = out + err
        ok = rc != 0 and (m is None or re.search(m.group(1).strip(), message, re.I))
        report.expect(ok, f"{chart} [invalid/{name}]: refused by values.schema.json"
                      + (f" ({m.group(1).strip()})" if m else ""), f"rc={rc}: {message[-600:]}")
    check = CHECKS.get(chart)
    if check and "default" in rendered_sets:
        check(chart_dir, rendered_sets, report, helm, crds)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--helm", action="append", required=True, help="helm binary (repeatable)")
    args = parser.parse_args()
    report = Report()
    crds = deploy_crds()
    if not crds:
        report.fail("deploy/crds holds the generated CustomResourceDefinition", "none found")
    print("-- validators")
    check_validators(crds, report)
    charts = sorted(os.path.dirname(p) for p in glob.glob(os.path.join(CHARTS, "*", "Chart.yaml")))
    report.expect(len(charts) >= 2, f"charts found: {[os.path.basename(c) for c in charts]}")
    for helm in args.helm:
        print(f"== helm {helm_version(helm)} ({helm})")
        for chart_dir in charts:
            print(f"-- {os.path.basename(chart_dir)}")
            check_chart(helm, chart_dir, crds, report)
    print()
    if report.problems:
        print(f"check-charts: {len(report.problems)} of {report.checks} checks FAILED")
        for p in report.problems:
            print(f"  - {p.splitlines()[0]}")
        return 1
    print(f"check-charts: all {report.checks} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
