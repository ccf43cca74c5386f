"""A deterministic payload data set and a catalogue of filters (Qdrant JSON shape) used by
test_filters.py (no payload index) and test_payload_index.py (same data, every field indexed).

The data avoids the few corners where Qdrant's behaviour is type-coercion dependent (integers
stored as floats, `[null]` under is_empty, mixed types inside one indexed field), so every
expectation is unambiguous; those corners that are specified (null inside arrays for is_null,
missing field under `except`) are included on purpose."""

import random
import uuid

U = [str(uuid.UUID(int=(0x1234 << 112) | k)) for k in range(1, 5)]          # 4 UUID point ids
UID_POOL = [str(uuid.UUID(int=(0xABCD << 112) | (k * 7919))) for k in range(1, 9)]

CITIES = ["berlin", "london", "paris", "tokyo"]
TAGS = ["red", "green", "blue", "black"]
WORDS = ["the", "quick", "brown", "fox", "lazy", "dog", "jumps", "over", "cat", "sun"]
OFFSETS = ["Z", "+02:00", "-05:00", "+00:00"]
DNULL_CYCLE = [None, [None, "a"], ["a"], "v", "__missing__", [], [None]]


def make_points(n_int=76):
    rnd = random.Random(20240615)
    ids = list(range(1, n_int + 1)) + U
    points = []
    for k, pid in enumerate(ids):
        p = {}
        r = rnd.random()
        if r < 0.10:
            pass                                             # city missing
        elif r < 0.16:
            p["city"] = None
        elif r < 0.28:
            p["city"] = rnd.sample(CITIES, 2)
        else:
            p["city"] = rnd.choice(CITIES)
        if rnd.random() > 0.1:
            p["count"] = rnd.randint(0, 20)
        price = round(rnd.uniform(0, 100), 2)
        if price == int(price):
            price += 0.25
        p["price"] = price
        if rnd.random() > 0.1:
            p["flag"] = rnd.random() < 0.5
        if rnd.random() > 0.1:
            p["tags"] = rnd.sample(TAGS, rnd.randint(0, 3))   # may be []
        p["nums"] = [rnd.randint(1, 9) for _ in range(rnd.randint(1, 3))]
        month = rnd.randint(1, 18)
        year, month = (2023, month + 6) if month <= 6 else (2024, month - 6)
        p["created"] = (f"{year:04d}-{month:02d}-{rnd.randint(1, 28):02d}T{rnd.randint(0, 23):02d}:"
                        f"{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}{rnd.choice(OFFSETS)}")
        p["text"] = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(3, 7)))
        r = rnd.random()
        if r < 0.1:
            pass
        elif r < 0.2:
            p["meta"] = {"c": rnd.choice(CITIES)}
        else:
            p["meta"] = {"a": {"b": rnd.randint(0, 5)}, "c": rnd.choice(CITIES)}
        p["items"] = [{"x": rnd.randint(0, 4), "y": rnd.choice("abc")} for _ in range(rnd.randint(0, 3))]
        p["uid"] = rnd.choice(UID_POOL)
        dn = DNULL_CYCLE[k % len(DNULL_CYCLE)]
        if dn != "__missing__" and dn != [None]:   # `[None]` only under is_null, never under is_empty
            p["dnull"] = dn
        if dn == [None]:
            p["dnull_arr"] = [None]
        vec = [rnd.uniform(-1, 1) for _ in range(4)]
        points.append((pid, vec, p))
    return points


def _m(key, **match):
    return {"key": key, "match": match}


def _r(key, **rng):
    return {"key": key, "range": rng}


FILTERS = {
    "match_keyword": {"must": [_m("city", value="berlin")]},
    "match_integer": {"must": [_m("count", value=5)]},
    "match_bool_true": {"must": [_m("flag", value=True)]},
    "match_bool_false": {"must": [_m("flag", value=False)]},
    "must_two_conditions": {"must": [_m("city", value="paris"), _r("count", gte=10)]},
    "should_or": {"should": [_m("city", value="berlin"), _m("city", value="london")]},
    "must_not": {"must_not": [_m("city", value="berlin")]},
    "must_not_two": {"must_not": [_m("city", value="berlin"), _m("flag", value=True)]},
    "min_should_2_of_4": {"min_should": {"conditions": [
        _m("city", value="berlin"), _m("flag", value=True), _r("count", gte=10), _m("tags", value="red")],
        "min_count": 2}},
    "min_should_with_must": {"must": [_r("price", gte=30)], "min_should": {"conditions": [
        _m("tags", value="blue"), _m("tags", value="green"), _m("city", value="tokyo")], "min_count": 2}},
    "match_any_keyword": {"must": [_m("city", any=["berlin", "paris"])]},
    "match_any_integer": {"must": [_m("count", any=[1, 2, 3, 15])]},
    "match_except_keyword": {"must": [_m("city", **{"except": ["berlin", "london"]})]},
    "match_except_integer": {"must": [_m("count", **{"except": [1, 2, 3]})]},
    "match_except_on_array": {"must": [_m("tags", **{"except": ["red"]})]},
    "text_single_word": {"must": [_m("text", text="quick")]},
    "text_two_words_adjacent": {"must": [_m("text", text="brown fox")]},
    "text_two_words_reordered": {"must": [_m("text", text="fox brown")]},   # tokens, any order (not a phrase)
    "text_uppercase": {"must": [_m("text", text="Lazy")]},                 # query is lowercased too
    "range_integer": {"must": [_r("count", gte=5, lt=10)]},
    "range_float": {"must": [_r("price", gt=20.5, lte=70)]},
    "range_float_lt": {"must": [_r("price", lt=10)]},
    "range_on_array": {"must": [_r("nums", gt=7)]},
    "datetime_range": {"must": [_r("created", gte="2024-01-01T00:00:00Z", lt="2024-06-01T00:00:00+02:00")]},
    "datetime_range_gt_offset": {"must": [_r("created", gt="2024-03-15T12:00:00-05:00")]},
    "has_id": {"must": [{"has_id": [1, 5, 10, 999, U[1]]}]},
    "must_not_has_id": {"must_not": [{"has_id": list(range(1, 70)) + [U[0]]}]},
    "is_empty_array_field": {"must": [{"is_empty": {"key": "tags"}}]},
    "is_empty_keyword": {"must": [{"is_empty": {"key": "city"}}]},
    "not_is_empty": {"must_not": [{"is_empty": {"key": "city"}}]},
    "is_null_keyword": {"must": [{"is_null": {"key": "city"}}]},
    "is_null_with_arrays": {"must": [{"is_null": {"key": "dnull"}}]},
    "is_null_array_of_null": {"must": [{"is_null": {"key": "dnull_arr"}}]},
    "field_is_null_true": {"must": [{"key": "dnull", "is_null": True}]},
    "not_is_null": {"must_not": [{"is_null": {"key": "dnull"}}]},
    "nested_key": {"must": [_m("meta.a.b", value=3)]},
    "nested_key_range": {"must": [_r("meta.a.b", gte=2, lte=4)]},
    "array_of_objects_key": {"must": [_m("items[].x", value=2)]},
    "array_of_objects_two_keys": {"must": [_m("items[].x", value=2), _m("items[].y", value="b")]},
    "nested_condition": {"must": [{"nested": {"key": "items", "filter": {
        "must": [_m("x", value=2), _m("y", value="b")]}}}]},
    "nested_condition_must_not": {"must": [{"nested": {"key": "items", "filter": {
        "must": [_r("x", gte=3)], "must_not": [_m("y", value="a")]}}}]},
    "array_value_keyword": {"must": [_m("tags", value="red")]},
    "array_value_any_integer": {"must": [_m("nums", any=[1, 7])]},
    "uuid_value": {"must": [_m("uid", value=UID_POOL[2])]},
    "uuid_any": {"must": [_m("uid", any=[UID_POOL[0], UID_POOL[5]])]},
    "combined": {"must": [_r("count", gte=3)],
                 "should": [_m("tags", value="red"), _m("tags", value="blue")],
                 "must_not": [_m("flag", value=False)]},
    "filter_as_condition": {"must": [{"should": [_m("city", value="tokyo"), _m("count", value=0)]},
                                     _m("flag", value=True)]},
    "must_not_inside_must": {"must": [{"must_not": [_m("city", value="berlin")]}, _r("price", gt=50)]},
    "no_match_at_all": {"must": [_m("city", value="atlantis")]},
}

TEXT_FILTERS = {k for k in FILTERS if k.startswith("text_")}

# field -> (index schema, python predicate for "has an indexable value of that type")
INDEXED_FIELDS = {
    "city": "keyword",
    "tags": "keyword",
    "dnull": "keyword",
    "dnull_arr": "keyword",
    "count": "integer",
    "nums": "integer",
    "meta.a.b": "integer",
    "items[].x": "integer",
    "items[].y": "keyword",
    "price": "float",
    "flag": "bool",
    "created": "datetime",
    "uid": "uuid",
    "text": "text",
}
