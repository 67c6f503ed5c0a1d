from datetime import UTC, datetime

import orjson
import pytest

from agents import envelopes
from agents.codec import decoder, to_json
from agents.messages import Customer, SignupCompleted


def test_entries_round_trip_with_their_key_timestamp_kind_and_message():
    claim = b'{"type":"claim","note":"a \\"quoted\\" caf\xc3\xa9"}'
    items = [
        envelopes.entry("ref_1", "claim", claim, 1700000000.5),
        envelopes.entry('quote"and\\slash', "expire", b'{"type":"expire"}', None),
    ]
    (packed,) = envelopes.pack(items)
    got = [(e.k, e.ts, e.t, bytes(e.m)) for e in envelopes.unpack(packed)]
    assert got == [
        ("ref_1", 1700000000.5, "claim", claim),
        ('quote"and\\slash', None, "expire", b'{"type":"expire"}'),
    ]
    assert orjson.loads(packed)[0]["m"]["note"] == 'a "quoted" café'  # embedded, not a string


def test_a_struct_message_is_written_as_its_json_would_be():
    """Forwards pass their struct and it is encoded with the entry, in one call."""
    signup = SignupCompleted(
        event_id="evt_2", referral_id="ref_1",
        occurred_at=datetime(2026, 11, 21, 9, 30, tzinfo=UTC),
        customer=Customer(id="cus_bob", email="bob@example.com", first_name="Bob"),
    )  # fmt: skip
    as_struct = envelopes.entry("ref_1", signup.type, signup, 1700000000.5)
    assert as_struct == envelopes.entry("ref_1", signup.type, to_json(signup), 1700000000.5)
    (entry,) = envelopes.unpack(b"[" + as_struct + b"]")
    assert decoder(SignupCompleted)(entry.m) == signup


def test_pack_splits_at_the_limit_and_keeps_the_order():
    items = [
        envelopes.entry(f"k{i}", "claim", orjson.dumps({"i": i, "pad": "x" * 50}), None)
        for i in range(40)
    ]
    packed = list(envelopes.pack(items, limit=1000))
    assert len(packed) > 1
    assert all(len(p) <= 1000 for p in packed)
    assert [orjson.loads(bytes(e.m))["i"] for p in packed for e in envelopes.unpack(p)] == list(
        range(40)
    )


def test_one_entry_larger_than_the_limit_travels_alone():
    big = envelopes.entry("k", "claim", orjson.dumps({"pad": "x" * 5000}), None)
    small = envelopes.entry("s", "claim", b"{}", None)
    packed = list(envelopes.pack([small, big, small], limit=1000))
    assert [len(envelopes.unpack(p)) for p in packed] == [1, 1, 1]


@pytest.mark.parametrize("value", [b"", b"not json", b'{"k":"a"}', None])
def test_anything_but_a_json_array_is_refused(value):
    with pytest.raises(ValueError):
        envelopes.unpack(value)


def test_a_bad_entry_comes_back_raw_and_costs_only_itself():
    good = envelopes.entry("ref_1", "claim", b"{}", None)
    (packed,) = envelopes.pack([good, b'{"k":1,"m":{}}', good])
    first, bad, last = envelopes.unpack(packed)
    assert first == last and isinstance(first, envelopes.Entry)
    assert not isinstance(bad, envelopes.Entry) and bytes(bad) == b'{"k":1,"m":{}}'


def test_a_message_decodes_alike_in_all_three_forms_of_entry():
    """Embedded JSON (now), its text as a JSON string (before), an object naming its
    ``type`` without a kind (before that): a worker upgraded in place reads all three."""
    from agents.join import decode_message
    from agents.messages import Attribution, SignupCompleted

    signup = {
        "event_id": "evt_1", "type": "signup.completed", "referral_id": "ref_1",
        "occurred_at": "2026-09-11T10:00:00Z",
        "customer": {"id": "cus_1", "email": "friend@example.com"},
    }  # fmt: skip
    attribution = {
        "attribution_event_id": "a_1", "kind": "friend_signed_up", "referral_id": "ref_1",
        "source_event_id": "evt_1", "occurred_at": "2026-09-11T10:00:00Z",
    }  # fmt: skip
    for kind, message, struct in (
        ("signup.completed", signup, SignupCompleted),
        ("attribution", attribution, Attribution),
    ):
        text = orjson.dumps(message).decode()
        forms = [
            {"k": "ref_1", "ts": None, "t": kind, "m": message},
            {"k": "ref_1", "ts": None, "t": kind, "m": text},
            {"k": "ref_1", "m": message},
        ]
        decoded = [decode_message(e) for e in envelopes.unpack(orjson.dumps(forms))]
        assert isinstance(decoded[0], struct)
        assert decoded == [decoded[0]] * 3
