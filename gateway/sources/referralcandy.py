"""ReferralCandy's custom advocate reward webhook (gateway.md §8.3): one referred purchase
becomes a referral and its friend's signup. The body has no ids: one advocate-friend pair
is one referral, so repeated notifications map to the same ids."""

from __future__ import annotations

import json
from collections.abc import Mapping

from gateway.ids import email_id, gateway_event_id, norm_email, sha256_hex, unix_to_rfc3339
from gateway.signatures import md5_prefixed_valid
from gateway.sources.base import (
    Ignored,
    Mapped,
    Source,
    Unmappable,
    WebhookRequest,
    labelled,
    load_json_object,
    need,
)

__all__ = ["ReferralCandy", "referral_id"]

VENDOR_EVENT = "referral_purchase"


def referral_id(referring_email: str, referral_email: str) -> str:
    pair = [norm_email(referring_email), norm_email(referral_email)]
    return "rc_" + sha256_hex(json.dumps(pair, separators=(",", ":")))[:24]


class ReferralCandy(Source):
    name = "referralcandy"
    path = "/v1/webhooks/referralcandy"
    secret_setting = "referralcandy_secret"

    def verify(self, headers: Mapping[str, str], body: bytes, now: float) -> bool:
        return md5_prefixed_valid(self.secret, body, headers.get("X-Referral-Candy-Signature"))

    def map(self, request: WebhookRequest) -> Mapped | Ignored:
        with labelled(VENDOR_EVENT):
            body = load_json_object(request.body)
            advocate = need(body, "referring_email", "body")
            friend = need(body, "referral_email", "body")
            if not isinstance(advocate, str) or not isinstance(friend, str):
                raise Unmappable("invalid_field", "referring_email/referral_email must be text")
            try:
                occurred_at = unix_to_rfc3339(need(body, "referral_timestamp", "body"))
            except ValueError as exc:
                raise Unmappable("invalid_field", f"referral_timestamp {exc}") from None
        rid = referral_id(advocate, friend)
        # gateway.md §11.2: the email-derived ids replace the rc_adv_/rc_cus_ ids of §8.3 in
        # both identity modes (ReferralCandy gives no platform id).
        referral = {
            "event_id": gateway_event_id(self.name, "", "referral.created", rid),
            "type": "referral.created",
            "referral_id": rid,
            "occurred_at": occurred_at,
            "advocate": {"id": email_id(advocate), "email": advocate},
            "friend_email": friend,
        }
        signup = {
            "event_id": gateway_event_id(self.name, "", "signup.completed", rid),
            "type": "signup.completed",
            "referral_id": rid,
            "occurred_at": occurred_at,
            "customer": {"id": email_id(friend), "email": friend},
        }
        return Mapped([referral, signup], VENDOR_EVENT)
