"""Render every example spec to docs/examples/ and refresh the checkout golden files.

    .venv/bin/python scripts/render_examples.py          # write the files
    .venv/bin/python scripts/render_examples.py --check  # exit 1 if any file is stale

Run it after changing the planner or a renderer, review the diff, and commit the output:
docs/examples/<name>.md, .json and .html for each examples/<name>.yaml and each coded saga
listed in CODED, an index at docs/examples/README.md, and tests/golden/checkout.md and
checkout.json, which the golden tests compare against.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sagaguard import load_spec
from sagaguard.planner import Plan, plan
from sagaguard.planner.render import Format, render
from sagaguard.planner.render.labels import count_text
from sagaguard.planner.render.view import severity_counts
from sagaguard.targets import load_bound

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs" / "examples"
GOLDEN = ROOT / "tests" / "golden"
GOLDEN_EXAMPLE = "checkout"
SUFFIXES = {Format.MARKDOWN: "md", Format.JSON: "json", Format.HTML: "html"}
CODED = ("signup_saga",)
"""Example modules under examples/ that define `saga` with the decorator API."""


def outputs() -> dict[Path, str]:
    """Every file this script writes, with its expected content."""
    files: dict[Path, str] = {}
    plans: dict[str, Plan] = {}
    for spec in sorted(EXAMPLES.glob("*.yaml")):
        plans[spec.stem] = plan(load_spec(spec))
    if str(EXAMPLES) not in sys.path:
        sys.path.insert(0, str(EXAMPLES))
    for module in CODED:
        process, verify_bound = load_bound(f"{module}:saga")
        plans[module] = plan(process, verify_bound=verify_bound)
    for name, process_plan in plans.items():
        for fmt, suffix in SUFFIXES.items():
            files[DOCS / f"{name}.{suffix}"] = render(process_plan, fmt)
    golden = plans[GOLDEN_EXAMPLE]
    files[GOLDEN / f"{GOLDEN_EXAMPLE}.md"] = render(golden, Format.MARKDOWN)
    files[GOLDEN / f"{GOLDEN_EXAMPLE}.json"] = render(golden, Format.JSON)
    files[DOCS / "README.md"] = _index(plans)
    return files


def _index(plans: dict[str, Plan]) -> str:
    lines = [
        "# Example recovery plans",
        "",
        "Rendered from the specs and the coded saga in [`examples/`](../../examples) by "
        "`scripts/render_examples.py`; do not edit by hand.",
        "",
        "| example | steps | state store | findings | plan |",
        "|---|---|---|---|---|",
    ]
    for name, process_plan in plans.items():
        counts = severity_counts(process_plan)
        found = ", ".join(count_text(sev, n) for sev, n in counts) or "none"
        links = " · ".join(f"[{s}]({name}.{s})" for s in SUFFIXES.values())
        source = f"{name}.py" if name in CODED else f"{name}.yaml"
        lines.append(
            f"| [`{name}`](../../examples/{source}) | {len(process_plan.steps)} "
            f"| `{process_plan.process.state_store.value}` | {found} | {links} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check``, compare) every rendered example; 1 when something is stale."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    args = parser.parse_args(argv)
    stale: list[Path] = []
    expected = outputs()
    for path, text in expected.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "stale" if args.check else "wrote"
        print(f"{verb}: {path.relative_to(ROOT)}")
    if not stale:
        print(f"up to date: {len(expected)} files")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
