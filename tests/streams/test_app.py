"""The app's producers: one per writer (README, performance)."""

from agents.join import STAGES
from streams.app import producer, producers


def test_every_writer_sends_through_a_producer_of_its_own() -> None:
    """aiokafka keeps one produce request in flight per connection; writers sharing a
    producer would wait for each other's acknowledgements."""
    writers = [producer("ingest"), *(stage.producer for stage in STAGES.values())]
    assert len({id(each) for each in writers}) == len(STAGES) + 1
    assert producer("ingest") is writers[0]  # asked again, the same one
    assert all(any(each is known for known in producers()) for each in writers)
