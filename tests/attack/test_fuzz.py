"""API fuzzing: schemathesis generates valid and invalid requests for every REST operation of
Qdrant's OpenAPI spec (rebuilt from the official client, see openapi_from_client.py) and sends
them to a live node holding data. Every answer must be below 500, the node must stay up, and its
log must hold no panic.

Env: ATTACK_FUZZ_EXAMPLES (test cases per operation and phase, default 40),
     ATTACK_FUZZ_SEED (default 1; `random` picks one, printed), ATTACK_FUZZ_MAX_TIME (seconds per run, default 150).
"""

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import openapi_from_client
from conftest import QdrantServer, qdrant_binary

COLLECTIONS = ["fuzz", "fuzz_named"]
# Deleting the collections would leave every later case a 404.
EXCLUDED = ["delete_collection"]


def fill(node):
    url = node.url
    r = requests.put(f"{url}/collections/fuzz", json={"vectors": {"size": 4, "distance": "Dot"}}, timeout=30)
    assert r.status_code == 200, r.text
    r = requests.put(f"{url}/collections/fuzz_named", json={
        "vectors": {"a": {"size": 4, "distance": "Cosine"},
                    "m": {"size": 2, "distance": "Euclid", "multivector_config": {"comparator": "max_sim"}}},
        "sparse_vectors": {"s": {"modifier": "idf"}},
    }, timeout=30)
    assert r.status_code == 200, r.text
    points = [{"id": i, "vector": [i, 1.0, -1.0, 0.5], "payload": {"k": f"v{i % 5}", "n": i, "t": "some words here"}}
              for i in range(1, 201)]
    r = requests.put(f"{url}/collections/fuzz/points?wait=true", json={"points": points}, timeout=30)
    assert r.status_code == 200, r.text
    named = [{"id": i, "vector": {"a": [1.0, i, 0.0, 1.0], "m": [[1.0, 2.0], [i, 0.5]],
                                  "s": {"indices": [0, i], "values": [0.5, 1.0]}}, "payload": {"k": f"v{i % 3}"}}
             for i in range(1, 51)]
    r = requests.put(f"{url}/collections/fuzz_named/points?wait=true", json={"points": named}, timeout=30)
    assert r.status_code == 200, r.text
    for field, schema in [("k", "keyword"), ("n", "integer"), ("t", "text")]:
        r = requests.put(f"{url}/collections/fuzz/index?wait=true", json={"field_name": field, "field_schema": schema}, timeout=30)
        assert r.status_code == 200, r.text


def schemathesis(spec, url, report, seed, phases, mode, examples, max_time):
    """One schemathesis run: every operation but EXCLUDED, only the not_a_server_error check."""
    command = [str(Path(sys.executable).parent / "schemathesis"), "run", str(spec), "--url", url,
               "--checks", "not_a_server_error", "--phases", phases, "--mode", mode,
               "--max-examples", str(examples), "--seed", str(seed), "--workers", "2",
               "--request-timeout", "30", "--max-time", str(max_time), "--no-shrink",
               "--suppress-health-check", "all", "--generation-database", "none", "--no-color",
               "--report", "json", "--report-json-path", str(report)]
    for op in EXCLUDED:
        command += ["--exclude-operation-id", op]
    run = subprocess.run(command, capture_output=True, text=True, timeout=max_time + 240, cwd=report.parent)
    data = json.loads(report.read_text())
    # The fuzzer's own crashes while generating an input (no request sent): CPython 3.11.7's
    # "AST constructor recursion depth mismatch" in hypothesis' lambda descriptions, deep in a
    # recursive schema, broke one CI run. Counted apart; any other error still fails the test.
    # The report names errors only by title and count: the crash is recognised in the output.
    runtime = sum(e.get("count", 1) for e in data["errors"] if e.get("title") == "Runtime Error")
    harness = min(runtime, run.stdout.count("AST constructor recursion depth mismatch"))
    figures = {
        "operations": data["operations"]["tested"],
        "requests": data["test_cases"]["generated"],
        "server_errors": sum(f["count"] for f in data["failures"] if f["code"] == "ST101"),
        "other_failures": sum(f["count"] for f in data["failures"] if f["code"] != "ST101"),
        "errors": sum(e.get("count", 1) for e in data["errors"]) - harness,
        "generation_crashes": harness,
        "seconds": round(data["running_time"]),
    }
    return run, figures


@pytest.mark.timeout(900)
def test_fuzzing_every_operation_of_the_openapi_spec_gets_no_server_error(tmp_path):
    """Two runs: the coverage phase (boundary values, valid and invalid, for every parameter and
    property) and then random valid requests until the time budget is spent. (Random invalid
    requests are what the coverage phase already sends; generating them over Qdrant's large
    schemas is slower than the node answers them.)"""
    examples = int(os.environ.get("ATTACK_FUZZ_EXAMPLES", "40"))
    # A fixed seed by default keeps CI repeatable; ATTACK_FUZZ_SEED=random explores.
    seed = os.environ.get("ATTACK_FUZZ_SEED", "1")
    seed = random.randrange(1 << 31) if seed == "random" else int(seed)
    max_time = int(os.environ.get("ATTACK_FUZZ_MAX_TIME", "150"))
    node = QdrantServer(qdrant_binary(), name="fuzz", extra_env={"QDRANT__LOG_LEVEL": "WARN"})
    try:
        node.start()
        fill(node)
        document, skipped, _ = openapi_from_client.spec(COLLECTIONS)
        spec = tmp_path / "qdrant-openapi.json"
        spec.write_text(json.dumps(document))
        print(f"\nfuzz: seed {seed}; {examples} examples per operation; skipped (multipart): {', '.join(skipped)}")
        runs = [("coverage", "all"), ("fuzzing", "positive")]
        total = {}
        for phases, mode in runs:
            run, figures = schemathesis(spec, node.url, tmp_path / f"{phases}.json", seed, phases, mode, examples, max_time)
            print(f"fuzz {phases} ({mode}): " + json.dumps(figures))
            assert node.process.poll() is None, f"the node died under fuzzing\n{node.log_tail()}"
            assert figures["server_errors"] == 0, f"5xx answers ({phases}, seed {seed}):\n{run.stdout[-20000:]}"
            assert figures["errors"] == 0, f"schemathesis errors ({phases}, seed {seed}):\n{run.stdout[-20000:]}"
            assert figures["generation_crashes"] <= 3, f"the fuzzer kept crashing ({phases}):\n{run.stdout[-20000:]}"
            for k in ("operations", "requests", "server_errors"):
                total[k] = total.get(k, 0) + figures[k]
        total["operations"] //= len(runs)
        print("fuzz figures: " + json.dumps(total))
        assert total["operations"] >= 60, total
        assert requests.get(node.url + "/collections", timeout=5).status_code == 200
        log = node.log_path.read_text(errors="replace")
        assert "panicked" not in log, node.log_tail(200)
    finally:
        node.cleanup()
