"""Misconfiguration stops the gateway with one line naming the variable (gateway.md §2)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from gateway.settings import SECRET_SETTINGS, Identity, load_gateway_settings
from sinks.errors import ConfigurationError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("REFSTREAM_GATEWAY_"):
            monkeypatch.delenv(name)


def test_no_source_enabled_names_every_secret(monkeypatch):
    monkeypatch.setenv("REFSTREAM_GATEWAY_SHOPIFY_SECRET", "")
    with pytest.raises(ConfigurationError) as exc:
        load_gateway_settings()
    for name in SECRET_SETTINGS:
        assert f"REFSTREAM_GATEWAY_{name.upper()}" in str(exc.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [("REFSTREAM_GATEWAY_INTERNAL_SECRET", "short"), ("REFSTREAM_GATEWAY_IDENTITY", "cookie"),
     ("REFSTREAM_GATEWAY_PORT", "http"), ("REFSTREAM_GATEWAY_MAX_IN_FLIGHT", "0")],
)  # fmt: skip
def test_a_bad_value_names_its_variable(monkeypatch, variable, value):
    monkeypatch.setenv("REFSTREAM_GATEWAY_STRIPE_SECRET", "whsec_x")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError, match=variable):
        load_gateway_settings()


def test_one_secret_enables_and_defaults_hold(monkeypatch):
    monkeypatch.setenv("REFSTREAM_GATEWAY_REWARDFUL_SECRET", "rw")
    monkeypatch.setenv("REFSTREAM_GATEWAY_IDENTITY", " Platform ")
    settings = load_gateway_settings()
    assert settings.identity is Identity.PLATFORM
    assert (settings.port, settings.max_body_bytes, settings.ack_timeout_seconds) == (
        8088, 1_048_576, 3.0)  # fmt: skip
    assert "rw" not in repr(settings)


def test_refstream_gateway_refuses_to_start_in_one_line():
    env = {k: v for k, v in os.environ.items() if not k.startswith("REFSTREAM_GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; sys.argv = ['refstream', 'gateway'];"
         "from streams.app import main; main()"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("refstream: configuration error: no source is enabled")
    assert len(done.stderr.strip().splitlines()) == 1
