"""Enabled sinks from settings. Adding a sink = one class plus one entry here."""

from __future__ import annotations

from collections.abc import Callable

from sinks.base import Sink
from sinks.errors import ConfigurationError
from sinks.hubspot import HubSpotSink
from sinks.klaviyo import KlaviyoSink
from sinks.mixpanel import MixpanelSink
from sinks.webhook import WebhookSink
from streams.settings import Settings

__all__ = ["REQUIRED", "build_sinks"]

REQUIRED: dict[str, tuple[str, ...]] = {
    "crm": ("HUBSPOT_ACCESS_TOKEN",),
    "email": ("KLAVIYO_API_KEY",),
    "analytics": ("MIXPANEL_PROJECT_TOKEN", "MIXPANEL_PROJECT_ID"),
    "webhook": ("WEBHOOK_URL", "WEBHOOK_SECRET"),
}
_FIELDS = {
    "HUBSPOT_ACCESS_TOKEN": "hubspot_access_token",
    "KLAVIYO_API_KEY": "klaviyo_api_key",
    "MIXPANEL_PROJECT_TOKEN": "mixpanel_project_token",
    "MIXPANEL_PROJECT_ID": "mixpanel_project_id",
    "WEBHOOK_URL": "webhook_url",
    "WEBHOOK_SECRET": "webhook_secret",
}
FACTORIES: dict[str, Callable[[Settings], Sink]] = {
    "crm": lambda s: HubSpotSink(s.hubspot_api_url, s.hubspot_access_token),
    "email": lambda s: KlaviyoSink(s.klaviyo_api_url, s.klaviyo_api_key, s.klaviyo_revision),
    "analytics": lambda s: MixpanelSink(
        s.mixpanel_api_url, s.mixpanel_project_token, s.mixpanel_project_id
    ),
    "webhook": lambda s: WebhookSink(s.webhook_url, s.webhook_secret),
}


def build_sinks(settings: Settings) -> list[Sink]:
    """One sink per name in ``REFSTREAM_SINKS``.

    :raises ConfigurationError: naming the first missing credential variable.
    """
    for name in settings.sinks:
        for variable in REQUIRED[name]:
            if not getattr(settings, _FIELDS[variable]):
                raise ConfigurationError(
                    f"sink '{name}' is enabled but {variable} is not set "
                    f"(set it, or leave '{name}' out of REFSTREAM_SINKS)"
                )
    return [FACTORIES[name](settings) for name in settings.sinks]
