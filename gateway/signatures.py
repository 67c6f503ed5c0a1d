"""Signature schemes of gateway.md §5: small pure functions over the raw body bytes.

Every comparison is ``hmac.compare_digest`` on equal-length byte strings; nothing here
parses the body. A function returns False for anything missing, malformed or wrong, so the
caller answers 401 without telling which check failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

__all__ = [
    "hex_hmac_sha256_valid",
    "md5_prefixed_valid",
    "shopify_valid",
    "timestamped_valid",
]

_T = re.compile(r"[0-9]{1,12}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def _hex_equal(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))


def shopify_valid(secret: str, body: bytes, header: str | None) -> bool:
    """``X-Shopify-Hmac-Sha256``: Base64 HMAC-SHA256 of the body; the decoded 32 bytes match."""
    if not header:
        return False
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()
    return len(given) == len(expected) and hmac.compare_digest(expected, given)


def hex_hmac_sha256_valid(secret: str, body: bytes, header: str | None) -> bool:
    """Rewardful: lowercase hex HMAC-SHA256 of the body (the header is lower-cased first)."""
    if not header:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return _hex_equal(expected, header.strip().lower())


def md5_prefixed_valid(secret: str, body: bytes, header: str | None) -> bool:
    """ReferralCandy: hex MD5 of secret ‖ body, a plain digest (not an HMAC)."""
    if not header:
        return False
    expected = hashlib.md5(secret.encode("utf-8") + body, usedforsecurity=False).hexdigest()
    return _hex_equal(expected, header.strip().lower())


def _parse_timestamped(header: str) -> tuple[str, list[str]] | None:
    """``t=<unix>,v1=<hex>[,v1=…]``: the ``t`` text as sent and every ``v1`` candidate."""
    stamps: list[str] = []
    candidates: list[str] = []
    for item in header.split(","):
        name, sep, value = item.partition("=")
        if not sep:
            continue
        if name == "t":
            stamps.append(value)
        elif name == "v1":
            candidates.append(value)
    if len(stamps) != 1 or not _T.fullmatch(stamps[0]) or not candidates:
        return None
    return stamps[0], candidates


def timestamped_valid(
    secret: str, body: bytes, header: str | None, now: float, tolerance: float
) -> bool:
    """Stripe and the canonical endpoint: HMAC-SHA256 of ``t.body``, ``t`` within
    ``tolerance`` seconds of ``now`` either way, any ``v1`` candidate matching."""
    parsed = _parse_timestamped(header) if header else None
    if parsed is None:
        return False
    t, candidates = parsed
    if abs(now - int(t)) > tolerance:
        return False
    mac = hmac.new(secret.encode("utf-8"), t.encode("ascii") + b"." + body, hashlib.sha256)
    expected = mac.hexdigest()
    matched = False
    for candidate in candidates:  # every candidate compared: no early exit on the first match
        matched |= bool(_HEX64.fullmatch(candidate)) and _hex_equal(expected, candidate)
    return matched
