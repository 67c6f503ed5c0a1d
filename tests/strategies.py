"""Hypothesis strategies shared by the fuzz tests (issue 17, item 3): input events at the
edges of the contract (section 4), poison made from them, and the attribution events the
join can emit from valid input.

Events are built as JSON-ready dicts; an ``orjson.Fragment`` in one stands for JSON text no
Python value serialises to (``NaN``, ``1e400``, ``-0``, a lone surrogate's escape, deep
nesting). Every personal field (emails, names) carries :data:`SENTINEL`, so a test can check
that no dead-letter message repeats it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from schemas.attribution import (
    AdvocateTotals,
    AttributionEvent,
    AttributionKind,
    OrderRef,
    Party,
    Totals,
    attribution_event_id,
)
from schemas.events import decimal_text

FUZZ = settings(
    derandomize=True,  # the same examples on every run: CI stays reproducible
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
"""The fuzz tests' base settings; each test sets its own ``max_examples``."""

SENTINEL = "s3cr3t"
K = AttributionKind

# --- text -------------------------------------------------------------------------------------

ODD = [
    "\x00", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028", "\u3000", "\t", "\n", " ",  # control, space
    "\u200b", "\u200d", "\u200e", "\u200f", "\u202e", "\u2066", "\ufeff",  # zero-width, bidi, BOM
    "\u0301", "\u0338", "e\u0301", "\U000e0001", "\ufffd",  # combining marks, tag, replacement
    "İ", "\u0131", "ß", "ẞ", "Σ", "ς", "\u212a", "ﬃ", "Ⅻ", "٣", "\U0001d7d8",  # case, digits
    "😀", "👩\u200d👩\u200d👧", "\U0010ffff", '"', "\\", "'", "<", "%", "/",
]  # fmt: skip
odd_char = st.one_of(st.sampled_from(ODD), st.characters(codec="utf-8"))


def odd_text(min_size: int = 0, max_size: int = 20) -> st.SearchStrategy[str]:
    """Text of ``min_size`` to ``max_size`` pieces (some are several code points)."""
    return st.lists(odd_char, min_size=min_size, max_size=max_size).map("".join)


def huge(prefix: str = "") -> st.SearchStrategy[str]:
    return st.sampled_from([255, 256, 257, 300, 100_000, 1_100_000]).map(
        lambda n: prefix + "x" * max(0, n - len(prefix))
    )


ids = st.one_of(
    st.from_regex(r"[a-z]{3}_[A-Za-z0-9]{1,12}", fullmatch=True),
    odd_text(1, 30),
    st.sampled_from([" ", "x" * 256]),
)
names = st.one_of(st.none(), odd_text(max_size=30).map(lambda s: SENTINEL + s))

_LOCAL = st.text(
    st.one_of(
        st.sampled_from(list("abcXYZ0189.+-_!#$%&'*/=?^`{|}~")),
        st.characters(codec="utf-8", categories=["L", "M", "N", "So"]),
    ),
    max_size=20,
)
_LABEL = st.text(
    st.one_of(
        st.sampled_from(list("abcxyz09-")), st.characters(codec="utf-8", categories=["L", "N"])
    ),
    min_size=1,
    max_size=15,
)
_DOMAIN = st.lists(_LABEL, min_size=1, max_size=3).map(".".join)
_TLD = st.sampled_from(["com", "io", "DE", "рф", "广告", "xn--p1ai", "museum"])


@st.composite
def emails(draw) -> str:
    """Mostly well-formed emails (IDN domains, Unicode local parts, odd case and padding)."""
    local = SENTINEL + draw(_LOCAL)
    address = f"{local}@{draw(_DOMAIN)}.{draw(_TLD)}"
    if draw(st.booleans()):
        address = address.upper() if draw(st.booleans()) else address.title()
    pad = draw(st.sampled_from(["", " ", "\t", "\u00a0", "\u3000 "]))
    return pad + address + pad


BAD_EMAILS = [
    f"{SENTINEL}@", f"@{SENTINEL}.com", f"{SENTINEL}@@example.com", f"{SENTINEL}@example",
    f"{SENTINEL}@example.com.", f"{SENTINEL}@exa mple.com", f"{SENTINEL}\x00@example.com",
    f"{SENTINEL}@[127.0.0.1]", "",
]  # fmt: skip
odd_emails = st.one_of(
    emails(),
    st.builds(lambda e, c: e.replace("@", c + "@", 1), emails(), st.sampled_from(ODD)),
    st.builds(lambda local: f'"{SENTINEL} {local}"@example.com', _LOCAL),  # quoted local part
    st.sampled_from(BAD_EMAILS),
    huge(SENTINEL + "@").map(lambda s: s + ".com"),
)

# --- timestamps -------------------------------------------------------------------------------

EDGE_MOMENTS = [
    datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59, 59, 999999),
    datetime(1969, 12, 31, 23, 59, 59), datetime(1970, 1, 1),
    datetime(1989, 12, 31, 23, 59, 59), datetime(1990, 1, 1),
    datetime(2024, 2, 29, 12), datetime(2038, 1, 19, 3, 14, 8), datetime(2100, 1, 1),
]  # fmt: skip
moments = st.one_of(
    st.sampled_from(EDGE_MOMENTS),
    st.datetimes(),
    st.datetimes(datetime(2020, 1, 1), datetime(2030, 1, 1)),
)
_MAX_OFFSET = 23 * 60 + 59
offsets = st.one_of(
    st.sampled_from([0, _MAX_OFFSET, -_MAX_OFFSET, 60, -330]),
    st.integers(-_MAX_OFFSET, _MAX_OFFSET),
).map(lambda minutes: timezone(timedelta(minutes=minutes)))


def _offset_text(offset: timedelta) -> str:
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


@st.composite
def rfc3339(draw) -> tuple[str, datetime]:
    """A valid RFC 3339 timestamp in any of its spellings, and the instant it names."""
    moment, tz = draw(moments), draw(offsets)
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{draw(st.sampled_from('Tt '))}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )
    if moment.microsecond or draw(st.booleans()):  # up to 26 digits; pydantic keeps 6
        text += f".{moment.microsecond:06d}" + draw(st.text("0123456789", max_size=20))
    offset = tz.utcoffset(None)
    if not offset:
        text += draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        text += _offset_text(offset)
    return text, moment.replace(tzinfo=tz)


BAD_TIMESTAMPS = [
    "2026-11-20T24:00:00Z", "2026-11-20T10:00:00+24:00", "2026-11-20T10:00:00+0100",
    "0000-01-01T00:00:00Z", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-20T10:00Z",
    "\u0662\u0660\u0662\u0666-11-20T10:00:00Z", "2026-11-20", "", "now",
]  # fmt: skip
odd_timestamps = st.one_of(
    rfc3339().map(lambda pair: pair[0]),
    rfc3339().map(lambda pair: pair[0][:19]),  # no offset
    rfc3339().map(lambda pair: pair[0][:17] + "60" + pair[0][19:]),  # leap second
    rfc3339().map(lambda pair: pair[0] + "\n"),
    st.sampled_from(BAD_TIMESTAMPS),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
)

# --- amounts and currencies -------------------------------------------------------------------


@st.composite
def amounts(draw) -> tuple[Any, Decimal]:
    """A valid amount at the edges (up to 40 digits before the point and 20 after), in any
    spelling the contract allows, and its exact value."""
    edges = st.sampled_from(["0", "9" * 40, "1" + "0" * 39])
    integer = draw(st.one_of(edges, st.from_regex(r"[0-9]{1,40}", fullmatch=True)))
    tiny = st.sampled_from(["0000001", "0" * 19 + "1", "10000000"])  # str(): "1E-7"
    fraction = draw(st.one_of(st.just(""), tiny, st.from_regex(r"[0-9]{1,20}", fullmatch=True)))
    text = integer + ("." + fraction if fraction else "")
    value = Decimal(text)
    form = draw(st.sampled_from(["string", "number", "padded", "plus", "exponent", "int"]))
    if form == "number" and not (integer.startswith("0") and len(integer) > 1):
        return orjson.Fragment(text.encode()), value
    if form == "padded":
        return f" {text} ", value
    if form == "plus":
        return "+" + text, value
    if form == "exponent":  # the same value written with an exponent: 12.5 -> "125E-1"
        digits = integer.lstrip("0") + fraction
        return f"{digits or '0'}E-{len(fraction)}", value
    if form == "int" and not fraction and len(integer) <= 18:
        return int(integer), value
    return text, value


ODD_AMOUNTS = [
    "-0", "-0.0", "-1", "NaN", "Infinity", "-Infinity", "sNaN", "1e400", "1e-400", "1" * 41,
    "0." + "0" * 20 + "1", "0e-999999999", "1e999999999", "1_000", "١٢", "0x10", "", " ", ".",
    "1.2.3", "1,5", "++1", True, False, None, [], {}, 1.5, 0.1, 1e300, -0.0, -1,
    orjson.Fragment(b"-0"), orjson.Fragment(b"-0.0"), orjson.Fragment(b"1e400"),
    orjson.Fragment(b"-1e400"), orjson.Fragment(b"1E-400"), orjson.Fragment(b"NaN"),
    orjson.Fragment(b"Infinity"), orjson.Fragment(b"1" + b"0" * 39),
    orjson.Fragment(b"1" + b"0" * 400), orjson.Fragment(b"123456789012345678901234567890.5"),
]  # fmt: skip
odd_amounts = st.one_of(amounts().map(lambda pair: pair[0]), st.sampled_from(ODD_AMOUNTS))
currencies = st.from_regex(r"[A-Za-z]{3}", fullmatch=True)
odd_currencies = st.one_of(
    currencies,
    st.sampled_from(["EURO", "EU", "€UR", "\uff25\uff35\uff32", "\u0131UR", "", "E U", 978, None]),
)

# --- input events -----------------------------------------------------------------------------


def _person(draw, email: st.SearchStrategy[str], name: st.SearchStrategy[str | None]) -> dict:
    person = {"id": draw(ids), "email": draw(email)}
    for field in ("first_name", "last_name"):
        if (value := draw(name)) is not None:
            person[field] = value
    return person


INPUT_TYPES = ["referral.created", "signup.completed", "order.completed", "order.refunded"]


@st.composite
def input_events(draw, odd: bool = False, kind: str | None = None) -> dict:
    """One input event (of ``kind``, or any type), optional fields present or not; with
    ``odd``, every field is drawn from its edge cases, valid or not."""
    email = odd_emails if odd else emails()
    name = st.one_of(names, huge(SENTINEL)) if odd else names
    timestamp = odd_timestamps if odd else rfc3339().map(lambda pair: pair[0])
    kind = kind or draw(st.sampled_from(INPUT_TYPES))
    event: dict[str, Any] = {"event_id": draw(ids), "type": kind, "occurred_at": draw(timestamp)}
    if kind == "referral.created":
        event |= {"referral_id": draw(ids), "advocate": _person(draw, email, name)}
        if draw(st.booleans()):
            event["friend_email"] = draw(email)
        if draw(st.booleans()):
            event["campaign_id"] = draw(st.one_of(ids, st.none()))
    elif kind == "signup.completed":
        event["customer"] = _person(draw, email, name)
        if draw(st.booleans()):
            event["referral_id"] = draw(ids)
    else:
        customer = {"id": draw(ids)}
        if draw(st.booleans()):
            customer["email"] = draw(email)
        amount = draw(odd_amounts if odd else amounts().map(lambda pair: pair[0]))
        event |= {
            "order_id": draw(ids), "customer": customer, "amount": amount,
            "currency": draw(odd_currencies if odd else currencies),
        }  # fmt: skip
        if kind == "order.refunded" and draw(st.booleans()):
            del event["customer"]  # rule 9: refunds may come by order only
        if draw(st.booleans()):
            event["referral_id"] = draw(ids)
    return event


_SCALARS = [
    st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1),  # orjson's integers
    st.floats(allow_nan=False, allow_infinity=False), odd_text(),
]  # fmt: skip
json_values = st.recursive(
    st.one_of(*_SCALARS),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(odd_text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _nested(depth: int, dicts: bool) -> orjson.Fragment:
    if dicts:
        return orjson.Fragment(b'{"a":' * depth + b"1" + b"}" * depth)
    return orjson.Fragment(b"[" * depth + b"]" * depth)


RAW_TOKENS = [
    orjson.Fragment(t)
    for t in (b"NaN", b"-Infinity", b"1e400", b"-0", b"1" + b"0" * 400, b'"\\ud800"',
              b'"x\\udc00y"', b'"\\ud83d\\ude00"', b'"\\u0000"', b"[1,]", b"01", b"'x'")
]  # fmt: skip
poison_values = st.one_of(
    json_values,
    odd_text(),
    huge(SENTINEL),
    st.sampled_from(RAW_TOKENS),
    st.builds(_nested, st.sampled_from([2, 500, 990, 1000, 1023, 1024, 1025, 5000]), st.booleans()),
)
_NESTED = ("advocate", "customer")


@st.composite
def poisoned(draw, event: dict) -> dict:
    """``event`` with one to three fields deleted, replaced by poison, or poison added."""
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in event.items()}
    for _ in range(draw(st.integers(1, 3))):
        target = data
        nested = [k for k in _NESTED if isinstance(data.get(k), dict)]
        if nested and draw(st.booleans()):
            target = data[draw(st.sampled_from(nested))]
        keys = [*sorted(target), "extra", "type"]
        key = draw(st.sampled_from(keys))
        if draw(st.integers(0, 4)) == 0:
            target.pop(key, None)
        else:
            target[key] = draw(poison_values)
    return data


def encode(event: Any) -> bytes:
    return orjson.dumps(event)


@st.composite
def poison_records(draw) -> bytes | None:
    """Anything a producer could put on an input topic."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.one_of(st.none(), st.binary(max_size=300)))
    if choice == 1:
        return encode(draw(json_values))
    if choice == 2:  # a valid event cut short or with a byte flipped
        raw = encode(draw(input_events()))
        cut = draw(st.integers(0, len(raw)))
        if draw(st.booleans()):
            return raw[:cut]
        return raw[:cut] + bytes([draw(st.integers(0, 255))]) + raw[cut + 1 :]
    if choice == 3:
        return encode(draw(input_events(odd=True)))
    return encode(draw(poisoned(draw(input_events()))))


# --- attribution events -----------------------------------------------------------------------


def _party(draw, *, email: bool = True) -> Party:
    return Party(
        id=draw(ids),
        email=draw(emails()).strip().lower() if email else None,
        first_name=draw(names),
        last_name=draw(names),
    )


@st.composite
def order_refs(draw) -> OrderRef:
    net = draw(st.none() | amounts().map(lambda pair: pair[1]))  # refunds carry it
    return OrderRef(
        order_id=draw(ids), amount=draw(amounts())[1], currency=draw(currencies).upper(),
        net_amount=net,
    )  # fmt: skip


@st.composite
def totals(draw) -> Totals:
    revenue = draw(
        st.dictionaries(
            currencies.map(str.upper), amounts().map(lambda pair: decimal_text(pair[1])),
            max_size=3,
        )
    )  # fmt: skip
    return Totals(orders=draw(st.integers(0, 10**6)), revenue=revenue)


@st.composite
def attribution_events(draw) -> AttributionEvent:
    """An attribution event as the join emits it (agents/rules.py), from valid input at
    the edges: each kind with its fields, optional ones absent or not."""
    kind = draw(st.sampled_from(list(K)))
    referral_id = draw(ids)
    if kind == K.SIGNUP_UNATTRIBUTED and draw(st.booleans()):
        referral_id = None  # matched through an email, to nothing
    source = draw(ids)
    referred = not (
        kind in (K.SIGNUP_UNATTRIBUTED, K.ORDER_UNATTRIBUTED) and draw(st.booleans())
    )  # the referral is known, or not
    friend = _party(draw, email=kind != K.ORDER_UNATTRIBUTED or draw(st.booleans()))
    if kind == K.ORDER_UNATTRIBUTED and not referred:
        friend = Party(id=friend.id)
    reason = {
        K.REFERRAL_REJECTED: draw(st.sampled_from(["self_referral", "already_referred"])),
        K.SIGNUP_UNATTRIBUTED: "window_expired" if referred else "referral_unknown",
        K.ORDER_UNATTRIBUTED: "window_expired" if referred else "referral_unknown",
    }.get(kind)
    order_kind = kind in (K.REFERRAL_CONVERTED, K.ORDER_ATTRIBUTED, K.ORDER_REFUNDED)
    return AttributionEvent(
        attribution_event_id=attribution_event_id(referral_id, kind, source),
        kind=kind,
        referral_id=referral_id,
        campaign_id=draw(st.one_of(st.none(), ids)) if referred else None,
        advocate=_party(draw) if referred else None,
        friend=friend,
        order=draw(order_refs()) if order_kind or kind == K.ORDER_UNATTRIBUTED else None,
        totals=draw(totals()) if order_kind else Totals(),
        reason=reason,
        source_event_id=source,
        occurred_at=draw(rfc3339())[1],
        emitted_at=datetime.now(UTC) if draw(st.booleans()) else None,
    )


@st.composite
def advocate_totals(draw) -> AdvocateTotals:
    return AdvocateTotals(
        advocate=_party(draw),
        referral_revenue_generated=draw(totals()).revenue,
        converted_referrals=draw(st.integers(1, 10**6)),
        source_attribution_event_id=attribution_event_id(draw(ids), "referral_converted", "e"),
        emitted_at=datetime.now(UTC) if draw(st.booleans()) else None,
    )
