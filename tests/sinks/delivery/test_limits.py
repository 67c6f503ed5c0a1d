"""The policy's limits, applied by the delivery layer before any request: records and bytes
per request, bytes per record, repeats, and which rate limit a request spends."""

from __future__ import annotations

import orjson
from prometheus_client import REGISTRY

from sinks.base import Sink, WriteResult
from sinks.batch import Batch, Item
from sinks.delivery.deliverer import Deliverer
from sinks.delivery.policy import DeliveryPolicy
from streams.metrics import DLQ_REASONS

from ..conftest import RecordingDLQ, attribution, items


class Recorder(Sink):
    """Encodes each record as its campaign id; remembers every request body."""

    name = "recorder"

    def __init__(self, policy: DeliveryPolicy) -> None:
        super().__init__(settings=None)
        self.policy = policy
        self.bodies: list[bytes] = []

    def encode(self, item: Item) -> bytes:
        if item.event.campaign_id == "unmappable":
            raise ValueError("no mapping for this campaign")
        return orjson.dumps({"c": item.event.campaign_id})

    async def write(self, batch: Batch) -> WriteResult:
        self.bodies.append(b"[" + b",".join(batch.parts) + b"]")
        return WriteResult()


def campaigns(*sizes: int) -> Batch:
    return items(*(attribution(n, campaign_id="x" * size) for n, size in enumerate(sizes)))


async def test_requests_are_cut_by_bytes_as_well_as_records():
    policy = DeliveryPolicy(batch_size=100, max_request_bytes=1000, envelope_bytes=100)
    sink = Recorder(policy)
    await Deliverer(sink, RecordingDLQ("recorder")).deliver(campaigns(*[200] * 12))
    assert [len(body) for body in sink.bodies] == [837, 837, 837]  # 4 records of 208 bytes
    assert all(len(body) <= 1000 - 100 for body in sink.bodies)
    sink.bodies.clear()
    policy = DeliveryPolicy(batch_size=5, max_request_bytes=10**6)
    sink.policy = policy
    await Deliverer(sink, RecordingDLQ("recorder")).deliver(campaigns(*[10] * 12))
    assert [body.count(b"{") for body in sink.bodies] == [5, 5, 2]


async def test_an_oversized_or_unmappable_record_is_dead_lettered_and_the_rest_delivered():
    sink = Recorder(DeliveryPolicy(max_item_bytes=300))
    dlq = RecordingDLQ("recorder")
    batch = items(
        attribution(1), attribution(2, campaign_id="x" * 301),
        attribution(3, campaign_id="unmappable"), attribution(4),
    )  # fmt: skip
    await Deliverer(sink, dlq).deliver(batch)
    assert [body.count(b"{") for body in sink.bodies] == [2]
    reasons = {key: headers["error.reason"] for _, key, _, headers in dlq.sent}
    assert reasons == {b"ref_2": b"too_large", b"ref_3": b"unmappable"}
    message = dict(dlq.sent[1][3])["error.message"]
    assert message == b"ValueError: no mapping for this campaign"


async def test_a_record_repeated_in_one_delivery_is_sent_once():
    sink = Recorder(DeliveryPolicy())
    one, two = attribution(1), attribution(2)
    await Deliverer(sink, RecordingDLQ("recorder")).deliver(items(one, two, one, one))
    assert [body.count(b"{") for body in sink.bodies] == [2]


async def test_few_records_go_singly_and_batches_spend_the_bulk_limit():
    policy = DeliveryPolicy(
        batch_size=100, bulk_from=5, limits=((1000, 1.0),), bulk_limits=((7, 60.0),)
    )
    sink = Recorder(policy)
    deliverer = Deliverer(sink, RecordingDLQ("recorder"))
    await deliverer.deliver(campaigns(1, 1, 1, 1))
    assert [body.count(b"{") for body in sink.bodies] == [1, 1, 1, 1]
    await deliverer.deliver(campaigns(*[1] * 5))
    assert [body.count(b"{") for body in sink.bodies][4:] == [5]
    assert deliverer.limiter is not deliverer.bulk_limiter


class Picky(Recorder):
    """Has nothing to send for campaign ``skip``."""

    def accepts(self, item: Item) -> bool:
        return item.event.campaign_id != "skip"


async def test_a_batch_waits_for_the_bulk_limit_only_for_what_the_sink_would_take():
    """What the sink consumer collects for: of records fetched, the sink takes the share it
    took last time, and fewer than ``bulk_from`` go singly, on the single limit."""
    policy = DeliveryPolicy(
        batch_size=100, bulk_from=5, limits=((1000, 1.0),), bulk_limits=((1, 60.0),)
    )
    deliverer = Deliverer(Picky(policy), RecordingDLQ("recorder"))
    assert deliverer.delay(10) == 0.0
    mixed = [attribution(n, campaign_id="skip" if n % 2 else "c") for n in range(10)]
    await deliverer.deliver(items(*mixed))  # one bulk job of 5: the bulk minute is spent
    assert deliverer.delay(9) == 0.0  # about 4 taken: they go singly
    assert deliverer.delay(10) > 59  # 5 taken: a bulk job, the next in a minute


def test_every_dead_letter_reason_is_a_series_from_the_start():
    sink = Recorder(DeliveryPolicy())
    sink.name = "fresh"
    Deliverer(sink, RecordingDLQ("fresh"))
    for reason in (*DLQ_REASONS, "too_large", "unmappable"):
        value = REGISTRY.get_sample_value(
            "refstream_sink_dlq_total", {"sink": "fresh", "reason": reason}
        )
        assert value == 0.0, reason
