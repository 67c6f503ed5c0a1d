"""Operational ``refstream`` commands besides ``worker`` (Faust app commands)."""

from __future__ import annotations

from faust.cli import option

from sinks.replay import REPLAY_SHARE
from streams.app import app, settings

__all__ = [
    "acls", "dlq_list", "dlq_replay", "gateway_dlq_list", "gateway_dlq_replay", "generate",
    "lag_exporter", "schemas",
]  # fmt: skip

SINK = option("--sink", required=True, help="Sink name: crm, email or analytics.")
REASON = option("--reason", default=None, help="Only records with this error.reason.")


@app.command()
async def schemas(self) -> None:
    """Export the JSON Schema of each input event to schemas/json/."""
    from schemas.export import export_schemas

    for path in export_schemas():
        self.say(str(path))


@app.command(
    option("--principal", default="User:refstream", help="The principal the worker runs as.")
)
async def acls(self, principal: str) -> None:
    """Print the kafka-acls.sh lines that grant a worker of these settings what it needs."""
    from streams.acls import required_acls

    for acl in required_acls(settings):
        self.say(acl.command(principal))


@app.command(
    option("--journeys", type=int, default=200, help="Referral journeys to generate."),
    option("--seed", type=int, default=7, help="Random seed (same seed, same events)."),
    option("--invalid", type=int, default=5, help="Invalid records to mix in."),
    option("--replay", is_flag=True, default=False,
           help="Same seed, same event ids: send a run again (the pipeline drops them as "
                "duplicates). Without it, every run's ids are fresh."),
)  # fmt: skip
async def generate(self, journeys: int, seed: int, invalid: int, replay: bool) -> None:
    """Produce a realistic, shuffled workload onto the input topics."""
    import secrets

    from dev.generator import Workload
    from dev.kafka_io import produce

    run = "" if replay else secrets.token_hex(4)
    workload = Workload.build(journeys=journeys, seed=seed, invalid=invalid, run=run)
    t = settings.topics
    names = {"referrals": t.referrals, "signups": t.signups, "orders": t.orders}
    sent = await produce(workload.records, settings.kafka, names)
    ids = "replayed ids" if replay else f"ids of run {run}"
    self.say(f"sent {sent} records ({journeys} journeys, {invalid} invalid, {ids})")


@app.command(
    option("--host", default="0.0.0.0", help="Address to serve /metrics on."),
    option("--port", type=int, default=6068, help="Port to serve /metrics on."),
)
async def lag_exporter(self, host: str, port: int) -> None:
    """Serve every consumer group's lag, read from the broker, on /metrics (no worker needed)."""
    from streams.lag_exporter import serve

    await serve(settings, host, port)


@app.command(SINK, REASON)
async def dlq_list(self, sink: str, reason: str | None) -> None:
    """List a sink's dead letters: counts by reason, then one line per record."""
    from collections import Counter

    from sinks.replay import read_dead_letters

    topic = settings.sink_dlq(sink)
    letters = await read_dead_letters(settings.kafka, topic, reason)
    counts = Counter(letter.reason for letter in letters)
    self.say(f"{topic}: {len(letters)} records {dict(counts)}")
    for letter in letters:
        h = letter.headers
        self.say(
            f"  offset={letter.record.offset} reason={letter.reason} "
            f"status={h.get('error.http_status', '')} attempts={h.get('error.attempts', '')} "
            f"key={(letter.record.key or b'').decode()} "
            f"message={h.get('error.message', '')[:120]!r}"
        )


@app.command(
    SINK, REASON,
    option("--rate-share", type=float, default=REPLAY_SHARE, show_default=True,
           help="Of the vendor's rate limits, the part the replay uses (0 < share <= 1)."),
)  # fmt: skip
async def dlq_replay(self, sink: str, reason: str | None, rate_share: float) -> None:
    """Deliver a sink's dead letters again (all, or one reason); ids are kept."""
    from sinks.registry import build_sinks
    from sinks.replay import replay

    if not 0 < rate_share <= 1:
        raise SystemExit(f"--rate-share must be in (0, 1], not {rate_share}")
    (target,) = build_sinks((sink,))
    topic = settings.sink_dlq(sink)
    report = await replay(
        target, settings.kafka, topic, reason, settings.topics.advocate_totals, rate_share
    )
    again = sum(report.dead_lettered_again.values())
    self.say(
        f"replayed {report.replayed} records from {topic}: "
        f"{report.replayed - again} delivered, {again} dead-lettered again "
        f"{dict(report.dead_lettered_again)}"
    )


@app.command(REASON)
async def gateway_dlq_list(self, reason: str | None) -> None:
    """List the gateway's dead-lettered webhooks: counts by reason, then one line each."""
    from collections import Counter

    from gateway.dlq import list_dead_letters

    letters = await list_dead_letters(settings, reason)
    counts = Counter(letter.reason for letter in letters)
    self.say(f"{settings.topics.dlq_gateway}: {len(letters)} records {dict(counts)}")
    for letter in letters:
        h = letter.headers
        self.say(
            f"  offset={letter.record.offset} reason={letter.reason} "
            f"source={h.get('gateway.source', '')} event={h.get('gateway.vendor_event', '')} "
            f"delivery={h.get('gateway.delivery_id', '')} at={h.get('gateway.received_at', '')} "
            f"message={h.get('error.message', '')[:120]!r}"
        )


@app.command(REASON)
async def gateway_dlq_replay(self, reason: str | None) -> None:
    """Map the gateway's dead letters again (all, or one reason) and publish what maps now;
    the event ids are those of the first delivery, so the join drops any repeat."""
    from gateway.dlq import list_dead_letters, replay_dead_letters
    from gateway.settings import load_gateway_settings

    letters = await list_dead_letters(settings, reason)
    outcomes = await replay_dead_letters(settings, load_gateway_settings(False), letters)
    self.say(
        f"replayed {len(letters)} records from {settings.topics.dlq_gateway}: {dict(outcomes)}"
    )
