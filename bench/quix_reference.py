"""The peer: the same stateful work in Quix Streams (a count per referral in its state
store, one output per input). ``python -m bench.quix_reference`` with ``BENCH_TOPIC``,
``BENCH_OUTPUT``, ``BENCH_COUNT``, ``BENCH_RESULT``, ``KAFKA_BOOTSTRAP_SERVERS``."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import orjson
from quixstreams import Application, State

WANT = int(os.environ["BENCH_COUNT"])


def main() -> None:
    state_dir = tempfile.mkdtemp(prefix="quix-state-")
    app = Application(
        broker_address=os.environ["KAFKA_BOOTSTRAP_SERVERS"],
        consumer_group=f"quix-{os.getpid()}",
        auto_offset_reset="earliest",
        state_dir=state_dir,
        loglevel="WARNING",
        auto_create_topics=True,
    )
    source = app.topic(os.environ["BENCH_TOPIC"], value_deserializer="json")
    output = app.topic(os.environ["BENCH_OUTPUT"], value_serializer="json")
    progress = {"count": 0, "first": None}

    def count(value: dict, state: State) -> dict:
        seen = state.get("count", 0) + 1
        state.set("count", seen)
        return {"event_id": value.get("event_id"), "count": seen}

    def done(value: dict) -> None:
        progress["count"] += 1
        if progress["first"] is None:
            progress["first"] = time.time()
        if progress["count"] == WANT:
            result = {"first": progress["first"], "last": time.time(), "count": WANT}
            Path(os.environ["BENCH_RESULT"]).write_bytes(orjson.dumps(result))
            app.stop()

    sdf = app.dataframe(source)
    sdf = sdf.apply(count, stateful=True)
    sdf = sdf.to_topic(output)
    sdf.update(done)
    try:
        app.run()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
