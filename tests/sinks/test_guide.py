"""docs/writing-a-sink.md: the worked example is the real module, and adding a sink really
is one module, its emulator and one registry line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sinks.registry import REGISTERED, sink_class, sink_names

ROOT = Path(__file__).parents[2]
PACKAGES = ("agents", "bench", "dev", "schemas", "sinks", "streams")


def test_the_guide_shows_the_sink_exactly_as_it_is():
    guide = (ROOT / "docs" / "writing-a-sink.md").read_text()
    source = (ROOT / "sinks" / "segment.py").read_text()
    assert f"```python\n{source}```" in guide
    assert '"sinks.segment:SegmentSink",' in guide
    assert "sinks.segment:SegmentSink" in REGISTERED


def mentions(pattern: re.Pattern[str]) -> set[str]:
    return {
        str(path.relative_to(ROOT))
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if pattern.search(path.read_text())
    }


@pytest.mark.parametrize("name", ["webhook", "segment"])
def test_a_sink_is_named_only_by_its_module_its_emulator_and_the_registry(name):
    """The sinks added through the registry: nothing shared had to learn their names."""
    cls = sink_class(name)
    module = cls.__module__.replace(".", "/") + ".py"
    emulator = cls.emulator.partition(":")[0].replace(".", "/") + ".py"
    prefix = cls.Settings.model_config["env_prefix"]
    pattern = re.compile(rf"{prefix}|\b{cls.__name__}\b|{emulator[:-3].replace('/', '.')}\b")
    assert mentions(pattern) <= {module, emulator, "sinks/registry.py"}
    assert name in sink_names()
