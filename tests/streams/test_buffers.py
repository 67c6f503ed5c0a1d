"""What a worker buffers ahead of its stage agents: a few envelopes (streams/topics.py)."""

from __future__ import annotations

from agents.join import STAGES  # noqa: F401  (declares the stage agents)
from streams.app import app
from streams.topics import STAGE_BUFFER_ENVELOPES, STAGE_TOPICS


def test_each_stage_agent_buffers_a_few_envelopes() -> None:
    stage_agents = {
        topic: agent
        for agent in app.agents.values()
        for topic in agent.channel.topics
        if topic in STAGE_TOPICS.values()
    }
    assert set(stage_agents) == set(STAGE_TOPICS.values())
    for agent in stage_agents.values():
        stream = agent.channel.clone(is_iterator=True)  # what the agent's stream reads
        assert stream.queue.maxsize == STAGE_BUFFER_ENVELOPES
    assert app.conf.stream_buffer_maxsize > STAGE_BUFFER_ENVELOPES
