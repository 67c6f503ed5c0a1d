"""Shared by the gateway's integration tests: start a gateway on a test's pipeline, send
signed requests to it, read what it published."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson

from dev.gateway import GatewayProcess, SignedRequest
from dev.kafka_io import create_topics, read_topic

GATEWAY_DLQ_VAR = "REFSTREAM_TOPIC_DLQ_GATEWAY"


async def start_gateway(pipeline, **env: str) -> GatewayProcess:
    """A gateway publishing to the pipeline's topics, with its own DLQ topic."""
    dlq = pipeline.topics.setdefault("dlq_gateway", f"dlq-gateway-{uuid.uuid4().hex[:8]}")
    pipeline.env[GATEWAY_DLQ_VAR] = dlq
    await create_topics(pipeline.servers, [dlq], partitions=1)
    gateway = GatewayProcess({**pipeline.env, **env}, pipeline.workdir)
    pipeline.workers.append(gateway)  # stopped (and its log shown) with the workers
    gateway.start()
    await asyncio.to_thread(gateway.wait_ready)
    return gateway


async def send(
    session: aiohttp.ClientSession, gateway: GatewayProcess, request: SignedRequest,
    timeout: float = 10.0,
) -> tuple[int, dict]:  # fmt: skip
    async with session.post(
        gateway.url + request.path, data=request.body, headers=request.headers,
        timeout=aiohttp.ClientTimeout(total=timeout),
    ) as response:  # fmt: skip
        return response.status, orjson.loads(await response.read())


async def published(pipeline, topic: str, count: int, timeout: float = 30.0) -> list:
    return await read_topic(
        pipeline.servers, pipeline.topics[topic], until=lambda r: len(r) >= count, idle=1.0,
        timeout=timeout,
    )  # fmt: skip
