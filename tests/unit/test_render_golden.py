"""Golden files: the checkout plan renders byte for byte as committed.

A change to the planner or a renderer that alters the checkout plan fails here until the
golden files are regenerated with ``scripts/render_examples.py`` and the diff is reviewed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sagaguard import load_spec
from sagaguard.planner import plan
from sagaguard.planner.render import render_json, render_markdown

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
HINT = (
    "the rendered checkout plan differs from {path}; if the change is intended, run "
    "`.venv/bin/python scripts/render_examples.py`, review the diff and commit it"
)


@pytest.mark.parametrize(
    ("name", "renderer"),
    [("checkout.md", render_markdown), ("checkout.json", render_json)],
    ids=["markdown", "json"],
)
def test_checkout_plan_matches_the_golden_file(name: str, renderer: object) -> None:
    """The checkout example renders exactly as the committed golden file."""
    assert callable(renderer)
    path = GOLDEN / name
    rendered = renderer(plan(load_spec(ROOT / "examples" / "checkout.yaml")))
    expected = path.read_text(encoding="utf-8")
    assert rendered == expected, HINT.format(path=path.relative_to(ROOT))
