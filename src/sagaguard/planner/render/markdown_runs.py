"""The Markdown of a plan's partial-failure tests and example states: runs of the process.

Each test reads as it always has (what to inject, how the run ends, what stays active, what
is compensated, who is waiting, the alerts) and adds how often each call, verify and
compensation runs; all of it read from the test's data, never re-derived.
"""

from __future__ import annotations

from collections.abc import Sequence

from sagaguard.planner.plan import Injection, JournalRow, PartialFailureTest, Plan
from sagaguard.planner.render.expectations import ExpectationView, expectation_view
from sagaguard.planner.render.labels import CATEGORY_LABELS, elide, words
from sagaguard.planner.render.markdown_text import (
    cell,
    code,
    inline,
    listed,
    section,
    table,
)
from sagaguard.planner.render.rollbacks import Rollbacks

__all__ = ["example_states_section", "tests_section"]


def tests_section(plan: Plan) -> list[str]:
    """Part 5: the partial-failure tests, a table then one block per test."""
    lines = section("tests")
    lines += [
        "Each test injects faults at the engine's fault points and expects the final state "
        "below, derived from the rulebook: every step's status, how often its call, verify "
        "and compensation run (`×3+`: at least 3, retried for as long as a time window "
        "lasts), and the alerts.",
        "",
    ]
    lines += table(
        ["id", "category", "step", "inject", "run ends as", "alerts"],
        (
            [
                code(t.id),
                CATEGORY_LABELS[t.category],
                code(t.step),
                cell("; ".join(_injection(i) for i in t.injection)),
                code(t.expected.run_status.value),
                cell(_alerts_text(t)),
            ]
            for t in plan.tests
        ),
    )
    rollbacks = Rollbacks.of(plan)
    for test in plan.tests:
        lines += ["", *_test_detail(plan, test, rollbacks)]
    return lines


def _injection(injection: Injection) -> str:
    attempt = "every attempt" if injection.attempt is None else f"attempt {injection.attempt}"
    return f"{injection.fault.value} {words(injection.point.value)} {injection.step} ({attempt})"


def _alerts_text(test: PartialFailureTest) -> str:
    alerts = test.expected.alerts
    if not alerts:
        return "none"
    return "; ".join(
        f"{a.kind.value} on {a.step} → {a.route or 'no route declared'}" for a in alerts
    )


def _test_detail(plan: Plan, test: PartialFailureTest, rollbacks: Rollbacks) -> list[str]:
    expected = test.expected
    view: ExpectationView = expectation_view(plan, expected, rollbacks)
    lines = [f"### `{test.id}`: {CATEGORY_LABELS[test.category]}", "", inline(test.scenario), ""]
    lines.append("- **Inject:** " + "; ".join(_injection(i) for i in test.injection))
    lines.append(f"- **Run ends as:** `{expected.run_status.value}`")
    lines.append(f"- **Still active:** {listed(view.active, empty='nothing')}")
    lines.append(f"- **Compensated (in order):** {listed(view.compensated, empty='nothing')}")
    lines.append(f"- **Waiting for a person:** {listed(view.waiting, empty='nothing')}")
    if view.failed.total:
        lines.append(f"- **Failed:** {listed(view.failed)}")
    if view.unknown.total:
        lines.append(f"- **Left unknown:** {listed(view.unknown)}")
    lines.append(f"- **Alerts:** {_alerts_text(test)}")
    shown, more = elide(view.calls)
    calls = "; ".join(shown) + (f"; and {more} more steps" if more else "")
    lines.append(f"- **Calls:** {calls or 'none'}")
    return lines


def example_states_section(plan: Plan) -> list[str]:
    """The most dangerous failure, as the journal before and after recovery."""
    states = plan.example_states
    lines = section("example-states")
    lines += [
        f"The most dangerous failure of this process ({states.impact}): {inline(states.scenario)}",
        "",
    ]
    lines += [f"**Before recovery** (run `{states.run_status_before.value}`):", ""]
    lines += _journal(states.before)
    lines += ["", f"**Recovery:** {inline(states.recovery)}", ""]
    lines += [f"**After recovery** (run `{states.run_status_after.value}`):", ""]
    lines += _journal(states.after)
    return lines


def _journal(rows: Sequence[JournalRow]) -> list[str]:
    return table(
        ["operation_id", "step_id", "status", "external id", "attempts", "reason"],
        (
            [
                code(r.operation_id),
                code(r.step_id),
                f"**{r.status.value}**",
                code(r.external_id) if r.external_id else "—",
                str(r.attempts),
                cell(r.reason),
            ]
            for r in rows
        ),
    )
