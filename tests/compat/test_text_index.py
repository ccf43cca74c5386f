"""Full-text payload index options (Qdrant 1.19 `TextIndexParams`) through the real client, over
REST and gRPC: tokenizers (word, whitespace, prefix, multilingual), lowercase, min/max token
length, ascii_folding, stopwords (a language, or languages + custom), Snowball stemming and
phrase_matching, checked with `MatchText` (all tokens), `MatchTextAny` (any token) and
`MatchPhrase` (tokens in a row) in scroll, count and query.

Facts (Qdrant 1.19, lib/segment/src/index/field_index/full_text_index): tokens are folded,
lowercased, checked against the stop words, stemmed, then length-limited; a query with no tokens
left matches nothing; the index treats a point's values together for `text` / `text_any`, and a
phrase within one value; an index created without `phrase_matching: true` keeps no positions,
so a phrase match on it finds nothing (strict mode asks for "text (with phrase_matching: true)");
`payload_schema` reports the params with `tokenizer` always present and languages by name.
Our `multilingual` tokenizer splits Chinese/Japanese per character (Qdrant uses dictionaries),
so the CJK expectations below are ours.
"""

import pytest
from qdrant_client import models

from compat_helpers import ok_result, rest

DOCS = {
    1: "The quick brown fox jumps over the lazy dog",
    2: "A quick brown cat runs through the garden",
    3: "the brown fox is very quick and agile",
    4: "Running runners ran to the Café",
    5: "cafe noir, CAFÉ au lait",
    6: "writing tests is very very very important",
    7: "今天是星期一",
    8: "明天是星期二",
    9: "Ação rápida: naïve résumé",
}


def setup(client, name, fields):
    """A collection holding DOCS under every field of `fields` ({field: text index params or None})."""
    client.create_collection(name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(name, wait=True, points=[
        models.PointStruct(id=i, vector=[1.0, float(i)], payload={f: text for f in fields})
        for i, text in DOCS.items()])
    for field, params in fields.items():
        if params is not None:
            res = client.create_payload_index(name, field_name=field, field_schema=params, wait=True)
            assert res.status == models.UpdateStatus.COMPLETED


def text_params(**kw):
    return models.TextIndexParams(type=models.TextIndexType.TEXT, **kw)


def finder(client, name):
    """ids(field, match) via scroll, checked against count and an exact query."""
    def ids(field, match):
        flt = models.Filter(must=[models.FieldCondition(key=field, match=match)])
        got = sorted(p.id for p in client.scroll(name, scroll_filter=flt, limit=100, with_payload=False)[0])
        assert client.count(name, count_filter=flt, exact=True).count == len(got)
        hits = client.query_points(name, query=[1.0, 0.5], query_filter=flt, limit=100,
                                   search_params=models.SearchParams(exact=True)).points
        assert sorted(h.id for h in hits) == got
        return got
    return ids


T, ANY, PHRASE = models.MatchText, models.MatchTextAny, models.MatchPhrase


def test_default_word_index_text_and_text_any(client, collection_name):
    setup(client, collection_name, {"t": text_params(), "plain": None})
    ids = finder(client, collection_name)
    for f in ("t", "plain"):  # same answers with and without the index (single-string values)
        assert ids(f, T(text="quick brown")) == [1, 2, 3]
        assert ids(f, T(text="BROWN fox")) == [1, 3]
        assert ids(f, T(text="qui")) == [], "whole tokens only"
        assert ids(f, T(text="")) == [], "no tokens: nothing"
        assert ids(f, ANY(text_any="cat dog")) == [1, 2]
        assert ids(f, ANY(text_any="zebra ,")) == []
        assert ids(f, T(text="café")) == [4, 5]
        assert ids(f, T(text="cafe")) == [5]


def test_stemming(client, collection_name):
    stem = models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH)
    setup(client, collection_name, {"s": text_params(stemmer=stem), "w": text_params()})
    ids = finder(client, collection_name)
    assert ids("s", T(text="run")) == [2, 4], "runs, running ~ run"
    assert ids("s", T(text="running")) == [2, 4]
    assert ids("s", T(text="jumping")) == [1]
    assert ids("s", ANY(text_any="gardens writes")) == [2, 6]
    assert ids("w", T(text="run")) == [], "no stemmer: exact tokens"
    assert ids("w", T(text="runs")) == [2]


def test_stopwords(client, collection_name):
    setup(client, collection_name, {
        "en": text_params(stopwords=models.Language.ENGLISH),
        "set": text_params(stopwords=models.StopwordsSet(languages=[models.Language.ENGLISH],
                                                         custom=["Quick", "fox"])),
        "w": text_params(),
    })
    ids = finder(client, collection_name)
    assert ids("en", T(text="the quick")) == [1, 2, 3], "stop words are dropped from queries"
    assert ids("w", T(text="the quick")) == [1, 2, 3]
    assert ids("en", T(text="the")) == [], "only stop words: nothing to match"
    assert ids("w", T(text="the")) == [1, 2, 3, 4]
    assert ids("en", ANY(text_any="over a")) == [], "stop words are not indexed"
    assert ids("set", T(text="quick")) == [], "custom stop words, lowercased with the index"
    assert ids("set", T(text="brown fox")) == [1, 2, 3]


def test_ascii_folding(client, collection_name):
    setup(client, collection_name, {"f": text_params(ascii_folding=True), "w": text_params()})
    ids = finder(client, collection_name)
    assert ids("f", T(text="cafe")) == [4, 5], "Café ~ cafe"
    assert ids("f", T(text="CAFÉ")) == [4, 5]
    assert ids("f", T(text="acao rapida naive resume")) == [9]
    assert ids("w", T(text="cafe")) == [5]
    assert ids("w", T(text="acao")) == []


def test_phrase_matching(client, collection_name):
    setup(client, collection_name, {"p": text_params(phrase_matching=True), "w": text_params()})
    ids = finder(client, collection_name)
    assert ids("p", PHRASE(phrase="quick brown fox")) == [1]
    assert ids("p", PHRASE(phrase="quick brown")) == [1, 2]
    assert ids("p", PHRASE(phrase="brown quick")) == [], "order matters"
    assert ids("p", PHRASE(phrase="quick fox")) == [], "tokens must be adjacent"
    assert ids("p", PHRASE(phrase="quick brown bird")) == []
    assert ids("p", PHRASE(phrase="BROWN")) == [1, 2, 3]
    assert ids("p", PHRASE(phrase="very very very")) == [6]
    assert ids("p", PHRASE(phrase="very very very very")) == []
    assert ids("p", PHRASE(phrase="")) == []
    assert ids("p", T(text="fox quick")) == [1, 3], "text stays order-free"
    # An index without phrase_matching keeps no positions: a phrase finds nothing (no error).
    assert ids("w", PHRASE(phrase="quick brown")) == []
    assert ids("w", PHRASE(phrase="brown")) == []


def test_phrase_with_stemming_and_stopwords(client, collection_name):
    stem = models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH)
    setup(client, collection_name, {"p": text_params(phrase_matching=True, stemmer=stem,
                                                     stopwords=models.Language.ENGLISH)})
    ids = finder(client, collection_name)
    assert ids("p", PHRASE(phrase="run runners")) == [4], "Running runners ran -> run runner ran"
    assert ids("p", PHRASE(phrase="runner run")) == []
    assert ids("p", PHRASE(phrase="jumped over the lazy dogs")) == [1], "stop words leave no gap"
    assert ids("p", PHRASE(phrase="dog lazy")) == []


def test_prefix_tokenizer_and_lengths(client, collection_name):
    setup(client, collection_name, {
        "pre": text_params(tokenizer=models.TokenizerType.PREFIX, min_token_len=2, max_token_len=6),
        "len": text_params(min_token_len=4, max_token_len=5),
        "ws": text_params(tokenizer=models.TokenizerType.WHITESPACE, lowercase=False),
    })
    ids = finder(client, collection_name)
    assert ids("pre", T(text="bro")) == [1, 2, 3]
    assert ids("pre", T(text="gard")) == [2]
    assert ids("pre", T(text="gardening")) == [2], "query words are cut to max_token_len"
    assert ids("pre", T(text="q")) == [], "shorter than min_token_len"
    assert ids("len", T(text="quick")) == [1, 2, 3]
    assert ids("len", T(text="fox")) == [], "too short to be indexed"
    assert ids("len", T(text="garden")) == [], "too long to be indexed"
    assert ids("ws", T(text="noir,")) == [5], "whitespace keeps punctuation"
    assert ids("ws", T(text="noir")) == []
    assert ids("ws", T(text="The")) == [1]
    assert ids("ws", T(text="the")) == [1, 2, 3, 4]


def test_multilingual_tokenizer(client, collection_name):
    setup(client, collection_name, {"m": text_params(tokenizer=models.TokenizerType.MULTILINGUAL,
                                                     phrase_matching=True)})
    ids = finder(client, collection_name)
    assert ids("m", T(text="星期一")) == [7]
    assert ids("m", T(text="星期")) == [7, 8]
    assert ids("m", PHRASE(phrase="是星期")) == [7, 8]
    assert ids("m", PHRASE(phrase="星期是")) == []
    assert ids("m", T(text="quick brown")) == [1, 2, 3]
    assert ids("m", T(text="cafe")) == [4, 5], "accents are normalised away, as charabia does"
    # Han ideographs are single tokens here (Qdrant's jieba dictionary would keep 今天 / 明天
    # whole), so 天 is shared by both days.
    assert ids("m", ANY(text_any="明天 garden")) == [2, 7, 8]


def test_arrays_and_nested_field_index(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector=[1, 0], payload={"tags": ["red apple", "green pear"],
                                                         "items": [{"title": "goodness only"}]}),
        models.PointStruct(id=2, vector=[1, 1], payload={"tags": ["red pear"],
                                                         "items": [{"title": "cheap hardware"}, {"title": "good"}]}),
        models.PointStruct(id=3, vector=[1, 2], payload={"tags": "green apple", "items": []}),
    ])
    for field, params in (("tags", text_params(phrase_matching=True)), ("items[].title", text_params())):
        client.create_payload_index(collection_name, field_name=field, field_schema=params, wait=True)
    ids = finder(client, collection_name)
    assert ids("tags", T(text="red pear")) == [1, 2], "the index sees a point's values together"
    assert ids("tags", PHRASE(phrase="red pear")) == [2], "a phrase stays within one value"
    assert ids("tags", PHRASE(phrase="apple green")) == []
    assert ids("items[].title", T(text="good")) == [2]
    assert ids("items[].title", ANY(text_any="cheap nothing")) == [2]

    def nested(match):
        flt = models.Filter(must=[models.NestedCondition(nested=models.Nested(
            key="items", filter=models.Filter(must=[models.FieldCondition(key="title", match=match)])))])
        return sorted(p.id for p in client.scroll(collection_name, scroll_filter=flt, limit=10)[0])

    assert nested(ANY(text_any="good")) == [2], "'good' is not a token of 'goodness'"
    assert nested(T(text="cheap hardware")) == [2]
    assert nested(T(text="cheap good")) == [], "one element must hold every token"


def test_values_count_missing_field_counts_zero(client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    client.upsert(collection_name, wait=True, points=[
        models.PointStruct(id=1, vector=[1, 0], payload={"a": [1, 2]}),
        models.PointStruct(id=2, vector=[1, 1], payload={"a": 5}),
        models.PointStruct(id=3, vector=[1, 2], payload={"b": 1}),
    ])

    def ids(**vc):
        flt = models.Filter(must=[models.FieldCondition(key="a", values_count=models.ValuesCount(**vc))])
        return sorted(p.id for p in client.scroll(collection_name, scroll_filter=flt, limit=10)[0])

    assert ids(lt=1) == [3]
    assert ids(gte=0) == [1, 2, 3]
    assert ids(gte=1) == [1, 2]
    assert ids(gt=1) == [1]


def test_payload_schema_reports_params(qdrant, client, collection_name):
    client.create_collection(collection_name, vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    stem = models.SnowballParams(type=models.Snowball.SNOWBALL, language=models.SnowballLanguage.ENGLISH)
    indexes = {
        "t": text_params(tokenizer=models.TokenizerType.MULTILINGUAL, lowercase=True, ascii_folding=True,
                         phrase_matching=True, min_token_len=2, max_token_len=20, stemmer=stem,
                         stopwords=models.StopwordsSet(languages=[models.Language.ENGLISH], custom=["foo"]),
                         on_disk=True),
        "k": models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True, on_disk=True),
        "i": models.IntegerIndexParams(type=models.IntegerIndexType.INTEGER, is_principal=True, on_disk=False),
        "d": models.DatetimeIndexParams(type=models.DatetimeIndexType.DATETIME, is_principal=True),
    }
    for field, params in indexes.items():
        client.create_payload_index(collection_name, field_name=field, field_schema=params, wait=True)
    raw = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))["payload_schema"]
    assert raw["t"]["params"] == {
        "type": "text", "tokenizer": "multilingual", "lowercase": True, "ascii_folding": True,
        "phrase_matching": True, "min_token_len": 2, "max_token_len": 20, "on_disk": True,
        "stemmer": {"type": "snowball", "language": "english"},
        "stopwords": {"languages": ["english"], "custom": ["foo"]},
    }
    assert raw["k"]["params"] == {"type": "keyword", "is_tenant": True, "on_disk": True}
    assert raw["i"]["params"] == {"type": "integer", "is_principal": True, "on_disk": False}
    assert raw["d"]["params"] == {"type": "datetime", "is_principal": True}
    schema = client.get_collection(collection_name).payload_schema
    t = schema["t"].params
    assert t.tokenizer == models.TokenizerType.MULTILINGUAL
    assert (t.phrase_matching, t.ascii_folding, t.min_token_len, t.max_token_len) == (True, True, 2, 20)
    assert t.stemmer.language == models.SnowballLanguage.ENGLISH
    assert schema["k"].params.is_tenant is True and schema["k"].params.on_disk is True
    assert schema["i"].params.is_principal is True


def test_stopwords_language_string_reported(qdrant, rest_client, collection_name):
    # REST only: the plain-string form of `stopwords` and a language alias.
    rest_client.create_collection(collection_name,
                                  vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    ok_result(rest(qdrant, "PUT", f"/collections/{collection_name}/index?wait=true",
                   {"field_name": "t", "field_schema": {"type": "text", "stopwords": "en",
                                                        "stemmer": {"type": "none"}, "memory": "cached"}}))
    raw = ok_result(rest(qdrant, "GET", f"/collections/{collection_name}"))["payload_schema"]
    assert raw["t"]["params"] == {"type": "text", "tokenizer": "word", "stopwords": "english",
                                  "stemmer": {"type": "none"}, "memory": "cached"}


@pytest.mark.parametrize("schema", [
    {"type": "text", "stopwords": "klingon"},
    {"type": "text", "stemmer": {"type": "snowball", "language": "klingon"}},
    {"type": "text", "stemmer": {"type": "porter"}},
    {"type": "text", "tokenizer": "bpe"},
])
def test_bad_text_params_are_400(qdrant, rest_client, collection_name, schema):
    rest_client.create_collection(collection_name,
                                  vectors_config=models.VectorParams(size=2, distance=models.Distance.DOT))
    r = rest(qdrant, "PUT", f"/collections/{collection_name}/index?wait=true",
             {"field_name": "t", "field_schema": schema})
    assert r.status_code == 400, r.text
