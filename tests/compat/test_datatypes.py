"""Dense `datatype`s at scale: `float16` and `uint8` collections keep their vectors in 2 and 1
bytes a value (the vector storage and the HNSW records alike), and an indexed search compares
the values as stored.

Facts (Qdrant 1.19): `float16` rounds each value to the nearest half-precision float; `uint8`
keeps whole numbers 0..=255 and serves them back as written, Cosine computed on them; queries
are converted to the storage type. What Qdrant reports as memory differs in shape, so the check
here is ours: the per-shard `vectors_ram_bytes` and `vector_index_ram_bytes` of
`/telemetry?details_level=3` shrink with the element type.
"""

import time

import numpy as np
import pytest
from qdrant_client import models

from compat_helpers import normalize, ok_result, rest

N, DIM, K = 3000, 64, 10
INDEX_TIMEOUT_S = 180
RNG = np.random.default_rng(11)
# Whole numbers 0..=255: what a uint8 collection holds; as floats, the same for every datatype.
INTS = RNG.integers(0, 256, size=(N, DIM)).astype(np.float32)
FLOATS = RNG.normal(size=(N, DIM)).astype(np.float32)
QUERIES = 20

DATATYPES = {
    "float32": models.Datatype.FLOAT32,
    "float16": models.Datatype.FLOAT16,
    "uint8": models.Datatype.UINT8,
}


def _fill(client, name, datatype, distance, data):
    client.create_collection(
        name,
        vectors_config=models.VectorParams(size=DIM, distance=distance, datatype=DATATYPES[datatype]),
        hnsw_config=models.HnswConfigDiff(m=16, ef_construct=100),
        optimizers_config=models.OptimizersConfigDiff(indexing_threshold=10),
    )
    for s in range(0, N, 1000):
        client.upsert(name, wait=True, points=models.Batch(
            ids=list(range(s, s + 1000)), vectors=data[s:s + 1000].tolist()))
    deadline = time.monotonic() + INDEX_TIMEOUT_S
    while time.monotonic() < deadline:
        info = client.get_collection(name)
        if (info.indexed_vectors_count or 0) >= N and info.status.value == "green":
            return
        time.sleep(0.3)
    pytest.fail(f"{name} not indexed in {INDEX_TIMEOUT_S}s")


def _memory(qdrant, name):
    telemetry = ok_result(rest(qdrant, "GET", "/telemetry?details_level=3"))
    [mine] = [c for c in telemetry["collections"]["collections"] if c["id"] == name]
    local = mine["shards"][0]["local"]
    return local["vectors_ram_bytes"], local["vector_index_ram_bytes"]


def _stored(datatype, data):
    if datatype == "float16":
        return data.astype(np.float16).astype(np.float64)
    return data.astype(np.float64)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("distance", [models.Distance.COSINE, models.Distance.EUCLID])
def test_compact_datatypes_search_their_values_in_less_memory(qdrant, client, collection_name, distance):
    memory = {}
    for datatype in DATATYPES:
        data = INTS if datatype == "uint8" else FLOATS
        name = f"{collection_name}_{datatype}"
        try:
            _fill(client, name, datatype, distance, data)
            stored = _stored(datatype, data)
            got = np.asarray(client.retrieve(name, ids=[5], with_vectors=True)[0].vector)
            expect = normalize(stored[5]) if distance == models.Distance.COSINE and datatype != "uint8" else stored[5]
            assert np.allclose(got, expect, atol=1e-3), (datatype, got[:4], expect[:4])

            found = 0
            for qi in range(QUERIES):
                q = stored[RNG.integers(0, N)] + (RNG.integers(0, 3, size=DIM) if datatype == "uint8" else 0)
                q = np.clip(q, 0, 255) if datatype == "uint8" else q
                if distance == models.Distance.COSINE:
                    scores = normalize(stored) @ normalize(q)
                    order = np.argsort(-scores)
                else:
                    scores = np.sqrt(((stored - q) ** 2).sum(axis=1))
                    order = np.argsort(scores)
                hits = client.query_points(name, query=q.tolist(), limit=K,
                                           search_params=models.SearchParams(hnsw_ef=128)).points
                assert len(hits) == K
                for h in hits:  # the index scores the stored values
                    assert h.score == pytest.approx(scores[h.id], rel=1e-3, abs=1e-3), (datatype, h)
                found += len({h.id for h in hits} & set(order[:K].tolist()))
            recall = found / (QUERIES * K)
            assert recall >= 0.9, (datatype, distance, recall)
            memory[datatype] = _memory(qdrant, name)
        finally:
            client.delete_collection(name)

    (v32, i32), (v16, i16), (v8, i8) = memory["float32"], memory["float16"], memory["uint8"]
    print(f"\n{distance}: vectors {v32} / {v16} / {v8} bytes, index {i32} / {i16} / {i8} bytes")
    assert v32 >= N * DIM * 4, memory
    assert v16 <= 0.55 * v32 and v8 <= 0.3 * v32, memory
    # The graph's records hold the vector beside its links: the vector part shrinks.
    assert i32 - i16 >= N * DIM * 2 * 0.9 and i32 - i8 >= N * (DIM * 3 - 4) * 0.9, memory
