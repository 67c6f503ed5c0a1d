from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway.settings import GatewaySettings, Identity

from . import vectors as v


def gateway_settings(**overrides) -> GatewaySettings:
    values = {
        "shopify_secret": SecretStr(v.SHOPIFY_SECRET),
        "stripe_secret": SecretStr(v.STRIPE_SECRET),
        "referralcandy_secret": SecretStr(v.REFERRALCANDY_SECRET),
        "rewardful_secret": SecretStr(v.REWARDFUL_SECRET),
        "internal_secret": SecretStr(v.INTERNAL_SECRET),
        **overrides,
    }
    return GatewaySettings.model_construct(**{**GatewaySettings().model_dump(), **values})


@pytest.fixture
def platform_settings() -> GatewaySettings:
    return gateway_settings(identity=Identity.PLATFORM)


@pytest.fixture
def email_settings() -> GatewaySettings:
    return gateway_settings(identity=Identity.EMAIL)
