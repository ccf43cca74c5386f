"""Snapshots: create, list, download, delete and recover collection, shard and full snapshots with
the official client (REST and gRPC) and raw HTTP, as a Qdrant 1.19 user does.

Facts (Qdrant 1.19, src/actix/api/snapshot_api.rs and lib/collection/src/operations/snapshot_ops.rs):
snapshots of a collection live in `<snapshots_path>/<collection>/`, named
`<collection>-<peer>-<YYYY-MM-DD-HH-MM-SS>.snapshot`, their sha256 in `<name>.checksum`; `wait=false`
answers 202 with status `accepted`; `file://` locations must be inside the snapshots directory;
recovery checks an optional `checksum`; an upload is the multipart field `snapshot`."""

import hashlib
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from qdrant_client import models

DIM = 16


def fill(client, name, n, seed=7, shard_number=2):
    rng = np.random.default_rng(seed)
    client.create_collection(name, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
                             shard_number=shard_number,
                             optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10))
    client.create_payload_index(name, "city", models.PayloadSchemaType.KEYWORD, wait=True)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    for s in range(0, n, 500):
        client.upsert(name, wait=True, points=[
            models.PointStruct(id=i, vector=vectors[i].tolist(), payload={"city": ["berlin", "paris"][i % 2], "i": i})
            for i in range(s, min(n, s + 500))])
    return vectors


def state(client, name):
    points, nxt = client.scroll(name, limit=100_000, with_payload=True, with_vectors=True)
    assert nxt is None
    return {p.id: (p.payload, np.round(np.array(p.vector), 5).tolist()) for p in points}


def searches(client, name, queries):
    return [[(p.id, round(p.score, 4)) for p in client.query_points(
        name, query=q.tolist(), limit=10,
        query_filter=models.Filter(must=[models.FieldCondition(key="city", match=models.MatchValue(value="paris"))]),
        search_params=models.SearchParams(exact=True)).points] for q in queries]


def wait_indexed(client, name, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        info = client.get_collection(name)
        if info.indexed_vectors_count >= info.points_count:
            return info
        time.sleep(0.2)
    raise AssertionError(f"{name} not indexed: {client.get_collection(name)}")


@pytest.mark.timeout(240)
def test_collection_snapshot_roundtrip_over_the_client(qdrant_factory, transport):
    server = qdrant_factory(name="snap")
    client = server.client(transport)
    vectors = fill(client, "c", 3000)
    wait_indexed(client, "c")
    before = state(client, "c")
    queries = vectors[:5] + 0.01
    found = searches(client, "c", queries)

    snap = client.create_snapshot("c", wait=True)
    assert snap.name.startswith("c-") and snap.name.endswith(".snapshot"), snap.name
    assert snap.size > 0 and len(snap.checksum) == 64
    path = server.snapshots_path / "c" / snap.name
    assert hashlib.sha256(path.read_bytes()).hexdigest() == snap.checksum
    assert (server.snapshots_path / "c" / f"{snap.name}.checksum").read_text().strip() == snap.checksum
    assert [s.name for s in client.list_snapshots("c")] == [snap.name]

    # Writes after the snapshot are undone by recovering it.
    client.delete("c", points_selector=models.PointIdsList(points=list(range(100))), wait=True)
    client.upsert("c", wait=True, points=[models.PointStruct(id=9999, vector=[1.0] * DIM, payload={"new": True})])
    client.set_payload("c", payload={"city": "rome"}, points=[500], wait=True)
    assert client.recover_snapshot("c", location=path.as_uri(), wait=True)
    assert state(client, "c") == before
    assert searches(client, "c", queries) == found
    # The saved HNSW came with it: nothing to index again.
    info = client.get_collection("c")
    assert info.indexed_vectors_count == info.points_count == 3000, info
    assert "city" in info.payload_schema

    # Into another (new) collection, with the checksum checked.
    assert client.recover_snapshot("copy", location=path.as_uri(), checksum=snap.checksum, wait=True)
    assert state(client, "copy") == before
    assert client.get_collection("copy").config.params.shard_number == 2

    assert client.delete_snapshot("c", snap.name, wait=True)
    assert client.list_snapshots("c") == []
    assert not path.exists()


@pytest.mark.timeout(240)
def test_download_upload_shard_and_full_snapshots_over_http(qdrant_factory):
    server = qdrant_factory(name="snap-http")
    client = server.client("rest")
    fill(client, "c", 1200)
    before = state(client, "c")
    http = httpx.Client(base_url=server.url, timeout=60)

    # wait=false: 202 accepted, the snapshot appears shortly after.
    r = http.post("/collections/c/snapshots", params={"wait": "false"})
    assert r.status_code == 202 and r.json()["status"] == "accepted", r.text
    deadline = time.time() + 30
    while not http.get("/collections/c/snapshots").json()["result"] and time.time() < deadline:
        time.sleep(0.1)
    [desc] = http.get("/collections/c/snapshots").json()["result"]
    assert set(desc) >= {"name", "creation_time", "size", "checksum"}

    # Download (streamed), then upload into a fresh collection.
    r = http.get(f"/collections/c/snapshots/{desc['name']}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    data = r.content
    assert len(data) == desc["size"] and hashlib.sha256(data).hexdigest() == desc["checksum"]
    r = http.post("/collections/up/snapshots/upload", params={"checksum": desc["checksum"], "priority": "snapshot"},
                  files={"snapshot": ("x.snapshot", data)})
    assert r.status_code == 200 and r.json()["result"] is True, r.text
    assert state(client, "up") == before

    # Shard snapshots: one shard, recovered over the same shard after it changed.
    r = http.post("/collections/c/shards/0/snapshots")
    assert r.status_code == 200, r.text
    shard_snap = r.json()["result"]["name"]
    assert [s["name"] for s in http.get("/collections/c/shards/0/snapshots").json()["result"]] == [shard_snap]
    client.delete("c", points_selector=models.FilterSelector(filter=models.Filter()), wait=True)
    assert client.count("c").count == 0
    loc = (server.snapshots_path / "c" / "shards" / "0" / shard_snap).as_uri()
    r = http.put("/collections/c/shards/0/snapshots/recover", json={"location": loc})
    assert r.status_code == 200, r.text
    restored = state(client, "c")
    assert 0 < len(restored) < len(before) and all(before[i] == v for i, v in restored.items())
    r = http.get(f"/collections/c/shards/0/snapshots/{shard_snap}")
    assert r.status_code == 200 and len(r.content) > 0
    r = http.post("/collections/c/shards/1/snapshots/upload", files={"snapshot": ("s", r.content)})
    assert r.status_code == 200, r.text
    assert http.delete(f"/collections/c/shards/0/snapshots/{shard_snap}").json()["result"] is True

    # Full snapshots: every collection.
    r = http.post("/snapshots")
    assert r.status_code == 200, r.text
    full = r.json()["result"]["name"]
    assert full.startswith("full-snapshot-")
    assert [s["name"] for s in http.get("/snapshots").json()["result"]] == [full]
    r = http.get(f"/snapshots/{full}")
    assert r.status_code == 200 and hashlib.sha256(r.content).hexdigest() == r.headers["x-checksum-sha256"]
    assert http.delete(f"/snapshots/{full}").json()["result"] is True
    assert http.get("/snapshots").json()["result"] == []

    # /metrics counts them.
    metrics = http.get("/metrics").text
    created = [l for l in metrics.splitlines() if l.startswith("snapshot_created_total")]
    assert created and float(created[0].split()[-1]) >= 3, created


@pytest.mark.timeout(120)
def test_bad_snapshots_are_refused_with_clear_errors(qdrant_factory, tmp_path):
    server = qdrant_factory(name="snap-bad")
    client = server.client("rest")
    fill(client, "c", 300, shard_number=1)
    before = state(client, "c")
    http = httpx.Client(base_url=server.url, timeout=60)
    snap = http.post("/collections/c/snapshots").json()["result"]
    good = (server.snapshots_path / "c" / snap["name"]).read_bytes()

    def upload(data, **params):
        return http.post("/collections/c/snapshots/upload", params=params, files={"snapshot": ("x", data)})

    # A flipped byte in the data, a truncated file, a foreign tar, not a tar at all.
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0xFF
    for bad in (bytes(damaged), good[: len(good) // 2], b"not a snapshot at all"):
        r = upload(bad)
        assert r.status_code == 400, r.text
        assert r.json()["status"]["error"], r.text
    r = upload(good, checksum="0" * 64)
    assert r.status_code == 400 and "Checksum mismatch" in r.text, r.text
    r = upload(good, checksum="xyz")
    assert r.status_code in (400, 422), r.text
    r = upload(good, priority="newest")
    assert r.status_code == 400, r.text
    r = http.post("/collections/c/snapshots/upload", files={"other": ("x", good)})
    assert r.status_code == 400 and "snapshot" in r.text, r.text
    # Nothing of that touched the collection.
    assert state(client, "c") == before

    outside = tmp_path / "x.snapshot"
    outside.write_bytes(good)
    r = http.put("/collections/c/snapshots/recover", json={"location": outside.as_uri()})
    assert r.status_code == 400 and "outside" in r.text, r.text
    r = http.put("/collections/c/snapshots/recover", json={"location": "ftp://example.invalid/x"})
    assert r.status_code == 400, r.text
    r = http.put("/collections/c/snapshots/recover", json={"location": (server.snapshots_path / "c" / "nope.snapshot").as_uri()})
    assert r.status_code == 400 and "does not exist" in r.text, r.text

    for url in ("/collections/c/snapshots/nope.snapshot", "/collections/c/snapshots/..%2F..%2Fstorage",
                "/collections/missing/snapshots", "/snapshots/nope.snapshot", "/collections/c/shards/7/snapshots"):
        assert http.get(url).status_code == 404, url
    assert http.post("/collections/c/shards/7/snapshots").status_code == 404
    assert http.delete("/collections/c/snapshots/nope.snapshot").status_code == 404

    # A snapshot of another shape does not go over a shard.
    client.create_collection("other", vectors_config=models.VectorParams(size=DIM + 1, distance=models.Distance.DOT))
    r = http.put("/collections/other/shards/0/snapshots/recover",
                 json={"location": (server.snapshots_path / "c" / snap["name"]).as_uri()})
    assert r.status_code == 400 and "does not fit" in r.text, r.text


@pytest.mark.timeout(120)
def test_interrupted_snapshots_leave_nothing_after_a_restart(qdrant_factory):
    server = qdrant_factory(name="snap-restart")
    client = server.client("rest")
    fill(client, "c", 200, shard_number=1)
    snap = client.create_snapshot("c")
    d = server.snapshots_path / "c"
    (d / "half.snapshot.partial").write_bytes(b"x" * 100)
    (d / "gone.snapshot.checksum").write_text("0" * 64)
    temp = server.storage_path / "snapshots_temp"
    (temp / "c-staging.partial" / "db").mkdir(parents=True)
    server.restart(kill9=True)
    assert sorted(p.name for p in d.iterdir()) == [snap.name, f"{snap.name}.checksum"]
    assert not (temp / "c-staging.partial").exists()
    assert [s.name for s in client.list_snapshots("c")] == [snap.name]


@pytest.mark.timeout(120)
def test_full_snapshots_over_grpc(qdrant_factory):
    server = qdrant_factory(name="snap-grpc")
    client = server.client("grpc")
    fill(client, "a", 100, shard_number=1)
    fill(client, "b", 100, shard_number=1)
    full = client.create_full_snapshot()
    assert full.name.startswith("full-snapshot-") and len(full.checksum) == 64
    assert [s.name for s in client.list_full_snapshots()] == [full.name]
    client.delete_full_snapshot(full.name)
    assert client.list_full_snapshots() == []
    with pytest.raises(Exception, match="(?i)not found"):
        client.delete_snapshot("a", "nope.snapshot")


@pytest.mark.timeout(120)
def test_a_snapshot_taken_under_writes_is_one_point_of_the_log(qdrant_factory):
    """Sequential acknowledged writes race a snapshot: the snapshot holds exactly a prefix of them,
    at least every write acknowledged before it was asked for and none acknowledged after it."""
    import threading
    server = qdrant_factory(name="snap-race")
    client = server.client("rest")
    client.create_collection("w", vectors_config=models.VectorParams(size=4, distance=models.Distance.DOT))
    acked = []
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            client.upsert("w", wait=True, points=[models.PointStruct(id=i, vector=[float(i), 1, 2, 3], payload={"i": i})])
            acked.append(i)
            i += 1

    t = threading.Thread(target=writer)
    t.start()
    while len(acked) < 200:
        time.sleep(0.01)
    before = len(acked)
    snap = client.create_snapshot("w")
    after = len(acked)
    stop.set()
    t.join()
    assert client.recover_snapshot("copy", location=(server.snapshots_path / "w" / snap.name).as_uri())
    ids = sorted(p.id for p in client.scroll("copy", limit=100_000)[0])
    assert ids == list(range(len(ids))), "not a prefix of the writes"
    assert before <= len(ids) <= after + 1, (before, len(ids), after)


@pytest.mark.timeout(120)
def test_snapshot_endpoints_follow_the_api_key_rules(qdrant_factory):
    """Creating, deleting and recovering need the full key; listing and downloading take the
    read-only key too; without a key everything is 401 (uploads refused before the body is read)."""
    server = qdrant_factory(name="snap-auth", extra_env={"QDRANT__SERVICE__API_KEY": "full",
                                                         "QDRANT__SERVICE__READ_ONLY_API_KEY": "ro"})
    client = server.client("rest", api_key="full")
    fill(client, "c", 50, shard_number=1)
    http = httpx.Client(base_url=server.url, timeout=60)
    full, ro = {"api-key": "full"}, {"api-key": "ro"}
    name = http.post("/collections/c/snapshots", headers=full).json()["result"]["name"]
    assert http.post("/collections/c/snapshots", headers=ro).status_code == 403
    assert http.post("/collections/c/snapshots").status_code == 401
    assert http.post("/snapshots", headers=ro).status_code == 403
    assert http.get("/collections/c/snapshots", headers=ro).status_code == 200
    assert http.get("/collections/c/snapshots").status_code == 401
    data = http.get(f"/collections/c/snapshots/{name}", headers=ro).content
    assert len(data) > 0
    assert http.post("/collections/c/snapshots/upload", headers=ro, files={"snapshot": ("x", data)}).status_code == 403
    assert http.post("/collections/c/snapshots/upload", files={"snapshot": ("x", data)}).status_code == 401
    loc = (server.snapshots_path / "c" / name).as_uri()
    assert http.put("/collections/c/snapshots/recover", headers=ro, json={"location": loc}).status_code == 403
    assert http.delete(f"/collections/c/snapshots/{name}", headers=ro).status_code == 403
    assert http.delete(f"/collections/c/snapshots/{name}", headers=full).json()["result"] is True


@pytest.mark.timeout(120)
def test_a_recovery_that_fails_to_open_keeps_the_old_collection(qdrant_factory):
    """An archive that passes every checksum but whose RocksDB cannot be opened (forged here by
    rewriting CURRENT and its manifest entry) fails the recovery; the collection stays as it was."""
    import io
    import json
    import tarfile
    server = qdrant_factory(name="snap-forged")
    client = server.client("rest")
    fill(client, "c", 100, shard_number=1)
    before = state(client, "c")
    http = httpx.Client(base_url=server.url, timeout=60)
    name = http.post("/collections/c/snapshots").json()["result"]["name"]
    src = tarfile.open(server.snapshots_path / "c" / name)
    members = [(m, src.extractfile(m).read()) for m in src.getmembers() if m.isfile()]
    manifest = json.loads(members[0][1])
    forged = b"MANIFEST-999999\n"
    key = next(k for k in manifest["files"] if k.endswith("/db/CURRENT"))
    manifest["files"][key] = {"size": len(forged), "sha256": hashlib.sha256(forged).hexdigest()}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for m, data in [(members[0][0], json.dumps(manifest).encode())] + members[1:]:
            data = forged if m.name == key else data
            m.size = len(data)
            tar.addfile(m, io.BytesIO(data))
    r = http.post("/collections/c/snapshots/upload", files={"snapshot": ("x", out.getvalue())})
    # Refused by RocksDB when opening, not by the archive checks.
    assert r.status_code == 500 and "MANIFEST-999999" in r.text and "corrupt" not in r.text, r.text
    assert state(client, "c") == before
    client.upsert("c", wait=True, points=[models.PointStruct(id=1000, vector=[0.5] * DIM)])
    assert client.count("c").count == 101


@pytest.mark.timeout(180)
def test_full_snapshots_restore_a_node_at_start_and_single_collections_over_the_api(qdrant_factory, tmp_path):
    """A full snapshot holds every collection and alias: `--storage-snapshot` restores them all on a
    fresh node at start; `PUT /collections/{c}/snapshots/recover` takes one collection out of it;
    `--snapshot PATH:NAME` restores a collection snapshot under a new name."""
    source = qdrant_factory(name="snap-full-src")
    client = source.client("rest")
    fill(client, "a", 400, shard_number=2)
    fill(client, "b", 300, seed=8, shard_number=1)
    client.update_collection_aliases(change_aliases_operations=[
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name="a", alias_name="a-live"))])
    expected = {n: state(client, n) for n in ("a", "b")}
    http = httpx.Client(base_url=source.url, timeout=60)
    full = http.post("/snapshots").json()["result"]["name"]
    full_path = tmp_path / "full.snapshot"
    full_path.write_bytes(http.get(f"/snapshots/{full}").content)
    col = client.create_snapshot("b")
    col_path = tmp_path / "b.snapshot"
    col_path.write_bytes(http.get(f"/collections/b/snapshots/{col.name}").content)

    # One collection of the full snapshot, the one of the same name, over the API.
    client.delete("b", points_selector=models.PointIdsList(points=list(range(50))), wait=True)
    assert client.recover_snapshot("b", location=(source.snapshots_path / full).as_uri())
    r = http.put("/collections/nope/snapshots/recover", json={"location": (source.snapshots_path / full).as_uri()})
    assert r.status_code == 400 and "holds no collection `nope`" in r.text, r.text
    assert state(client, "b") == expected["b"]

    # A fresh node restored at start.
    target = qdrant_factory(name="snap-full-dst")
    target.stop()
    target.args = ["--storage-snapshot", str(full_path), "--snapshot", f"{col_path}:b-copy"]
    target.start()
    restored = target.client("rest")
    assert sorted(c.name for c in restored.get_collections().collections) == ["a", "b", "b-copy"]
    for name in ("a", "b"):
        assert state(restored, name) == expected[name]
    assert state(restored, "b-copy") == expected["b"]
    assert [(a.alias_name, a.collection_name) for a in restored.get_aliases().aliases] == [("a-live", "a")]
    info = restored.get_collection("a")
    assert info.indexed_vectors_count == info.points_count == 400

    # Restarting with the same arguments leaves existing collections alone; a bad file fails the start.
    restored.upsert("a", wait=True, points=[models.PointStruct(id=5000, vector=[1.0] * DIM)])
    target.restart(kill9=False)
    assert restored.count("a").count == 401
    target.stop()
    (tmp_path / "junk.snapshot").write_bytes(b"junk")
    target.args = ["--storage-snapshot", str(tmp_path / "junk.snapshot")]
    with pytest.raises(BaseException):
        target.start(timeout=15)
    assert "not a snapshot of this database" in target.log_tail(30)
