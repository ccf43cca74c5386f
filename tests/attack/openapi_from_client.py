"""Qdrant's REST API as an OpenAPI 3.1 document, rebuilt from the official Python client.

The `qdrant-client` package is generated from Qdrant's OpenAPI spec: each `_build_for_<op>`
method of `qdrant_client.http.api` names the operation's HTTP method, path, path and query
parameters and body model, and the pydantic models carry the schemas. Recording what each
builder asks for and asking pydantic for the JSON Schemas gives back the operations of the
spec without a copy of it in this repository.

Path parameters are pinned where fuzzing them would only ever reach "not found":
`collection_name` is one of the collections the fuzz run creates.

    python openapi_from_client.py OUT.json --collection fuzz [--collection other]
"""

import argparse
import enum
import importlib
import inspect
import json
import pkgutil
import sys
import typing

import pydantic
import qdrant_client.http.api as api_package

PRIMITIVES = {str: {"type": "string"}, int: {"type": "integer"}, bool: {"type": "boolean"}, float: {"type": "number"}}


class Recorder:
    """Stands in for the client's ApiClient: returns what a builder would have sent."""

    def request(self, **kwargs):
        return kwargs


def placeholder(annotation):
    """A value every builder accepts for a parameter (it only formats or serialises it)."""
    if annotation in (int, bool, float):
        return annotation(1)
    return "x"


def builders():
    """(operation name, builder method) for every operation of the client's REST API."""
    for info in pkgutil.iter_modules(api_package.__path__):
        module = importlib.import_module(f"{api_package.__name__}.{info.name}")
        for cls_name, cls in inspect.getmembers(module, inspect.isclass):
            if not (cls_name.startswith("_") and cls_name.endswith("Api")):
                continue
            instance = cls(Recorder())
            for name, method in inspect.getmembers(instance, inspect.ismethod):
                if name.startswith("_build_for_"):
                    yield name[len("_build_for_"):], method


class Schemas:
    """JSON Schemas of annotations, their definitions collected as components."""

    def __init__(self):
        self.components = {}
        self.failed = []

    def of(self, annotation, where):
        if annotation in PRIMITIVES:
            return dict(PRIMITIVES[annotation])
        try:
            schema = pydantic.TypeAdapter(annotation).json_schema(ref_template="#/components/schemas/{model}")
        except Exception as e:  # a type pydantic cannot describe: any JSON value
            self.failed.append(f"{where}: {e}")
            return {}
        self.components.update(schema.pop("$defs", {}))
        return schema


def operation(name, builder, schemas, collections):
    signature = inspect.signature(builder)
    hints = typing.get_type_hints(builder)
    args = {p: placeholder(hints.get(p)) for p in signature.parameters}
    sent = builder(**args)
    if "files" in sent:
        return None  # multipart uploads: not described by a JSON body schema
    path_params = set((sent.get("path_params") or {}).keys())
    query_params = set((sent.get("params") or {}).keys())
    parameters = []
    body = None
    for param in signature.parameters:
        annotation = hints.get(param, str)
        if param in path_params:
            schema = {"type": "string", "enum": collections} if param == "collection_name" else schemas.of(annotation, f"{name}.{param}")
            parameters.append({"name": param, "in": "path", "required": True, "schema": schema})
        elif param in query_params:
            parameters.append({"name": param, "in": "query", "required": False, "schema": schemas.of(annotation, f"{name}.{param}")})
        elif sent.get("content") is not None:
            body = schemas.of(annotation, f"{name}.{param}")
    op = {"operationId": name, "parameters": parameters, "responses": {"default": {"description": "any response"}}}
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return sent["method"].lower(), sent["url"], op


def refs_in(node):
    """The `$ref` objects inside a schema, each with its component name."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            yield node, ref.rsplit("/", 1)[1]
        for value in node.values():
            yield from refs_in(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs_in(value)


def break_cycles(components):
    """Replaces every reference that closes a cycle (a filter inside a filter, a prefetch inside a
    prefetch) by "any value". Test-case generators expand recursive schemas without end; one
    level of each still reaches every model."""
    state = {}  # name -> "open" while on the walk's path, "done" after

    def visit(name):
        state[name] = "open"
        for node, target in list(refs_in(components.get(name, {}))):
            if state.get(target) == "open":
                node.clear()
            elif target not in state:
                visit(target)
        state[name] = "done"

    for name in sorted(components):
        if name not in state:
            visit(name)


def spec(collections):
    schemas = Schemas()
    paths = {}
    skipped = []
    for name, builder in sorted(builders()):
        built = operation(name, builder, schemas, collections)
        if built is None:
            skipped.append(name)
            continue
        method, url, op = built
        paths.setdefault(url, {})[method] = op
    break_cycles(schemas.components)
    document = {
        "openapi": "3.1.0",
        "info": {"title": "Qdrant REST API (rebuilt from qdrant-client)", "version": "1.19"},
        "paths": paths,
        "components": {"schemas": schemas.components},
    }
    return document, skipped, schemas.failed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out")
    parser.add_argument("--collection", action="append", default=[])
    a = parser.parse_args()
    document, skipped, failed = spec(a.collection or ["fuzz"])
    with open(a.out, "w") as f:
        json.dump(document, f, indent=1)
    operations = sum(len(methods) for methods in document["paths"].values())
    print(f"{operations} operations on {len(document['paths'])} paths; skipped (multipart): {', '.join(skipped) or 'none'}")
    for f in failed:
        print(f"schema unavailable, any value allowed: {f}", file=sys.stderr)


if __name__ == "__main__":
    main()
