"""Replaying a sink's dead letters: delivered again with their ids, within the share of the
vendor's rate limit the replay was given (the workers keep theirs meanwhile)."""

from __future__ import annotations

from aiokafka import ConsumerRecord

from sinks import replay as replay_module
from sinks.delivery.deliverer import Deliverer
from sinks.replay import DeadLetter, replay

from .conftest import attribution


def letter(n: int, offset: int) -> DeadLetter:
    value = attribution(n).model_dump_json().encode()
    headers = [("error.reason", b"rejected"), ("source.topic", b"attributions"),
               ("source.partition", b"0"), ("source.offset", str(n).encode())]  # fmt: skip
    record = ConsumerRecord("refstream-dlq-crm", 0, offset, 0, 0, f"ref_{n}".encode(), value,
                            None, 0, len(value), headers)  # fmt: skip
    return DeadLetter(record, {k: v.decode() for k, v in headers})


class NoProducer:
    """Nothing is dead-lettered again here, so nothing is produced."""

    def __init__(self, **_: object) -> None:
        pass

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


async def test_a_replay_delivers_within_its_share_of_the_rate_limit(
    emulators, make_sink, monkeypatch
):
    letters = [letter(n, offset) for offset, n in enumerate(range(1, 6))]

    async def read(connection, topic, reason=None):
        return letters

    capacities: list[int] = []  # the limiter's, as each write asks for its places

    class Recorded(Deliverer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            acquire = self.limiter.acquire

            async def recording_acquire(count: int) -> None:
                capacities.append(self.limiter.capacity)
                await acquire(count)

            self.limiter.acquire = recording_acquire  # type: ignore[method-assign]

    monkeypatch.setattr(replay_module, "read_dead_letters", read)
    monkeypatch.setattr(replay_module, "AIOKafkaProducer", NoProducer)
    monkeypatch.setattr(replay_module, "Deliverer", Recorded)
    sink = await make_sink("crm", batch_size=1, limits=((100, 0.2),))  # a write each

    report = await replay(sink, "localhost:1", "refstream-dlq-crm", share=0.05)

    assert report.replayed == 5 and not report.dead_lettered_again
    assert set(emulators.hubspot.contacts) == {f"friend{n}@example.com" for n in range(1, 6)}
    assert capacities == [5] * 5  # 5 % of the 100 a window, from the first write on
