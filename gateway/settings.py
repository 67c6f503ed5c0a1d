"""The gateway's settings (gateway.md §2), read once from ``REFSTREAM_GATEWAY_*``.

Topic names, ``KAFKA_*`` and ``REFSTREAM_BROKER_COMPAT`` are the worker's
(:class:`streams.settings.Settings`); this model holds only what the gateway adds.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sinks.errors import ConfigurationError

__all__ = ["SECRET_SETTINGS", "GatewaySettings", "Identity", "load_gateway_settings"]

ENV_PREFIX = "REFSTREAM_GATEWAY_"
INTERNAL_SECRET_MIN_LENGTH = 32


class Identity(StrEnum):
    EMAIL = "email"
    PLATFORM = "platform"


class GatewaySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    host: str = "0.0.0.0"
    port: int = Field(8088, ge=0, le=65535)
    shopify_secret: SecretStr | None = None
    stripe_secret: SecretStr | None = None
    referralcandy_secret: SecretStr | None = None
    rewardful_secret: SecretStr | None = None
    internal_secret: SecretStr | None = None
    max_body_bytes: int = Field(1_048_576, ge=1)
    ack_timeout_seconds: float = Field(3.0, gt=0)
    """Below Shopify's 5 s budget: a request waits this long for broker acks, then 503."""
    retry_after_seconds: int = Field(30, ge=0)
    max_in_flight: int = Field(256, ge=1)
    signature_tolerance_seconds: float = Field(300, gt=0)
    shopify_referral_attribute: str = Field("referral_id", min_length=1)
    stripe_referral_metadata_key: str = Field("referral_id", min_length=1)
    identity: Identity = Identity.EMAIL

    @field_validator("internal_secret")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and 0 < len(value.get_secret_value()) < INTERNAL_SECRET_MIN_LENGTH:
            raise ValueError(f"must be at least {INTERNAL_SECRET_MIN_LENGTH} characters")
        return value

    @field_validator("identity", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value


SECRET_SETTINGS = (
    "shopify_secret",
    "stripe_secret",
    "referralcandy_secret",
    "rewardful_secret",
    "internal_secret",
)


def load_gateway_settings(require_source: bool = True) -> GatewaySettings:
    """The settings, or a :class:`ConfigurationError` naming each variable that is wrong,
    including the case where no source is enabled (every secret unset or empty) unless
    ``require_source`` is False (the DLQ replay maps without verifying)."""
    try:
        settings = GatewaySettings()
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "enum":
                message += f", not {error['input']!r}"
            name = f"{ENV_PREFIX}{str(error['loc'][0]).upper()}" if error["loc"] else ""
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigurationError("; ".join(problems)) from None
    if require_source and not any(
        (s := getattr(settings, name)) is not None and s.get_secret_value()
        for name in SECRET_SETTINGS
    ):
        names = ", ".join(f"{ENV_PREFIX}{name.upper()}" for name in SECRET_SETTINGS)
        raise ConfigurationError(f"no source is enabled: set at least one of {names}")
    return settings
