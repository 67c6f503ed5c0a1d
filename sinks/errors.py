"""What can go wrong when delivering to a vendor, classified once at the HTTP edge.

::

    RefstreamError
     └── DeliveryError
          ├── RetryableError            retried with backoff; opens the circuit when repeated
          │    ├── RateLimited          429: carries the vendor's Retry-After
          │    ├── UpstreamTimeout      request timed out
          │    └── UpstreamUnavailable  5xx, connection refused or reset
          └── PermanentError            any other 4xx: the record goes to the sink's DLQ
    ConfigurationError                  a sink is enabled without its credentials

Sinks raise these from ``write``; the delivery layer only looks at the types.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DeliveryError",
    "PermanentError",
    "RateLimited",
    "RefstreamError",
    "RetryableError",
    "UpstreamTimeout",
    "UpstreamUnavailable",
]


class RefstreamError(Exception):
    pass


class ConfigurationError(RefstreamError):
    """The worker cannot start as configured; the message names what to set."""


class DeliveryError(RefstreamError):
    def __init__(self, message: str, *, status: int | None = None, reason: str = "error"):
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class RetryableError(DeliveryError):
    pass


class RateLimited(RetryableError):
    def __init__(
        self, message: str, *, retry_after: float | None, status: int = 429,
        reason: str = "rate_limited",
    ) -> None:  # fmt: skip
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class UpstreamTimeout(RetryableError):
    def __init__(self, message: str):
        super().__init__(message, reason="timeout")


class UpstreamUnavailable(RetryableError):
    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message, status=status, reason="server_error" if status else "connection")


class PermanentError(DeliveryError):
    def __init__(self, message: str, *, status: int | None = None, reason: str = "rejected"):
        super().__init__(message, status=status, reason=reason)
