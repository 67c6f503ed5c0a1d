"""Operational ``refstream`` commands besides ``worker`` (Faust app commands)."""

from __future__ import annotations

from faust.cli import option

from streams.app import app, settings

__all__ = ["generate", "schemas"]


@app.command()
async def schemas(self) -> None:
    """Export the JSON Schema of each input event to schemas/json/."""
    from schemas.export import export_schemas

    for path in export_schemas():
        self.say(str(path))


@app.command(
    option("--journeys", type=int, default=200, help="Referral journeys to generate."),
    option("--seed", type=int, default=7, help="Random seed (same seed, same events)."),
    option("--invalid", type=int, default=5, help="Invalid records to mix in."),
)
async def generate(self, journeys: int, seed: int, invalid: int) -> None:
    """Produce a realistic, shuffled workload onto the input topics."""
    from dev.generator import Workload
    from dev.kafka_io import produce

    workload = Workload.build(journeys=journeys, seed=seed, invalid=invalid)
    t = settings.topics
    names = {"referrals": t.referrals, "signups": t.signups, "orders": t.orders}
    sent = await produce(workload.records, settings.kafka_bootstrap_servers, names)
    self.say(f"sent {sent} records ({journeys} journeys, {invalid} invalid)")
