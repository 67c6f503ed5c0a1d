"""End-to-end latencies measured outside the worker (demo and benchmarks).

Join: the input record's broker timestamp → the attribution's `emitted_at`.
Delivery: the attribution's `emitted_at` → the vendor emulator accepting the write
(Klaviyo and Mixpanel by attribution id; HubSpot by the friend's contact, the first upsert
at or after the attribution was emitted).
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence

__all__ = ["CRM_KINDS", "JOINED", "delivery_latencies", "percentile"]

JOINED = frozenset({"friend_signed_up", "referral_converted", "order_attributed", "order_refunded"})
"""Kinds emitted when partners meet; the others wait out the pending TTL by design."""
CRM_KINDS = JOINED
"""Kinds the CRM sink upserts (the friend's contact)."""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile, ``q`` in 0..100; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def delivery_latencies(
    emitted: Iterable[tuple[str, float]], accept_log: Iterable[tuple[str, float]]
) -> list[float]:
    """For each (key, emitted at) the delay to the first acceptance of ``key`` at or after
    it; keys never accepted are left out (the caller compares counts)."""
    accepted: dict[str, list[float]] = defaultdict(list)
    for key, at in accept_log:
        accepted[key].append(at)
    for times in accepted.values():
        times.sort()
    latencies = []
    for key, at in emitted:
        times = accepted.get(key, [])
        index = bisect.bisect_left(times, at - 0.002)  # broker and emulator clocks: same host
        if index < len(times):
            latencies.append(max(0.0, times[index] - at))
    return latencies
