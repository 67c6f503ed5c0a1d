"""Deterministic ids and value conversions shared by the source mappings (gateway.md §6, §8).

Every id is a pure function of the business fact, never of the delivery, so a retried or
duplicated webhook yields the same ``event_id`` and the join's dedup (rule 1) drops it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

__all__ = [
    "email_id",
    "gateway_event_id",
    "minor_to_decimal",
    "norm_email",
    "sha256_hex",
    "unix_to_rfc3339",
]

_ZERO_DECIMAL = frozenset({
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
})  # fmt: skip
_THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def gateway_event_id(source: str, scope: str, kind: str, key: str) -> str:
    material = json.dumps([source, scope, kind, key], separators=(",", ":"), ensure_ascii=False)
    return "gw_" + hashlib.sha256(material.encode("utf-8")).hexdigest()[:32]


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def norm_email(email: str) -> str:
    return email.strip().lower()


def email_id(email: str) -> str:
    """The customer/advocate id one person has in every system (gateway.md §11.2)."""
    return "em_" + sha256_hex(norm_email(email))[:24]


def unix_to_rfc3339(seconds: int) -> str:
    """Unix seconds as UTC ``YYYY-MM-DDTHH:MM:SSZ``; raises ValueError for non-integers."""
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise ValueError("must be Unix seconds (an integer)")
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def minor_to_decimal(amount: int, currency: str) -> str:
    """Stripe's integer minor units as a decimal string with the currency's exponent."""
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
        raise ValueError("must be a non-negative integer of minor units")
    upper = currency.upper()
    exponent = 0 if upper in _ZERO_DECIMAL else 3 if upper in _THREE_DECIMAL else 2
    if exponent == 0:
        return str(amount)
    digits = str(amount).rjust(exponent + 1, "0")
    return f"{digits[:-exponent]}.{digits[-exponent:]}"
