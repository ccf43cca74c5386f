#!/usr/bin/env python3
"""Offline checks of deploy/ (run by scripts/check-deploy.sh; exits non-zero on any problem).

* Built-in objects (deploy/operator/*.yaml, the CRD object itself, and the objects the operator's
  builders render in operator/tests/golden/) are validated against Kubernetes' own OpenAPI schemas
  with PyPI `kubernetes-validate`, strictly (unknown fields are errors, as with `kubectl apply`).
* Custom resources (deploy/examples/*.yaml) are validated against the generated CRD's
  openAPIV3Schema the way the apiserver does it: structural defaulting, then the schema (unknown
  fields rejected unless x-kubernetes-preserve-unknown-fields), then the x-kubernetes-validations
  CEL rules (PyPI common-expression-language).
* A self-test feeds known-bad custom resources (and a forbidden update) through the same checks and
  fails if any of them is accepted, so the checks cannot pass vacuously.
"""

import copy
import glob
import os
import sys

import jsonschema
import kubernetes_validate
import yaml

try:
    import cel
except ImportError:  # pragma: no cover
    cel = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
K8S_VERSIONS = ["1.33.0", "1.37.0"]


class KubeLoader(yaml.SafeLoader):
    """SafeLoader without the YAML 1.1 timestamp rule: like kubectl, an unquoted RFC 3339 value
    stays a string."""


KubeLoader.yaml_implicit_resolvers = {
    ch: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.load_all(f, Loader=KubeLoader) if d]


def builtin_errors(obj):
    errors = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"k8s {version}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"k8s {version}: no schema: {exc}")
    return errors


def to_json_schema(s):
    """Kubernetes structural schema -> JSON Schema."""
    if not isinstance(s, dict):
        return s
    out = {}
    for key, value in s.items():
        if key == "properties":
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value) if isinstance(value, dict) else value
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        elif key.startswith("x-kubernetes-") or key in ("nullable", "format", "default", "description"):
            continue
        else:
            out[key] = value
    if s.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("type") == "object" and "properties" in s and not s.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


def apply_defaults(schema, value):
    """Structural defaulting, as the apiserver does before validation."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(sub, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def cel_errors(schema, value, old, path="self"):
    """Evaluates x-kubernetes-validations. Transition rules (oldSelf) run only when `old` exists."""
    errors = []
    if not isinstance(schema, dict) or value is None:
        return errors
    for rule in schema.get("x-kubernetes-validations", []):
        expression = rule["rule"]
        if "oldSelf" in expression and old is None:
            continue
        context = {"self": value}
        if old is not None:
            context["oldSelf"] = old
        try:
            ok = cel.evaluate(expression, context)
        except Exception as exc:  # noqa: BLE001 - any evaluation failure is a finding
            errors.append(f"{path}: cannot evaluate {expression!r}: {exc}")
            continue
        if ok is not True:
            errors.append(f"{path}: {rule.get('message', expression)}")
    if isinstance(value, dict):
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                sub_old = old.get(name) if isinstance(old, dict) else None
                errors += cel_errors(sub, value[name], sub_old, f"{path}.{name}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            errors += cel_errors(schema["items"], item, None, f"{path}[{i}]")
    return errors


def with_object_meta(schema):
    """The CRD schema leaves apiVersion, kind and metadata to the apiserver."""
    schema = copy.deepcopy(schema)
    properties = schema.setdefault("properties", {})
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    properties.setdefault("metadata", {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    return schema


def custom_resource_errors(schema, obj, old=None):
    schema = with_object_meta(schema)
    obj = apply_defaults(schema, copy.deepcopy(obj))
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in jsonschema.Draft7Validator(to_json_schema(schema)).iter_errors(obj)
    ]
    if not errors:
        if old is not None:
            old = apply_defaults(schema, copy.deepcopy(old))
        errors += cel_errors(schema, obj, old)
    return errors


def crd_schema(crd):
    versions = crd["spec"]["versions"]
    return f"{crd['spec']['group']}/{versions[0]['name']}", crd["spec"]["names"]["kind"], versions[0]["schema"]["openAPIV3Schema"]


def minimal(spec, name="demo"):
    return {"apiVersion": "qdrant.dev/v1alpha1", "kind": "QdrantCluster",
            "metadata": {"name": name, "namespace": "qdrant"}, "spec": spec}


def self_test(schema):
    """Known-bad inputs that must be rejected (and a known-good one that must pass)."""
    problems = []
    good = minimal({"size": 3})
    if custom_resource_errors(schema, good):
        problems.append(f"self-test: a minimal valid QdrantCluster was rejected: {custom_resource_errors(schema, good)}")
    bad = {
        "unknown field": minimal({"size": 3, "replicas": 3}),
        "size 0": minimal({"size": 0}),
        "size 101": minimal({"size": 101}),
        "size as string": minimal({"size": "three"}),
        "config not an object": minimal({"config": "log_level: INFO"}),
        "bad service type": minimal({"service": {"type": "Ingress"}}),
        "empty image": minimal({"image": ""}),
        "both PDB fields": minimal({"podDisruptionBudget": {"maxUnavailable": 1, "minAvailable": 1}}),
        "tls without secret": minimal({"tls": {"p2p": True}}),
        "name too long": minimal({}, name="a" * 53),
        "name not DNS-1035": minimal({}, name="9-lives"),
    }
    for what, obj in bad.items():
        if not custom_resource_errors(schema, obj):
            problems.append(f"self-test: '{what}' was accepted")
    updates = {
        "storage class change": (minimal({"storage": {"storageClassName": "a"}}),
                                 minimal({"storage": {"storageClassName": "b"}})),
        "storage size change": (minimal({}), minimal({"storage": {"size": "20Gi"}})),
        "p2p TLS switch": (minimal({}), minimal({"tls": {"secretName": "t", "p2p": True}})),
    }
    for what, (old, new) in updates.items():
        if not custom_resource_errors(schema, new, old):
            problems.append(f"self-test: forbidden update '{what}' was accepted")
    if custom_resource_errors(schema, minimal({"size": 5}), minimal({"size": 3})):
        problems.append("self-test: scaling 3 -> 5 was rejected")
    return problems


def main():
    if cel is None:
        print("check_deploy: PyPI common-expression-language is not installed", file=sys.stderr)
        return 1
    problems = []
    checked = 0
    crd_files = sorted(glob.glob(os.path.join(ROOT, "deploy/crds/*.yaml")))
    schemas = {}
    for path in crd_files:
        for doc in load_docs(path):
            checked += 1
            problems += [f"{path}: {e}" for e in builtin_errors(doc)]
            api_version, kind, schema = crd_schema(doc)
            schemas[(api_version, kind)] = schema
    if ("qdrant.dev/v1alpha1", "QdrantCluster") not in schemas:
        problems.append("deploy/crds: no QdrantCluster CRD found")
    else:
        problems += self_test(schemas[("qdrant.dev/v1alpha1", "QdrantCluster")])

    for pattern in ("deploy/operator/*.yaml", "deploy/examples/*.yaml"):
        for path in sorted(glob.glob(os.path.join(ROOT, pattern))):
            for doc in load_docs(path):
                checked += 1
                schema = schemas.get((doc.get("apiVersion"), doc.get("kind")))
                errors = custom_resource_errors(schema, doc) if schema else builtin_errors(doc)
                problems += [f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}: {e}" for e in errors]

    examples = [d for p in glob.glob(os.path.join(ROOT, "deploy/examples/*.yaml")) for d in load_docs(p)]
    if not any(d.get("kind") == "QdrantCluster" for d in examples):
        problems.append("deploy/examples: no QdrantCluster example")
    kinds = {d.get("kind") for p in glob.glob(os.path.join(ROOT, "deploy/operator/*.yaml")) for d in load_docs(p)}
    for kind in ("Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"):
        if kind not in kinds:
            problems.append(f"deploy/operator: no {kind}")

    golden = sorted(glob.glob(os.path.join(ROOT, "operator/tests/golden/**/*.yaml"), recursive=True))
    for path in golden:
        for doc in load_docs(path):
            if isinstance(doc, dict):
                checked += 1
                problems += [f"{path}: {e}" for e in builtin_errors(doc)]
    if not golden:
        problems.append("operator/tests/golden: no rendered objects to validate")

    for p in problems:
        print(f"FAIL {p}", file=sys.stderr)
    print(f"check_deploy: {checked} objects checked against Kubernetes {', '.join(K8S_VERSIONS)} "
          f"and the QdrantCluster CRD; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
