"""The OpenAPI document of the worker's advocate API, served at ``/openapi.json``."""

from __future__ import annotations

from typing import Any

__all__ = ["OPENAPI"]

_MONEY = {
    "type": "object",
    "description": "exact decimal strings by ISO 4217 currency",
    "additionalProperties": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"},
}
_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {"type": "string"},
        "parameter": {"type": "string", "description": "the query parameter at fault"},
        "advocate_id": {"type": "string"},
    },
}
_TIME = {"type": "string", "format": "date-time", "nullable": True}
_COUNT = {"type": "integer", "minimum": 0}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ADVOCATE = {
    "type": "object",
    "required": [
        "advocate_id", "advocate", "referrals", "signed_up", "converted", "orders", "revenue",
        "refunds", "net_revenue", "first_conversion", "last_conversion",
    ],
    "properties": {
        "advocate_id": {"type": "string"},
        "advocate": {
            "type": "object",
            "nullable": True,
            "properties": {
                "id": {"type": "string", "nullable": True},
                "email": {"type": "string", "nullable": True},
                "first_name": {"type": "string", "nullable": True},
                "last_name": {"type": "string", "nullable": True},
            },
        },
        "referrals": {**_COUNT, "description": "referrals the advocate made"},
        "signed_up": {**_COUNT, "description": "referred friends who signed up"},
        "converted": {**_COUNT, "description": "referrals with an attributed order"},
        "orders": {**_COUNT, "description": "attributed orders"},
        "revenue": {**_MONEY, "description": "attributed order amounts (gross)"},
        "refunds": {**_MONEY, "description": "refunded of those orders"},
        "net_revenue": {**_MONEY, "description": "revenue net of refunds"},
        "first_conversion": {**_TIME, "description": "earliest conversion of a referral"},
        "last_conversion": {**_TIME, "description": "latest conversion of a referral"},
    },
}  # fmt: skip
LEADER = {
    "type": "object",
    "required": ["rank", "advocate_id", "net_revenue", "revenue", "refunds", "converted"],
    "properties": {
        "rank": {"type": "integer", "minimum": 1},
        "advocate_id": {"type": "string"},
        "first_name": {"type": "string", "nullable": True},
        "net_revenue": {"type": "string"},
        "revenue": {"type": "string"},
        "refunds": {"type": "string"},
        "converted": _COUNT,
    },
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.0.3",
    "info": {
        "title": "refstream advocate API",
        "version": "1",
        "description": "Per-advocate referral results and the leaderboard by net revenue, "
        "from the advocate stage's state; any worker answers (it routes or merges).",
    },
    "paths": {
        "/advocates/top": {
            "get": {
                "operationId": "topAdvocates",
                "summary": "Leaderboard by net revenue in one currency, over all workers",
                "parameters": [
                    {
                        "name": "currency",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[A-Za-z]{3}$"},
                        "description": "ISO 4217 code",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
                    },
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["currency", "limit", "advocates"],
                            "properties": {
                                "currency": {"type": "string"},
                                "limit": {"type": "integer"},
                                "advocates": {"type": "array", "items": LEADER},
                            },
                        },
                        "the leaderboard",
                    ),
                    "400": _json(_ERROR, "a parameter is missing or wrong (named)"),
                    "503": _json(_ERROR, "a worker did not answer"),
                },
            }
        },
        "/advocates/{advocate_id}": {
            "get": {
                "operationId": "getAdvocate",
                "summary": "One advocate's referrals, conversions and money",
                "parameters": [
                    {
                        "name": "advocate_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "responses": {
                    "200": _json(ADVOCATE, "the advocate"),
                    "404": _json(_ERROR, "unknown advocate"),
                },
            }
        },
    },
}
