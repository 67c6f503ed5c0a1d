"""``python -m tests.integration.slow_seek worker``: a worker made to hit, on every start
after a ``kill -9``, the Faust race :func:`streams.app._hold_records_until_seeked` guards.

After a rebalance Faust resumes the stream partitions, seeks them to their committed
offsets, and only then empties the stream queues. Records queued in that window, while a
stage is busy with a batch, were emptied out while the consumer's position had moved past
them. Here the seek first waits :data:`DELAY` (about 200 ms on Tansu), and the join stages
take no batch before the first seek is over, as if busy with one: the records fetched
meanwhile are then still queued when Faust empties the queues.
"""

import asyncio
import runpy

from faust.transport.consumer import Consumer

from agents import join

DELAY = 2.0
_perform_seek = Consumer.perform_seek
_run = join._run
_seeked = False


async def _slow_perform_seek(self: Consumer) -> None:
    global _seeked
    await asyncio.sleep(DELAY)
    await _perform_seek(self)
    _seeked = True


async def _run_once_seeked(*args: object) -> None:
    while not _seeked:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.1)  # Faust empties the queues right after the seek
    await _run(*args)


Consumer.perform_seek = _slow_perform_seek  # type: ignore[method-assign]
join._run = _run_once_seeked
runpy.run_module("streams", run_name="__main__", alter_sys=True)
