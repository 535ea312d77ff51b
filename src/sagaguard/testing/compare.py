"""How a run ended, read from its journal, its ledger of calls and its alerts; and whether
that is the end the plan promised.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from sagaguard.engine.alerts import Alert
from sagaguard.planner.testplan import Count, ExpectedState
from sagaguard.storage.base import RunSnapshot
from sagaguard.testing.ledger import LedgerEntry, LedgerKind
from sagaguard.testing.scenario import Failure, Observed, StepObservation
from sagaguard.vocabulary import AlertKind

__all__ = ["compare", "observe"]


def observe(
    snapshot: RunSnapshot, entries: Iterable[LedgerEntry], alerts: Iterable[Alert]
) -> Observed:
    """The end of the run: every step's status, its calls by kind, the alerts sent once each."""
    op = snapshot.run.operation_id
    made = Counter((e.step_id, e.kind) for e in entries if e.operation_id == op)
    seen: set[str] = set()
    sent = []
    for alert in sorted(alerts, key=lambda a: a.at):
        if alert.operation_id == op and alert.alert_id not in seen:
            seen.add(alert.alert_id)
            sent.append((alert.kind, alert.step_id, alert.route))
    return Observed(
        run_status=snapshot.run.status,
        steps={
            r.step_id: StepObservation(
                status=r.status,
                calls=made[(r.step_id, LedgerKind.CALL)],
                verifies=made[(r.step_id, LedgerKind.VERIFY)],
                compensations=made[(r.step_id, LedgerKind.COMPENSATE)],
            )
            for r in snapshot.steps
        },
        alerts=tuple(sent),
    )


def compare(expected: ExpectedState, observed: Observed, step_ids: Sequence[str]) -> list[Failure]:
    """Every field where the run's end differs from the promised one."""
    out: list[Failure] = []
    if observed.run_status is not expected.run_status:
        out.append(
            Failure(
                "expected",
                None,
                f"the run ended {observed.run_status.value}, the plan expects "
                f"{expected.run_status.value}",
            )
        )
    for step_id, want in expected.per_step(step_ids).items():
        got = observed.steps[step_id]
        if got.status is not want.status:
            out.append(
                Failure(
                    "expected",
                    step_id,
                    f"ended {got.status.value}, the plan expects {want.status.value}",
                )
            )
        for what, count, bound in (
            ("calls", got.calls, want.calls),
            ("verify calls", got.verifies, want.verifies),
            ("compensations", got.compensations, want.compensations),
        ):
            if not _within(count, bound):
                out.append(
                    Failure("expected", step_id, f"{count} {what}, the plan expects {_span(bound)}")
                )
    wanted: Counter[tuple[AlertKind, str | None, str | None]] = Counter(
        (a.kind, a.step, a.route) for a in expected.alerts
    )
    sent = Counter(observed.alerts)
    for alert, times in sorted((wanted - sent).items(), key=str):
        kind, step, route = alert
        out.append(
            Failure(
                "expected",
                step,
                f"no {kind.value} alert to {route or 'no route'}"
                + (f" ({times} missing)" if times > 1 else ""),
            )
        )
    for alert, times in sorted((sent - wanted).items(), key=str):
        kind, step, route = alert
        out.append(
            Failure(
                "expected",
                step,
                f"a {kind.value} alert to {route or 'no route'} the plan does not expect"
                + (f" ({times} of them)" if times > 1 else ""),
            )
        )
    return out


def _within(count: int, bound: Count) -> bool:
    return count >= bound.at_least and (bound.at_most is None or count <= bound.at_most)


def _span(bound: Count) -> str:
    if bound.at_most is None:
        return f"at least {bound.at_least}"
    if bound.at_most == bound.at_least:
        return str(bound.at_least)
    return f"{bound.at_least} to {bound.at_most}"
