"""A proof as data and as text: the JSON of a :class:`~sagaguard.testing.harness.Report`,
its Markdown, and the summary rows the terminal table shows. Pure functions.

The JSON (``format: sagaguard-proof/1``) carries every scenario with its faults, the end the
plan expects (the plan's own ``expected`` shape), the end observed, each failure and the
command that replays it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sagaguard.planner.testplan import Injection
from sagaguard.testing.harness import Report
from sagaguard.testing.scenario import Observed, ScenarioKind, ScenarioResult

__all__ = [
    "PROOF_FORMAT",
    "Finding",
    "describe_faults",
    "findings",
    "kind_rows",
    "render_markdown",
    "to_json",
]

PROOF_FORMAT = "sagaguard-proof/1"

KIND_LABELS = {
    ScenarioKind.PLAN: "the plan's tests",
    ScenarioKind.CRASH: "a crash at a fault point",
    ScenarioKind.TIMEOUT: "a timeout after the effect",
    ScenarioKind.DUPLICATE: "the same operation_id again",
    ScenarioKind.RACE: "two owners racing",
    ScenarioKind.COMPENSATION: "a compensation failing",
    ScenarioKind.VERIFY: "verify failing",
    ScenarioKind.PIVOT: "a failure after the pivot",
    ScenarioKind.BEST_EFFORT: "a best-effort step failing",
    ScenarioKind.EXPLORE: "random schedules",
}


def describe_faults(faults: tuple[Injection, ...]) -> str:
    """The faults of a schedule in one line (``none`` for a run left alone)."""
    if not faults:
        return "none"
    return "; ".join(
        f"{f.fault.value} at {f.point.value} of {f.step}"
        + (" (every attempt)" if f.attempt is None else f" (attempt {f.attempt})")
        for f in faults
    )


def kind_rows(report: Report) -> list[tuple[str, int, int, int]]:
    """(what, scenarios, passed, failed) per kind of scenario, in the matrix's order."""
    total: Counter[ScenarioKind] = Counter()
    failed: Counter[ScenarioKind] = Counter()
    for result in report.results:
        total[result.scenario.kind] += 1
        failed[result.scenario.kind] += not result.passed
    return [
        (KIND_LABELS[kind], total[kind], total[kind] - failed[kind], failed[kind])
        for kind in ScenarioKind
        if total[kind]
    ]


@dataclass(frozen=True, slots=True)
class Finding:
    """One kind of failure (a check on a step), the scenarios that show it, one example."""

    check: str
    step: str | None
    scenarios: int
    example: str
    first: str
    """The id of the first scenario that shows it: the one to replay."""


def findings(report: Report) -> list[Finding]:
    """The failures grouped by check and step, the most widespread first."""
    seen: dict[tuple[str, str | None], list[tuple[str, str]]] = {}
    for result in report.failed:
        for failure in result.failures:
            found = seen.setdefault((failure.check, failure.step), [])
            if not found or found[-1][0] != result.scenario.id:
                found.append((result.scenario.id, failure.message))
    rows = [
        Finding(check, step, len(hits), hits[0][1], hits[0][0])
        for (check, step), hits in seen.items()
    ]
    return sorted(rows, key=lambda f: -f.scenarios)


def _observed(observed: Observed | None) -> dict[str, Any] | None:
    if observed is None:
        return None
    return {
        "run_status": observed.run_status.value,
        "steps": [
            {
                "step": step_id,
                "status": o.status.value,
                "calls": o.calls,
                "verifies": o.verifies,
                "compensations": o.compensations,
            }
            for step_id, o in observed.steps.items()
        ],
        "alerts": [
            {"kind": kind.value, "step": step, "route": route}
            for kind, step, route in observed.alerts
        ],
    }


def _result(report: Report, result: ScenarioResult) -> dict[str, Any]:
    scenario = result.scenario
    return {
        "id": scenario.id,
        "kind": scenario.kind.value,
        "title": scenario.title,
        "step": scenario.step,
        "faults": [f.model_dump(mode="json") for f in scenario.faults],
        "takeover_at": (
            None
            if scenario.takeover_at is None
            else {"step": scenario.takeover_at[0], "point": scenario.takeover_at[1].value}
        ),
        "duplicate": scenario.duplicate.value if scenario.duplicate else None,
        "expected": scenario.expected.model_dump(mode="json"),
        "observed": _observed(result.observed),
        "passed": result.passed,
        "failures": [
            {"check": f.check, "step": f.step, "message": f.message} for f in result.failures
        ],
        "replay": report.replay(result),
        "restarts": result.restarts,
        "seconds": round(result.seconds, 6),
    }


def to_json(report: Report) -> dict[str, Any]:
    """The proof as a JSON-ready dict."""
    return {
        "format": PROOF_FORMAT,
        "target": report.target,
        "mode": report.mode,
        "process": report.plan.process.name,
        "version": report.plan.process.version,
        "db": report.db,
        "seed": report.seed,
        "explore": report.explored,
        "passed": report.passed,
        "counts": {
            "scenarios": len(report.results),
            "passed": sum(r.passed for r in report.results),
            "failed": sum(not r.passed for r in report.results),
        },
        "seconds": round(report.seconds, 3),
        "scenarios": [_result(report, r) for r in report.results],
        "shrunk": [
            {
                "id": s.original.id,
                "faults": [f.model_dump(mode="json") for f in s.original.faults],
                "minimal": [f.model_dump(mode="json") for f in s.result.scenario.faults],
                "tries": s.tries,
                "failures": [
                    {"check": f.check, "step": f.step, "message": f.message}
                    for f in s.result.failures
                ],
            }
            for s in report.shrunk
        ],
        "kept_journals": list(report.kept),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    """The proof as Markdown: the verdict, the matrix by kind, then every failure in full."""
    failed = report.failed
    verdict = (
        f"**{len(report.results)} scenarios, all passed**"
        if report.passed
        else f"**{len(failed)} of {len(report.results)} scenarios failed**"
    )
    lines = [
        f"# Proof: {report.plan.process.name}",
        "",
        f"{verdict} (seed {report.seed}, {report.db}, {report.seconds:.2f}s). Target "
        f"`{report.target}` ({'its step code' if report.mode == 'code' else 'simulated providers'}"
        "): every scenario ran on the real engine in a fresh journal, and was checked against "
        "the invariants of DESIGN.md section 4 and the end the plan expects.",
        "",
        "| scenarios | count | passed | failed |",
        "| --- | ---: | ---: | ---: |",
    ]
    lines += [f"| {what} | {n} | {ok} | {bad} |" for what, n, ok, bad in kind_rows(report)]
    if failed:
        lines += [
            "",
            "## Findings",
            "",
            "| check | step | scenarios | e.g. |",
            "| --- | --- | ---: | --- |",
        ]
        lines += [
            f"| {f.check} | {f'`{f.step}`' if f.step else '—'} | {f.scenarios} | "
            f"{_cell(f.example)} (`{f.first}`) |"
            for f in findings(report)
        ]
        lines += ["", "## Failures", ""]
        for result in failed:
            scenario = result.scenario
            lines += [
                f"### `{scenario.id}`",
                "",
                _cell(scenario.title),
                "",
                f"- **Faults:** {_cell(describe_faults(scenario.faults))}",
                *[f"- {_cell(str(f))}" for f in result.failures],
                "",
                "```console",
                report.replay(result),
                "```",
                "",
            ]
    lines += [
        "",
        "## Scenarios",
        "",
        "| id | what | faults | result |",
        "| --- | --- | --- | --- |",
    ]
    for result in report.results:
        scenario = result.scenario
        outcome = "passed" if result.passed else f"**failed** ({len(result.failures)})"
        lines.append(
            f"| `{scenario.id}` | {KIND_LABELS[scenario.kind]} | "
            f"{_cell(describe_faults(scenario.faults))} | {outcome} |"
        )
    return "\n".join(lines).rstrip() + "\n"
