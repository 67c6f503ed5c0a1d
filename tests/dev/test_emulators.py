"""The emulators refuse what the vendors would refuse: they are a fair test of the sinks."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from dev.emulators import running_emulators


async def test_requests_are_checked_against_the_published_specs_and_auth():
    async with running_emulators() as emulators, aiohttp.ClientSession() as http:
        url = emulators.urls["hubspot"] + "/crm/v3/objects/contacts/batch/upsert"
        good = {"Authorization": f"Bearer {emulators.hubspot.token}",
                "Content-Type": "application/json"}  # fmt: skip
        body = {"inputs": [{"idProperty": "email", "id": "a@b.io", "properties": {"n": 1}}]}
        async with http.post(url, data=orjson.dumps(body), headers=good) as response:
            assert response.status == 400
        assert "not of type 'string'" in emulators.hubspot.invalid_requests[0]
        bad_auth = {**good, "Authorization": "Bearer wrong"}
        async with http.post(url, data=b"{}", headers=bad_auth) as response:
            assert response.status == 401
        assert emulators.hubspot.contacts == {}

        url = emulators.urls["klaviyo"] + "/api/events"
        headers = {
            "Authorization": f"Klaviyo-API-Key {emulators.klaviyo.api_key}",
            "Content-Type": "application/vnd.api+json",
        }  # no revision header
        async with http.post(url, data=b'{"data": {}}', headers=headers) as response:
            assert response.status == 400
        assert len(emulators.klaviyo.invalid_requests) == 1
        assert emulators.klaviyo.response_violations == []


async def test_faults_are_set_and_cleared_over_http():
    async with running_emulators() as emulators, aiohttp.ClientSession() as http:
        control = emulators.urls["mixpanel"] + "/_control/faults"
        async with http.post(control, json={"down": True, "latency": 0.01}) as response:
            assert response.status == 200
        async with http.post(emulators.urls["mixpanel"] + "/import", data=b"[]") as response:
            assert response.status == 503
        async with http.post(control, json={}) as response:
            assert response.status == 200
        async with http.get(emulators.urls["mixpanel"] + "/_control/state") as response:
            state = await response.json()
        assert state["status_counts"] == {"503": 1}
        assert emulators.mixpanel.faults.down is False


async def test_every_nth_request_fails_and_never_two_in_a_row():
    async with running_emulators(["analytics"]) as emulators, aiohttp.ClientSession() as http:
        control = emulators.urls["mixpanel"] + "/_control/faults"
        async with http.post(control, json={"status_5xx_every": 3}) as response:
            assert response.status == 200
        statuses = []
        for _ in range(7):
            async with http.post(emulators.urls["mixpanel"] + "/import", data=b"[]") as answer:
                statuses.append(answer.status)
        assert [status == 500 for status in statuses] == [False, False, True] * 2 + [False]


async def test_the_vendor_rate_limit_is_enforced_in_a_sliding_window():
    async with running_emulators() as emulators, aiohttp.ClientSession() as http:
        hubspot = emulators.hubspot
        hubspot.limits = ((3, 60.0),)
        url = emulators.urls["hubspot"] + "/crm/v3/objects/contacts/batch/upsert"
        headers = {"Authorization": f"Bearer {hubspot.token}", "Content-Type": "application/json"}
        statuses = []
        for n in range(5):
            body = {"inputs": [{"idProperty": "email", "id": f"{n}@b.io", "properties": {}}]}
            async with http.post(url, data=orjson.dumps(body), headers=headers) as response:
                statuses.append(response.status)
                retry_after = response.headers.get("Retry-After")
        assert statuses == [200, 200, 200, 429, 429]
        assert retry_after == "60"
        assert hubspot.over_limit == 2
        assert len(hubspot.contacts) == 3


async def test_every_rate_limit_holds_and_retry_after_says_when_the_request_fits():
    async with running_emulators() as emulators, aiohttp.ClientSession() as http:
        hubspot = emulators.hubspot
        hubspot.limits = ((2, 0.3), (3, 60.0))  # a burst and a steady limit, like Klaviyo's
        url = emulators.urls["hubspot"] + "/crm/v3/objects/contacts/batch/upsert"
        headers = {"Authorization": f"Bearer {hubspot.token}", "Content-Type": "application/json"}

        async def upsert(n: int) -> tuple[int, str | None]:
            body = {"inputs": [{"idProperty": "email", "id": f"{n}@b.io", "properties": {}}]}
            async with http.post(url, data=orjson.dumps(body), headers=headers) as response:
                return response.status, response.headers.get("Retry-After")

        answers = [await upsert(n) for n in range(3)]
        await asyncio.sleep(0.35)
        answers += [await upsert(n) for n in range(3, 5)]

        assert [status for status, _ in answers] == [200, 200, 429, 200, 429]
        assert answers[2][1] == "1"  # whole seconds: the burst window frees first
        assert answers[4][1] == "60"  # then only the steady one is full
        assert hubspot.over_limit == 2
        assert len(hubspot.contacts) == 3


async def test_hubspot_counts_requests_per_app_whichever_endpoint():
    """HubSpot's limit is per app: a property, a contacts and a deals call share it."""
    async with running_emulators() as emulators, aiohttp.ClientSession() as http:
        hubspot, base = emulators.hubspot, emulators.urls["hubspot"]
        hubspot.limits = ((3, 60.0),)
        headers = {"Authorization": f"Bearer {hubspot.token}", "Content-Type": "application/json"}
        unique = {
            "name": "refstream_order_id",
            "label": "Order",
            "type": "string",
            "fieldType": "text",
            "groupName": "dealinformation",
            "hasUniqueValue": True,
        }
        calls = [
            ("/crm/v3/properties/deals", unique),
            ("/crm/v3/objects/contacts/batch/upsert",
             {"inputs": [{"idProperty": "email", "id": "a@b.io", "properties": {}}]}),
            ("/crm/v3/objects/deals/batch/upsert",
             {"inputs": [{"idProperty": "refstream_order_id", "id": "o1", "properties": {}}]}),
            ("/crm/v4/associations/deals/contacts/batch/create", {"inputs": []}),
        ]  # fmt: skip
        statuses = []
        for path, body in calls:
            async with http.post(base + path, data=orjson.dumps(body), headers=headers) as answer:
                statuses.append(answer.status)
        assert statuses == [201, 200, 200, 429]
        assert hubspot.invalid_requests == [] and hubspot.response_violations == []
