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

__all__ = ["TEST_SECRETS", "GatewayProcess", "SignedRequest", "Signer"]

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

    args = ()

    def __init__(self, env: dict[str, str], workdir: Path, name: str = "gateway") -> None:
        super().__init__({**TEST_SECRETS, **env}, workdir, name, module="gateway")
        self.env |= {
            "REFSTREAM_GATEWAY_HOST": "127.0.0.1",
            "REFSTREAM_GATEWAY_PORT": str(self.port),
        }
