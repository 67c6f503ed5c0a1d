"""gateway.md §10: every vector verifies; a flipped byte, a wrong secret, a missing header
and a stale or future timestamp do not."""

from __future__ import annotations

import pytest

from gateway.signatures import (
    hex_hmac_sha256_valid,
    md5_prefixed_valid,
    shopify_valid,
    timestamped_valid,
)

from . import vectors as v

TOLERANCE = 300


def flipped(body: bytes, at: int = 10) -> bytes:
    return body[:at] + bytes([body[at] ^ 0x01]) + body[at + 1 :]


def shopify(secret, body, header, now):
    return shopify_valid(secret, body, header)


def rewardful(secret, body, header, now):
    return hex_hmac_sha256_valid(secret, body, header)


def referralcandy(secret, body, header, now):
    return md5_prefixed_valid(secret, body, header)


def timestamped(secret, body, header, now):
    return timestamped_valid(secret, body, header, now, TOLERANCE)


CASES = {
    "shopify": (shopify, v.SHOPIFY_SECRET, v.SHOPIFY_CUSTOMER, v.SHOPIFY_CUSTOMER_HMAC, 0),
    "stripe": (timestamped, v.STRIPE_SECRET, v.STRIPE_SESSION, v.STRIPE_SIGNATURE, v.STRIPE_T),
    "referralcandy": (
        referralcandy,
        v.REFERRALCANDY_SECRET,
        v.REFERRALCANDY,
        v.REFERRALCANDY_SIGNATURE,
        0,
    ),
    "rewardful": (rewardful, v.REWARDFUL_SECRET, v.REWARDFUL, v.REWARDFUL_SIGNATURE, 0),
    "internal": (timestamped, v.INTERNAL_SECRET, v.INTERNAL, v.INTERNAL_SIGNATURE, v.INTERNAL_T),
}


@pytest.mark.parametrize("name", CASES)
def test_the_vector_verifies(name):
    check, secret, body, header, now = CASES[name]
    assert check(secret, body, header, now)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("at", [0, 10, -1])
def test_a_flipped_body_byte_fails(name, at):
    check, secret, body, header, now = CASES[name]
    assert not check(secret, flipped(body, at % len(body)), header, now)


@pytest.mark.parametrize("name", CASES)
def test_a_flipped_signature_character_fails(name):
    check, secret, body, header, now = CASES[name]
    last = header[-2]
    other = "A" if last != "A" else "B"
    if name in ("stripe", "internal", "referralcandy", "rewardful"):
        other = "0" if last != "0" else "1"
    assert not check(secret, body, header[:-2] + other + header[-1], now)


@pytest.mark.parametrize("name", CASES)
def test_a_wrong_secret_fails(name):
    check, secret, body, header, now = CASES[name]
    assert not check(secret + "x", body, header, now)
    assert not check(secret[:-1], body, header, now)


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("header", [None, "", "garbage", "t=,v1=", "=="])
def test_a_missing_or_malformed_header_fails(name, header):
    check, secret, body, _, now = CASES[name]
    assert not check(secret, body, header, now)


@pytest.mark.parametrize("name", ["stripe", "internal"])
def test_timestamps_outside_the_tolerance_fail_both_ways(name):
    check, secret, body, header, t = CASES[name]
    assert check(secret, body, header, t + 300) and check(secret, body, header, t - 300)
    assert not check(secret, body, header, t + 301)
    assert not check(secret, body, header, t - 301)


@pytest.mark.parametrize("name", ["stripe", "internal"])
def test_header_forms(name):
    check, secret, body, header, t = CASES[name]
    stamp, v1 = header.split(",")
    assert check(secret, body, f"{v1},{stamp}", t)  # order does not matter
    assert check(secret, body, f"{stamp},v1={'0' * 64},{v1},v0=abc", t)  # rotation, other schemes
    assert not check(secret, body, f"{stamp},{stamp},{v1}", t)  # t twice
    assert not check(secret, body, v1, t)  # no t
    assert not check(secret, body, stamp, t)  # no v1
    assert not check(secret, body, f"t=+{stamp[2:]},{v1}", t)  # t must be digits only


def test_hex_headers_compare_lower_cased():
    assert md5_prefixed_valid(
        v.REFERRALCANDY_SECRET, v.REFERRALCANDY, v.REFERRALCANDY_SIGNATURE.upper()
    )
    assert hex_hmac_sha256_valid(v.REWARDFUL_SECRET, v.REWARDFUL, v.REWARDFUL_SIGNATURE.upper())


def test_shopify_needs_the_decoded_32_bytes():
    assert not shopify_valid(v.SHOPIFY_SECRET, v.SHOPIFY_CUSTOMER, "not base64!")
    assert not shopify_valid(v.SHOPIFY_SECRET, v.SHOPIFY_CUSTOMER, v.SHOPIFY_CUSTOMER_HMAC[:-4])
