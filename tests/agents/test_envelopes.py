import orjson
import pytest

from agents import envelopes


def test_entries_round_trip_with_their_key_timestamp_kind_and_message_text():
    claim = b'{"type":"claim","note":"a \\"quoted\\" caf\xc3\xa9"}'
    items = [
        envelopes.entry("ref_1", "claim", claim.decode(), 1700000000.5),
        envelopes.entry('quote"and\\slash', "expire", '{"type":"expire"}', None),
    ]
    (packed,) = envelopes.pack(items)
    assert envelopes.unpack(packed) == [
        {"k": "ref_1", "ts": 1700000000.5, "t": "claim", "m": claim.decode()},
        {"k": 'quote"and\\slash', "ts": None, "t": "expire", "m": '{"type":"expire"}'},
    ]
    assert orjson.loads(envelopes.unpack(packed)[0]["m"])["note"] == 'a "quoted" café'


def test_pack_splits_at_the_limit_and_keeps_the_order():
    items = [
        envelopes.entry(f"k{i}", "claim", orjson.dumps({"i": i, "pad": "x" * 50}).decode(), None)
        for i in range(40)
    ]
    packed = list(envelopes.pack(items, limit=1000))
    assert len(packed) > 1
    assert all(len(p) <= 1000 for p in packed)
    assert [orjson.loads(e["m"])["i"] for p in packed for e in envelopes.unpack(p)] == list(
        range(40)
    )


def test_one_entry_larger_than_the_limit_travels_alone():
    big = envelopes.entry("k", "claim", orjson.dumps({"pad": "x" * 5000}).decode(), None)
    small = envelopes.entry("s", "claim", "{}", None)
    packed = list(envelopes.pack([small, big, small], limit=1000))
    assert [len(envelopes.unpack(p)) for p in packed] == [1, 1, 1]


@pytest.mark.parametrize("value", [b"", b"not json", b'{"k":"a"}', None])
def test_anything_but_a_json_array_is_refused(value):
    with pytest.raises(ValueError):
        envelopes.unpack(value)


def test_a_message_decodes_alike_from_its_text_and_from_the_older_object_form():
    from agents.join import decode_message
    from agents.messages import Attribution, SignupCompleted

    signup = {
        "event_id": "evt_1", "type": "signup.completed", "referral_id": "ref_1",
        "occurred_at": "2026-09-11T10:00:00Z",
        "customer": {"id": "cus_1", "email": "friend@example.com"},
    }  # fmt: skip
    text = orjson.dumps(signup).decode()
    (entry,) = envelopes.unpack(
        b"[" + envelopes.entry("ref_1", "signup.completed", text, None) + b"]"
    )
    new, old = decode_message(entry), decode_message({"k": "ref_1", "m": signup})
    assert new == old
    assert new.customer.email == "friend@example.com"
    assert isinstance(new, SignupCompleted)
    attribution = {
        "attribution_event_id": "a_1", "kind": "friend_signed_up", "referral_id": "ref_1",
        "source_event_id": "evt_1", "occurred_at": "2026-09-11T10:00:00Z",
    }  # fmt: skip
    as_text = {"k": "ref_1", "t": "attribution", "m": orjson.dumps(attribution).decode()}
    assert decode_message(as_text) == decode_message({"k": "ref_1", "m": attribution})
    assert isinstance(decode_message(as_text), Attribution)
