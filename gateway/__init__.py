"""The webhook gateway (gateway.md): verified webhooks in, canonical events on Kafka out."""

from gateway.ids import gateway_event_id
from gateway.settings import GatewaySettings, Identity, load_gateway_settings

__all__ = ["GatewaySettings", "Identity", "gateway_event_id", "load_gateway_settings"]
