"""Per-sink delivery settings, immutable, with visible defaults."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DEFAULT_POLICY", "DeliveryPolicy"]


@dataclass(frozen=True, slots=True)
class DeliveryPolicy:
    """How one sink talks to its vendor.

    :param batch_size: records per vendor request (the vendor's batch limit; 1 = no batch).
    :param max_request_bytes: the vendor's limit on a request body: a batch is cut before
        its records' encodings (plus ``envelope_bytes``) would pass it.
    :param max_item_bytes: the vendor's limit on one record: a record whose encoding is
        larger is dead-lettered as ``too_large`` without being sent.
    :param envelope_bytes: what a request adds around its records (allowance).
    :param bulk_from: a batch of fewer records than this goes out one request per record
        (a vendor with a cheap single endpoint and a scarce bulk one; 0 = always batch).
    :param bulk_limits: the rate limits of multi-record requests when they differ from
        ``limits`` (which then count single-record requests).
    :param linger: seconds to wait for more records before sending a partial batch.
    :param max_in_flight: concurrent requests.
    :param limits: the vendor's rate limits as ``(requests, seconds)``: at most that many
        requests in *any* window of that many seconds, every limit at once (vendors count
        in sliding windows; see :mod:`sinks.delivery.window`).
    :param request_timeout: seconds for one HTTP request.
    :param max_attempts: tries of one request while the circuit is closed, then the DLQ.
    :param max_retry_seconds: time budget for those tries (circuit-open time not counted).
    :param backoff_base: first backoff ceiling in seconds; doubles per try (full jitter).
    :param backoff_max: backoff ceiling.
    :param breaker_failures: consecutive retryable failures that open the circuit.
    :param breaker_reset: seconds the circuit stays open before one probe request.
    """

    batch_size: int = 100
    max_request_bytes: int | None = None
    max_item_bytes: int | None = None
    envelope_bytes: int = 1024
    bulk_from: int = 0
    bulk_limits: tuple[tuple[int, float], ...] | None = None
    linger: float = 0.2
    max_in_flight: int = 4
    limits: tuple[tuple[int, float], ...] = ((10, 1.0),)
    request_timeout: float = 10.0
    max_attempts: int = 8
    max_retry_seconds: float = 300.0
    backoff_base: float = 0.2
    backoff_max: float = 30.0
    breaker_failures: int = 5
    breaker_reset: float = 2.0


DEFAULT_POLICY = DeliveryPolicy()
