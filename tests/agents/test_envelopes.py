import orjson
import pytest

from agents import envelopes


def test_entries_round_trip_with_their_key_timestamp_and_message():
    items = [
        envelopes.entry("ref_1", b'{"type":"claim","n":1}', 1700000000.5),
        envelopes.entry('quote"and\\slash', b'{"type":"expire"}', None),
    ]
    (packed,) = envelopes.pack(items)
    assert envelopes.unpack(packed) == [
        {"k": "ref_1", "ts": 1700000000.5, "m": {"type": "claim", "n": 1}},
        {"k": 'quote"and\\slash', "ts": None, "m": {"type": "expire"}},
    ]


def test_pack_splits_at_the_limit_and_keeps_the_order():
    items = [
        envelopes.entry(f"k{i}", orjson.dumps({"i": i, "pad": "x" * 50}), None) for i in range(40)
    ]
    packed = list(envelopes.pack(items, limit=1000))
    assert len(packed) > 1
    assert all(len(p) <= 1000 for p in packed)
    assert [e["m"]["i"] for p in packed for e in envelopes.unpack(p)] == list(range(40))


def test_one_entry_larger_than_the_limit_travels_alone():
    big = envelopes.entry("k", orjson.dumps({"pad": "x" * 5000}), None)
    small = envelopes.entry("s", b"{}", None)
    packed = list(envelopes.pack([small, big, small], limit=1000))
    assert [len(envelopes.unpack(p)) for p in packed] == [1, 1, 1]


@pytest.mark.parametrize("value", [b"", b"not json", b'{"k":"a"}', None])
def test_anything_but_a_json_array_is_refused(value):
    with pytest.raises(ValueError):
        envelopes.unpack(value)
