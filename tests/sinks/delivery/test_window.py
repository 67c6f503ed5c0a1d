import asyncio
import time

from sinks.delivery.window import SlidingWindowLimiter


async def test_a_request_holds_its_place_until_a_period_after_its_answer():
    limiter = SlidingWindowLimiter(5, 0.2)
    spans: list[tuple[float, float]] = []

    async def request(latency: float) -> None:
        async with limiter:
            sent = time.monotonic()
            await asyncio.sleep(latency)
            spans.append((sent, time.monotonic()))

    began = time.monotonic()
    await asyncio.gather(*(request(0.05 if n % 3 else 0.0) for n in range(16)))
    elapsed = time.monotonic() - began

    assert len(spans) == 16
    # Whenever a request is sent, fewer than 5 others were sent and not answered a full
    # period before: the vendor, counting arrivals, never sees 6 in one window.
    for sent, _ in spans:
        busy = [s for s, answered in spans if s < sent and answered > sent - 0.2]
        assert len(busy) < 5
    assert elapsed < 4 * (0.2 + 0.05) + 0.15, "and it uses the allowance it has"
