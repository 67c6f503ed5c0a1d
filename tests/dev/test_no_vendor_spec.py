"""HubSpot's machine-readable specs are proprietary (vendor-specs/README.md): no file in the
repository may carry their text. The markers are a distinctive phrase of the contacts spec's
``info.description`` and extension keys HubSpot's specs use and the project's own does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKERS = (
    "core building blocks support custom properties, store critical information",
    "x-hubspot-product-tier-requirements",
    "x-hubspot-available-client-libraries",
)


def repository_files() -> list[Path]:
    """Tracked files and untracked ones that are not ignored (what a commit could add)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return [ROOT / name for name in listed.split("\0") if name]


def test_no_file_carries_hubspots_proprietary_spec_text():
    here = Path(__file__).resolve()
    carriers = []
    for path in repository_files():
        if path == here or not path.is_file():
            continue
        text = path.read_bytes().decode("utf-8", errors="replace").lower()
        carriers += [f"{path.relative_to(ROOT)}: {m}" for m in MARKERS if m in text]
    assert carriers == []


def test_the_check_finds_the_text_where_it_is(tmp_path):
    """The markers match the spec's text as it appears in its JSON (not a test that cannot
    fail): a file carrying the phrase is found."""
    sample = tmp_path / "spec.json"
    sample.write_text('{"info": {"x-hubspot-product-tier-requirements": {}}}')
    assert any(m in sample.read_text().lower() for m in MARKERS)
