"""Say which broker the integration tests run on, in the header and again in the summary."""

from __future__ import annotations

import pytest

from tests.integration.brokers import broker_choice, broker_description


def pytest_report_header(config: pytest.Config) -> str:
    return f"broker: {broker_description(broker_choice())}"


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    terminalreporter.write_line(f"integration broker: {broker_description(broker_choice())}")
