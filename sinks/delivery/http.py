"""The HTTP edge: aiohttp failures become refstream errors, statuses become error types."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from sinks.errors import PermanentError, RateLimited, UpstreamTimeout, UpstreamUnavailable

__all__ = ["check_status", "retry_after_seconds", "translate_transport_errors"]


@contextlib.contextmanager
def translate_transport_errors() -> Iterator[None]:
    """Re-raise aiohttp and timeout errors as the most specific refstream type."""
    try:
        yield
    except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
        raise UpstreamTimeout(f"request timed out: {type(exc).__name__}") from exc
    except aiohttp.ClientConnectionError as exc:
        raise UpstreamUnavailable(f"connection failed: {type(exc).__name__}") from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamUnavailable(f"broken response: {type(exc).__name__}") from exc


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def check_status(status: int, headers: dict | aiohttp.typedefs.LooseHeaders, body: str) -> None:
    """Raise the error type for a non-success status; return for 2xx."""
    if 200 <= status < 300:
        return
    snippet = body[:300]
    if status == 429:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        raise RateLimited(f"429 rate limited: {snippet}", retry_after=retry_after)
    if status == 408:
        raise UpstreamTimeout(f"408 from vendor: {snippet}")
    if status >= 500:
        raise UpstreamUnavailable(f"{status} from vendor: {snippet}", status=status)
    reason = {401: "unauthorized", 403: "forbidden", 413: "too_large"}.get(status, "rejected")
    raise PermanentError(f"{status} from vendor: {snippet}", status=status, reason=reason)
