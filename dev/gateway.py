"""Run ``refstream gateway`` as a child process, and sign requests as each platform does
(tests, demo, benchmark)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from dev.worker import WorkerProcess

__all__ = ["TEST_SECRETS", "GatewayProcess", "SignedRequest", "Signer", "platform_journeys"]

TEST_SECRETS = {
    "REFSTREAM_GATEWAY_SHOPIFY_SECRET": "shpss_refstream_dev",
    "REFSTREAM_GATEWAY_STRIPE_SECRET": "whsec_refstream_dev",
    "REFSTREAM_GATEWAY_REFERRALCANDY_SECRET": "rc_refstream_dev",
    "REFSTREAM_GATEWAY_REWARDFUL_SECRET": "rw_refstream_dev",
    "REFSTREAM_GATEWAY_INTERNAL_SECRET": "refstream_internal_dev_secret_0123456789",
}


@dataclass(frozen=True, slots=True)
class SignedRequest:
    source: str
    path: str
    headers: dict[str, str]
    body: bytes


class Signer:
    """Builds the requests the platforms send, signed with :data:`TEST_SECRETS` (or others)."""

    def __init__(
        self, secrets: dict[str, str] | None = None, shop: str = "refstream-dev.myshopify.com"
    ):
        secrets = secrets or TEST_SECRETS
        self.secret = {name.split("_")[2].lower(): value for name, value in secrets.items()}
        self.shop = shop

    def shopify(self, topic: str, payload: dict | bytes, event_id: str = "") -> SignedRequest:
        body = _body(payload)
        mac = hmac.new(self.secret["shopify"].encode(), body, hashlib.sha256).digest()
        headers = {
            "X-Shopify-Hmac-Sha256": base64.b64encode(mac).decode(), "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": self.shop, "X-Shopify-API-Version": "2025-10",
            "X-Shopify-Webhook-Id": event_id or hashlib.sha1(body).hexdigest(),
            "Content-Type": "application/json",
        }  # fmt: skip
        if event_id:
            headers["X-Shopify-Event-Id"] = event_id
        return SignedRequest("shopify", "/v1/webhooks/shopify", headers, body)

    def stripe(self, payload: dict | bytes, t: int | None = None) -> SignedRequest:
        body = _body(payload)
        header = _timestamped(self.secret["stripe"], body, t)
        return SignedRequest("stripe", "/v1/webhooks/stripe", {"Stripe-Signature": header}, body)

    def referralcandy(self, payload: dict | bytes) -> SignedRequest:
        body = _body(payload)
        digest = hashlib.md5(self.secret["referralcandy"].encode() + body, usedforsecurity=False)
        headers = {"X-Referral-Candy-Signature": digest.hexdigest()}
        return SignedRequest("referralcandy", "/v1/webhooks/referralcandy", headers, body)

    def rewardful(self, payload: dict | bytes) -> SignedRequest:
        body = _body(payload)
        mac = hmac.new(self.secret["rewardful"].encode(), body, hashlib.sha256).hexdigest()
        headers = {"X-Rewardful-Signature": mac}
        return SignedRequest("rewardful", "/v1/webhooks/rewardful", headers, body)

    def internal(self, path: str, payload: dict | list | bytes, t: int | None = None):
        body = _body(payload)
        header = _timestamped(self.secret["internal"], body, t)
        return SignedRequest("internal", path, {"X-Refstream-Signature": header}, body)

    def resigned(self, request: SignedRequest) -> SignedRequest:
        """The same body signed anew (a platform's retry: new ``t`` for the timestamped)."""
        if request.source == "stripe":
            return self.stripe(request.body)
        if request.source == "internal":
            return self.internal(request.path, request.body)
        return request


def _body(payload: dict | list | bytes) -> bytes:
    return payload if isinstance(payload, bytes) else orjson.dumps(payload)


def _timestamped(secret: str, body: bytes, t: int | None) -> str:
    stamp = str(int(time.time()) if t is None else t)
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={mac}"


class GatewayProcess(WorkerProcess):
    """One gateway process on a free loopback port, with its own log file; the platform
    secrets are :data:`TEST_SECRETS` unless ``env`` says otherwise."""

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "gateway") -> None:
        super().__init__({**TEST_SECRETS, **env}, workdir, name, module="gateway")
        self.command = ()
        self.env |= {
            "REFSTREAM_GATEWAY_HOST": "127.0.0.1",
            "REFSTREAM_GATEWAY_PORT": str(self.port),
        }


def platform_journeys(signer: Signer, count: int, base: float) -> list:
    """``count`` referred friends as the platforms report them: ReferralCandy's referral,
    the friend's Shopify customer, and one order each, from Shopify (``orders/create`` and
    ``orders/paid``: two notifications of one fact) or, every third, a Stripe Checkout
    Session; every fifth is partly refunded (by order only, as the platforms refund).
    Event times start at ``base`` (Unix seconds)."""
    requests = []
    for j in range(count):
        t = int(base) + j * 60
        friend = f"friend{j}@shop.example"
        requests.append(signer.referralcandy({
            "referral_email": friend, "referral_timestamp": t,
            "referring_email": f"advocate{j % 7}@shop.example",
        }))  # fmt: skip
        customer = {"id": 5_000_000 + j, "email": friend, "first_name": f"Friend{j}"}
        requests.append(
            signer.shopify("customers/create", {**customer, "created_at": _rfc3339(t + 10)})
        )
        amount = 20 + j % 50
        if j % 3 == 2:
            requests.append(signer.stripe(_stripe_event(f"evt_demo_{j}", t + 30, {
                "object": "checkout.session", "mode": "payment", "payment_status": "paid",
                "payment_intent": f"pi_demo_{j}", "amount_total": amount * 100, "currency": "eur",
                "customer_details": {"email": friend},
            }, "checkout.session.completed")))  # fmt: skip
            if j % 5 == 0:
                requests.append(signer.stripe(_stripe_event(f"evt_demo_r{j}", t + 90, {
                    "id": f"re_demo_{j}", "object": "refund", "payment_intent": f"pi_demo_{j}",
                    "amount": 500, "currency": "eur", "created": t + 90, "status": "succeeded",
                }, "refund.created")))  # fmt: skip
            continue
        order = {"id": 6_000_000 + j, "email": friend, "created_at": _rfc3339(t + 30),
                 "financial_status": "paid", "test": False, "total_price": f"{amount}.00",
                 "currency": "USD", "customer": customer}  # fmt: skip
        requests.append(signer.shopify("orders/create", order))
        requests.append(signer.shopify("orders/paid", order))
        if j % 5 == 0:
            requests.append(signer.shopify("refunds/create", {
                "id": 7_000_000 + j, "order_id": order["id"], "created_at": _rfc3339(t + 90),
                "transactions": [{"kind": "refund", "status": "success", "amount": "5.00",
                                  "currency": "USD"}],
            }))  # fmt: skip
    return requests


def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _stripe_event(event_id: str, created: int, obj: dict, kind: str) -> dict:
    return {"id": event_id, "object": "event", "type": kind, "created": created,
            "data": {"object": obj}}  # fmt: skip
