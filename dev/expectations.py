"""What each vendor must hold once every attribution is delivered once (tests and demo).

Each emulator says it (``expect``: the vendor's view of sinks.md's mapping) and reports it
(``held``), in the same shape, keyed by emulator name.
"""

from __future__ import annotations

from collections.abc import Iterable

from dev.emulators import RunningEmulators
from schemas.attribution import AdvocateTotals, AttributionEvent
from sinks.registry import load, sink_classes

__all__ = ["expected_vendor_state", "vendor_state"]


def expected_vendor_state(
    emitted: Iterable[AttributionEvent], advocates: Iterable[AdvocateTotals] = ()
) -> dict:
    """For every registered sink's vendor. :param advocates: each advocate's final total
    (``JoinSim.advocate_totals``)."""
    emitted, advocates = list(emitted), list(advocates)
    emulators = [load(cls.emulator) for cls in sink_classes().values()]
    return {emulator.name: emulator.expect(emitted, advocates) for emulator in emulators}


def vendor_state(emulators: RunningEmulators) -> dict:
    """What each running emulator holds, by emulator name."""
    return {emulator.name: emulator.held() for emulator in emulators.by_sink.values()}
