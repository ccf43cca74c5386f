"""Offline validation of rendered Kubernetes objects, used by scripts/check-charts.sh.

* Built-in kinds: `kubernetes-validate` (Kubernetes' own OpenAPI schemas, strict: unknown fields
  are errors, as with `kubectl apply`'s default server-side field validation).
* Custom resources: the CRD's openAPIV3Schema the way the apiserver applies it: structural
  defaulting first, then the schema (unknown fields rejected unless
  x-kubernetes-preserve-unknown-fields), then every x-kubernetes-validations CEL rule (transition
  rules are evaluated as a no-op update, oldSelf = self).
"""

import copy
import re

import jsonschema
import kubernetes_validate
import yaml

try:
    import cel  # PyPI common-expression-language
except ImportError:  # pragma: no cover - reported by the caller
    cel = None


def load_docs(text):
    return [d for d in yaml.safe_load_all(text) if d]


# ------------------------------------------------------------------------------------------------
# built-in kinds
# ------------------------------------------------------------------------------------------------

def validate_builtin(obj, k8s_versions):
    """Error strings (empty when valid) for a built-in object against each Kubernetes version."""
    errors = []
    for version in k8s_versions:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"k8s {version}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"k8s {version}: {exc.message}")
    return errors


# ------------------------------------------------------------------------------------------------
# custom resources
# ------------------------------------------------------------------------------------------------

class CrdIndex:
    """openAPIV3Schemas by (apiVersion, kind) from CustomResourceDefinition objects."""

    def __init__(self, crds):
        self.schemas = {}
        for crd in crds:
            spec = crd["spec"]
            for v in spec["versions"]:
                if v.get("served", True):
                    key = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                    self.schemas[key] = v["schema"]["openAPIV3Schema"]

    def schema_for(self, obj):
        return self.schemas.get((obj.get("apiVersion"), obj.get("kind")))


def _to_json_schema(s):
    """Kubernetes structural schema -> JSON Schema (draft 7)."""
    if not isinstance(s, dict):
        return s
    out = {}
    for k, v in s.items():
        if k in ("properties", "patternProperties", "definitions"):
            out[k] = {name: _to_json_schema(sub) for name, sub in v.items()}
        elif k in ("items", "additionalProperties", "not"):
            out[k] = _to_json_schema(v) if isinstance(v, dict) else v
        elif k in ("allOf", "anyOf", "oneOf"):
            out[k] = [_to_json_schema(sub) for sub in v]
        elif k.startswith("x-kubernetes-") or k in ("nullable", "format", "default", "description",
                                                     "example", "externalDocs"):
            continue
        else:
            out[k] = v
    if s.get("x-kubernetes-int-or-string"):
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if s.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if "properties" in s and "additionalProperties" not in s and not s.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def apply_defaults(schema, value):
    """Structural defaulting as the apiserver does it (recursively, also inside defaults)."""
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name, sub in props.items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
        for name, sub in props.items():
            if name in value:
                value[name] = apply_defaults(sub, value[name])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name in value:
                if name not in props:
                    value[name] = apply_defaults(extra, value[name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [apply_defaults(schema["items"], v) for v in value]
    return value


def _cel_rules(schema, value, path, errors):
    for rule in schema.get("x-kubernetes-validations", []) or []:
        expr = rule["rule"]
        ctx = {"self": value}
        if re.search(r"\boldSelf\b", expr):
            ctx["oldSelf"] = value
        try:
            ok = cel.evaluate(expr, ctx)
        except Exception as exc:  # noqa: BLE001 - an unevaluable rule is an error too
            errors.append(f"{path or '<root>'}: CEL rule {expr!r} failed to evaluate: {exc}")
            continue
        if ok is not True:
            errors.append(f"{path or '<root>'}: {rule.get('message') or 'CEL rule ' + repr(expr)}")
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name in value:
                _cel_rules(sub, value[name], f"{path}.{name}" if path else name, errors)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for name, v in value.items():
                if name not in (schema.get("properties") or {}):
                    _cel_rules(extra, v, f"{path}.{name}" if path else name, errors)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, v in enumerate(value):
            _cel_rules(schema["items"], v, f"{path}[{i}]", errors)


def validate_custom(obj, schema):
    """Error strings for a custom resource against its CRD's openAPIV3Schema."""
    if cel is None:
        return ["the CEL evaluator (PyPI common-expression-language) is not installed"]
    obj = apply_defaults(schema, copy.deepcopy(obj))
    errors = []
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*", name or "") \
            or len(name) > 253:
        errors.append(f"metadata.name {name!r} is not a DNS-1123 subdomain")
    js = _to_json_schema(schema)
    # apiVersion, kind and metadata are the apiserver's own business, not the CRD schema's.
    props = js.setdefault("properties", {})
    props["metadata"] = {"type": "object"}
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    validator = jsonschema.Draft7Validator(js)
    for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.path)):
        path = ".".join(str(p) for p in err.path)
        errors.append(f"{path or '<root>'}: {err.message}")
    if not errors:
        _cel_rules(schema, obj, "", errors)
    return errors
