"""Faust's floor: an agent that only iterates over the records and parses each one.

Run as ``python -m bench.floor worker`` with ``BENCH_TOPIC``, ``BENCH_COUNT`` and
``BENCH_RESULT`` set; it writes the wall-clock time of the first and the last record to
``BENCH_RESULT`` once ``BENCH_COUNT`` records were parsed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import faust
import orjson

from streams.app import faust_options, tune_gc
from streams.settings import get_settings

settings = get_settings()
app = faust.App(f"{settings.app_id}-floor", **faust_options(settings))
topic = app.topic(os.environ["BENCH_TOPIC"], value_serializer="raw", key_serializer="raw")
WANT = int(os.environ["BENCH_COUNT"])


@app.agent(topic)
async def parse(stream):
    count, first = 0, None
    async for value in stream:
        orjson.loads(value)
        count += 1
        if first is None:
            first = time.time()
        if count == WANT:
            result = {"first": first, "last": time.time(), "count": count}
            Path(os.environ["BENCH_RESULT"]).write_bytes(orjson.dumps(result))


if __name__ == "__main__":
    tune_gc()  # as the worker does, so the ratio compares like with like
    app.main()
