"""The join's changelog-backed tables, one per keyed stage (see agents/rules.py)."""

from __future__ import annotations

from streams.app import app, settings

__all__ = ["customers", "emails", "referrals"]

# bytes types mean the "raw" codec: values are our own JSON, encoded by pydantic. Keys must be
# bytes too, always: the memory store keeps keys as given, and recovery from the changelog
# restores them as bytes, so a str key written live would never be found after a restart.
_options = {"partitions": settings.partitions, "key_type": bytes, "value_type": bytes}

referrals = app.Table("join-referrals", help="referral_id → ReferralState", **_options)
customers = app.Table("join-customers", help="customer id → CustomerState", **_options)
emails = app.Table("join-emails", help="friend email → EmailState", **_options)
