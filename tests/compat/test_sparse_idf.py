"""Sparse vectors with `modifier: "idf"`.

Facts (Qdrant 1.19, lib/segment/src/data_types/query_context.rs `remap_idf_weights` and
lib/collection/tests/integration/sparse_idf_test.rs): at query time each query term's weight is
multiplied by idf = ln((N - df + 0.5) / (df + 0.5) + 1), N = points having the sparse vector,
df = those of them holding the term; statistics are collection-wide by default (`params.idf`
omitted or `"global"`), or over the points matching `params.idf.corpus`. The stored vectors are
not changed. Here the collection has several shards, so the statistics must be combined.
"""

import math

import pytest
from qdrant_client import models

from compat_helpers import rest

# point -> (tenant, terms), every weight 1.0 (the fixture of Qdrant's sparse_idf_test)
CORPUS = {0: ("a", [0, 1]), 1: ("a", [0]), 2: ("b", [0, 1, 2]), 3: ("b", [1])}


def idf(n, df):
    return math.log((n - df + 0.5) / (df + 0.5) + 1.0)


def expected(query_terms, points):
    n = len(points)
    df = {t: sum(1 for _, terms in points.values() if t in terms) for t in query_terms}
    return {pid: sum(idf(n, df[t]) for t in query_terms if t in terms) for pid, (_, terms) in points.items()}


@pytest.fixture
def idf_collection(client, collection_name):
    client.create_collection(collection_name, shard_number=3,
                             vectors_config={},
                             sparse_vectors_config={"text": models.SparseVectorParams(modifier=models.Modifier.IDF)})
    sparse = client.get_collection(collection_name).config.params.sparse_vectors
    assert sparse["text"].modifier == models.Modifier.IDF
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=pid, payload={"tenant": tenant},
                           vector={"text": models.SparseVector(indices=terms, values=[1.0] * len(terms))})
        for pid, (tenant, terms) in CORPUS.items()])
    return collection_name


def scores(client, name, terms, **kw):
    hits = client.query_points(name, query=models.SparseVector(indices=terms, values=[1.0] * len(terms)),
                               using="text", limit=10, **kw).points
    return {h.id: h.score for h in hits}


def test_idf_weights_use_collection_wide_statistics(client, idf_collection):
    for terms in ([0], [1], [2], [0, 1, 2]):
        want = {p: s for p, s in expected(terms, CORPUS).items() if s > 0}
        got = scores(client, idf_collection, terms)
        assert got == pytest.approx(want, abs=1e-5), terms
    # explicit "global" is the default
    got = scores(client, idf_collection, [2], search_params=models.SearchParams(idf="global"))
    assert got == pytest.approx({2: idf(4, 1)}, abs=1e-5)
    # stored vectors keep their raw weights
    rec = client.retrieve(idf_collection, ids=[2], with_vectors=True)[0]
    assert rec.vector["text"].values == [1.0, 1.0, 1.0]


def test_idf_corpus_filter_restricts_statistics(client, idf_collection):
    corpus = models.Filter(must=[models.FieldCondition(key="tenant", match=models.MatchValue(value="a"))])
    params = models.SearchParams(idf=models.IdfCorpusParams(corpus=corpus))
    tenant_a = {p: v for p, v in CORPUS.items() if v[0] == "a"}
    # term 1 within tenant a: N = 2, df = 1; the retrieval itself still covers every point
    got = scores(client, idf_collection, [1], search_params=params)
    assert got == pytest.approx({0: idf(2, 1), 2: idf(2, 1), 3: idf(2, 1)}, abs=1e-5)
    got = scores(client, idf_collection, [0], search_params=params)
    want = {p: s for p, s in expected([0], tenant_a).items()}
    assert got == pytest.approx({0: want[0], 1: want[1], 2: want[0]}, abs=1e-5)


def test_statistics_follow_deletes(client, idf_collection):
    client.delete(idf_collection, points_selector=models.PointIdsList(points=[3]), wait=True)
    left = {p: v for p, v in CORPUS.items() if p != 3}
    got = scores(client, idf_collection, [1])
    assert got == pytest.approx({p: s for p, s in expected([1], left).items() if s > 0}, abs=1e-5)


def test_unknown_modifier_is_rejected(qdrant, collection_name):
    r = rest(qdrant, "PUT", f"/collections/{collection_name}",
             {"sparse_vectors": {"text": {"modifier": "bm25"}}})
    assert r.status_code in (400, 422), r.text
    assert "modifier" in r.json()["status"]["error"]
