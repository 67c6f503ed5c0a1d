"""The registered sinks. Adding a sink is one module and one line in ``REGISTERED``; its
name, settings, credential checks and emulator all come from its class."""

from __future__ import annotations

import importlib
from functools import cache

from pydantic import ValidationError

from sinks.base import Sink
from sinks.errors import ConfigurationError

__all__ = ["REGISTERED", "build_sinks", "sink_class", "sink_classes", "sink_names"]

REGISTERED = (
    "sinks.hubspot:HubSpotSink",
    "sinks.klaviyo:KlaviyoSink",
    "sinks.mixpanel:MixpanelSink",
    "sinks.webhook:WebhookSink",
    "sinks.segment:SegmentSink",
)


def load(path: str) -> type:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


@cache
def sink_classes() -> dict[str, type[Sink]]:
    classes = [load(path) for path in REGISTERED]
    return {cls.name: cls for cls in classes}


def sink_names() -> tuple[str, ...]:
    return tuple(sink_classes())


def sink_class(name: str) -> type[Sink]:
    try:
        return sink_classes()[name]
    except KeyError:
        known = ", ".join(sink_names())
        raise ConfigurationError(f"unknown sink {name!r}; known: {known}") from None


def settings_of(cls: type[Sink]):
    """The sink's settings from the environment, or a :class:`ConfigurationError` naming
    the variable that is missing or wrong."""
    try:
        return cls.Settings()
    except ValidationError as exc:
        prefix = cls.Settings.model_config.get("env_prefix", "")
        error = exc.errors()[0]
        variable = f"{prefix}{error['loc'][0]}".upper() if error["loc"] else prefix
        if error["type"] == "missing":
            raise ConfigurationError(
                f"sink '{cls.name}' is enabled but {variable} is not set "
                f"(set it, or leave '{cls.name}' out of REFSTREAM_SINKS)"
            ) from None
        raise ConfigurationError(f"{variable}: {error['msg']}") from None


def build_sinks(names: tuple[str, ...]) -> list[Sink]:
    """One sink per name (``REFSTREAM_SINKS``), each with its settings.

    :raises ConfigurationError: naming the first unknown sink or missing variable.
    """
    return [cls(settings_of(cls)) for cls in (sink_class(name) for name in names)]
