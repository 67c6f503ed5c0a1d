"""Writes the JSON Schema of each input event to ``schemas/json/`` (``refstream schemas``)."""

from __future__ import annotations

from pathlib import Path

import orjson

from schemas.events import OrderCompleted, OrderRefunded, ReferralCreated, SignupCompleted

__all__ = ["SCHEMA_DIR", "export_schemas", "render_schemas"]

SCHEMA_DIR = Path(__file__).parent / "json"
MODELS = {
    "referral.created": ReferralCreated,
    "signup.completed": SignupCompleted,
    "order.completed": OrderCompleted,
    "order.refunded": OrderRefunded,
}


def render_schemas() -> dict[str, bytes]:
    """File name → JSON Schema bytes, as validated on input (``mode="validation"``)."""
    return {
        f"{name}.schema.json": orjson.dumps(
            model.model_json_schema(mode="validation"),
            option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE,
        )
        for name, model in MODELS.items()
    }


def export_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render_schemas().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in export_schemas():
        print(path)
