"""Webhook sources: one module per platform; registration is one line in :data:`SOURCES`."""

from gateway.sources.base import Ignored, Mapped, Source, Unmappable, WebhookRequest
from gateway.sources.canonical import CanonicalOrders, CanonicalReferrals, CanonicalSignups
from gateway.sources.referralcandy import ReferralCandy
from gateway.sources.rewardful import Rewardful
from gateway.sources.shopify import Shopify
from gateway.sources.stripe import Stripe

__all__ = [
    "SOURCES",
    "SOURCE_NAMES",
    "Ignored",
    "Mapped",
    "Source",
    "Unmappable",
    "WebhookRequest",
]

SOURCES: tuple[type[Source], ...] = (
    Shopify, Stripe, ReferralCandy, Rewardful,
    CanonicalReferrals, CanonicalSignups, CanonicalOrders,
)  # fmt: skip
SOURCE_NAMES = tuple(dict.fromkeys(source.name for source in SOURCES))
