"""Every consumer of the worker waits at most FETCH_MAX_WAIT_MS for a fetch
(streams/fetch_wait.py: a fetch covering only quiet partitions holds up the busy ones)."""

from streams.app import app, settings
from streams.fetch_wait import FETCH_MAX_WAIT_MS, install
from streams.group_consumer import FETCH_MIN_BYTES, group_consumer


async def test_fausts_worker_consumer_waits_at_most_the_bound() -> None:
    consumer = app.consumer._thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS < 1500  # Faust's own: 1500
    wrapper = type(app.consumer._thread)._create_worker_consumer
    install()  # installed again (a second app import): the same wrapper, not one around it
    assert type(app.consumer._thread)._create_worker_consumer is wrapper


async def test_the_plain_consumer_groups_wait_at_most_the_bound() -> None:
    consumer = group_consumer(settings, ["t"], "g", 10)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
    assert consumer._fetch_min_bytes == FETCH_MIN_BYTES  # a thin stream: fewer, fuller fetches
