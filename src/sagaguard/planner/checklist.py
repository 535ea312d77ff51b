"""Part 6 of the plan: the production-readiness checklist, tailored to the process.

Each item names the steps, ids, store and routes it is about. Engineering items come first
(ids ``E1``...), then operations (``O1``...). There are always at least eight, in both areas.
"""

from __future__ import annotations

import math

from sagaguard._legacy_rules import Decision, Situation, decide
from sagaguard.model import Idempotency, Observability, Process, StateStore, Step, StepClass
from sagaguard.planner.findings import lookup_place, provider_of
from sagaguard.planner.plan import Area, ChecklistItem
from sagaguard.planner.scenarios import compensation_failure_target, unknown_outcome_target
from sagaguard.planner.wording import (
    alert_to,
    can_still_fail,
    compensation_text,
    fmt_seconds,
    mitigation_for,
    side_effecting,
    single_owner_mechanism,
)

__all__ = ["build_checklist"]

_UNIQUE_RUN_BY_STORE = {
    StateStore.DATABASE: "a unique index on the runs table's operation_id column",
    StateStore.KEY_VALUE: "creating the run key with SET run:{process}:{operation_id} ... NX",
    StateStore.JOBS_TABLE: "a unique constraint on the jobs table's operation_id column",
    StateStore.EVENT_LOG: (
        "one stream per operation_id whose first event is appended with expected version "
        "'no stream'"
    ),
    StateStore.STATE_MACHINE: "using operation_id as the execution name, which cannot start twice",
}

_Item = tuple[str, str, tuple[str, ...]]


def build_checklist(process: Process) -> tuple[ChecklistItem, ...]:
    """Engineering items, then operations items, numbered within their area."""
    ids = {s.id for s in process.steps}
    items = [
        ChecklistItem(id=f"E{n}", area=Area.ENGINEERING, title=t, detail=_cap(d, ids), steps=s)
        for n, (t, d, s) in enumerate(_engineering(process), start=1)
    ]
    items += [
        ChecklistItem(id=f"O{n}", area=Area.OPERATIONS, title=t, detail=_cap(d, ids), steps=s)
        for n, (t, d, s) in enumerate(_operations(process), start=1)
    ]
    return tuple(items)


def _cap(text: str, ids: set[str]) -> str:
    # A step id keeps its spelling even where it opens a sentence: it is a name to grep for.
    first = text.split(" ", 1)[0].rstrip(",:;'s")
    if first in ids or text.split(" ", 1)[0].removesuffix("'s") in ids:
        return text
    return text[:1].upper() + text[1:]


def _ids(steps: list[Step]) -> tuple[str, ...]:
    return tuple(s.id for s in steps)


def _engineering(process: Process) -> list[_Item]:
    store = process.state_store.value
    effects = [s for s in process.steps if side_effecting(s)]
    with_ids = [s for s in process.steps if s.external_id]
    ids = ", ".join(f"{s.external_id} ({s.id})" for s in with_ids) or "none declared"
    without = [s.id for s in process.steps if not s.external_id]
    none_for = (
        f"; {', '.join(without)} {'has' if len(without) == 1 else 'have'} none"
        if (without and with_ids)
        else ""
    )
    items: list[_Item] = [
        (
            f"Journal every step in the {store} store before moving on",
            f"Per run: operation_id, status, owner, lease expiry, fencing token. Per step, "
            f"all {len(process.steps)} of them: step_id, status, attempts, last_attempt_at, "
            f"reason and its external id ({ids}{none_for}). "
            f"Commit `started` before each call and the result before the next step starts, "
            f"so a crash after {process.steps[0].id} or any later step loses nothing",
            _ids(list(process.steps)),
        ),
        (
            "Make operation_id unique",
            f"Enforce it by {_UNIQUE_RUN_BY_STORE[process.state_store]}".replace(
                "{process}", process.name
            )
            + f"; a second {process.name} request with the same operation_id returns the "
            "existing run, and one with a different input is a conflict",
            (),
        ),
        (
            f"Give each {process.name} run a single rollback owner in the {store} store",
            single_owner_mechanism(process)
            + "; a worker whose lease expired stops before its next write",
            (),
        ),
    ]
    keyed = [s for s in effects if s.idempotent is Idempotency.YES]
    if keyed:
        items.append(
            (
                "Send the idempotency key on every idempotent call",
                "Pass {operation_id}:{step_id} unchanged on every attempt of "
                + ", ".join(s.id for s in keyed)
                + "; a new key per attempt would turn each retry into a second effect",
                _ids(keyed),
            )
        )
    for step in effects:
        if step.idempotent is Idempotency.UNKNOWN:
            items.append(_confirm_idempotency(process, step))
    blind = [s for s in effects if not s.safe_to_repeat and not s.has_verify]
    if blind:
        items.append(
            (
                "Add a verify to " + ", ".join(s.id for s in blind),
                "Without a way to read the real outcome, every timeout or crash of "
                + ", ".join(s.id for s in blind)
                + " waits for a person. Declare verify: "
                + "; ".join(
                    f"for {s.id}, look {s.external_id or '{operation_id}:' + s.id} up in "
                    f"{lookup_place(s)}"
                    for s in blind
                ),
                _ids(blind),
            )
        )
    # The last step's compensation never runs (no later step can fail), so it needs no test.
    undoable = [s for s in process.steps[:-1] if s.step_class is StepClass.COMPENSATABLE]
    if undoable:
        items.append(
            (
                "Test every compensation against a sandbox, twice",
                "Run "
                + "; ".join(f"{s.id}: {compensation_text(s)}" for s in undoable)
                + ". The second run must change nothing: a compensation can be repeated after a "
                "crash",
                _ids(undoable),
            )
        )
    for step in effects:
        # Irreversible by class: `compensation: none` or no compensation declared at all.
        if step.step_class is StepClass.IRREVERSIBLE:
            failing = [s for s in process.steps[process.index(step.id) + 1 :] if can_still_fail(s)]
            if failing:
                undeclared = "" if step.compensation_declared else " (no compensation declared)"
                items.append(
                    (
                        f"Move {step.id} after {failing[-1].id}",
                        f"{step.id} cannot be undone{undeclared}, yet "
                        f"{', '.join(s.id for s in failing)} can "
                        f"still fail after it; put it after {failing[-1].id}, the last step that "
                        "can fail, so a rollback never has to explain it",
                        (step.id, failing[-1].id),
                    )
                )
    limits = ", ".join(
        f"{s.id} {process.max_attempts_for(s)}x{fmt_seconds(process.timeout_for(s))}"
        for s in process.steps
    )
    base, top = (
        fmt_seconds(process.defaults.backoff_base),
        fmt_seconds(process.defaults.backoff_max),
    )
    items.append(
        (
            "Bound every retry and persist the attempt count",
            f"Attempts x timeout per step: {limits}; compensations "
            f"{process.defaults.compensation_attempts} attempts; backoff {base} doubling to {top} "
            "with jitter. The count lives in the journal, so a restart does not reset it",
            (),
        )
    )
    target = unknown_outcome_target(process)
    victim = compensation_failure_target(process)
    tail = f", compensation failure of {victim.id}" if victim else ""
    items.append(
        (
            "Run the partial-failure tests of this plan in CI",
            f"Failure after each of the {len(process.steps)} steps, crash before persist and "
            f"timeout of {target.id}, retry after partial success, two workers on one "
            f"operation_id{tail}; each asserts the expected final state listed with it",
            (),
        )
    )
    return items


RESUBMISSION_WINDOW_S = 24 * 3600.0
"""How long after a run a client may still send its operation_id again, as the plan assumes.

A provider must keep an idempotency key at least this long past the step's last retry, or a
resubmission after a lost answer reaches it as a new request.
"""


def retry_window(process: Process, step: Step) -> tuple[float, tuple[float, ...]]:
    """The longest time from a step's first attempt to the end of its last, and the waits.

    Every attempt may run to its timeout; between attempts the engine waits at most the
    exponential bound (``backoff_base`` doubling, capped at ``backoff_max``; jitter only
    shortens it).
    """
    defaults = process.defaults
    attempts = process.max_attempts_for(step)
    waits = tuple(
        min(defaults.backoff_max, defaults.backoff_base * 2 ** (n - 1)) for n in range(1, attempts)
    )
    return attempts * process.timeout_for(step) + sum(waits), waits


def _span(seconds: float) -> str:
    """``86430.6`` -> ``24h 1m``: a retention period, rounded up to the minute."""
    minutes = math.ceil(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return " ".join(
        part for part in (f"{hours}h" if hours else "", f"{minutes}m" if minutes else "") if part
    )


def _confirm_idempotency(process: Process, step: Step) -> _Item:
    ruling = decide(step, Situation.TIMEOUT)
    now = "verified" if ruling.decision is Decision.VERIFY else "sent to a person"
    window, waits = retry_window(process, step)
    attempts = process.max_attempts_for(step)
    backoff = (
        f", plus up to {' + '.join(fmt_seconds(w) for w in waits)} of backoff" if waits else ""
    )
    keep = _span(window + RESUBMISSION_WINDOW_S)
    return (
        f"Confirm with {provider_of(step)} whether {step.id} is idempotent",
        f"Ask whether a second request with the same idempotency key "
        f"({{operation_id}}:{step.id}) returns the first result without a second "
        f"{'/'.join(k.value for k in step.changes)} effect, and whether keys are kept at least "
        f"{keep}: {step.id}'s whole retry window ({attempts} attempts x "
        f"{fmt_seconds(process.timeout_for(step))} timeout{backoff} = {fmt_seconds(window)}) "
        f"plus the {_span(RESUBMISSION_WINDOW_S)} in which a {process.name} client may send "
        f"the same operation_id again. If both hold, set idempotent: yes. Until then a "
        f"timeout of {step.id} is {now}",
        (step.id,),
    )


def _operations(process: Process) -> list[_Item]:
    effects = [s for s in process.steps if side_effecting(s)]
    routes = "; ".join(f"{s.id} -> {alert_to(process, s)}" for s in effects) or "no step alerts"
    items: list[_Item] = [
        (
            "Route needs_manual_review and compensation_failed alerts",
            f"By step: {routes}",
            _ids([s for s in effects if process.alert_route(s) is None]),
        )
    ]
    observed = set(process.observability)
    if Observability.ALERTS in observed:
        items.append(
            (
                "Alert on stuck and failed runs",
                f"Fire on every {process.name} run entering needs_manual_review, every "
                "compensation_failed event, and any run running or compensating past its lease "
                "plus one recovery interval",
                (),
            )
        )
    else:
        items.append(
            (
                "Add alerting (none exists today)",
                f"Without alerts, a run of {process.name} stuck in needs_manual_review waits "
                "unseen. Alert on that status, on every compensation_failed event, and on runs "
                "running or compensating past their lease plus one recovery interval",
                (),
            )
        )
    if Observability.DEAD_LETTER_QUEUE in observed:
        items.append(
            (
                "Send runs needing review to the dead-letter queue",
                f"Each {process.name} run in needs_manual_review lands there with operation_id, "
                "the step, its status, reason and external ids, and leaves only when a person "
                "resolves the run",
                (),
            )
        )
    else:
        items.append(
            (
                "Add a dead-letter (review) queue",
                f"Runs of {process.name} that end in needs_manual_review must land in a queue a "
                "person works through: operation_id, step, reason, external ids, age",
                (),
            )
        )
    # Every side-effecting step can wait for a person: a lost answer that cannot be retried,
    # a verify that cannot tell, or retries with the same key that never got an answer.
    for step in effects:
        items.append(_review_runbook(process, step))
    last = process.steps[-1]
    for step in effects:
        if step.step_class is not StepClass.IRREVERSIBLE:
            continue
        who = alert_to(process, step)
        if step is last:
            # No rollback of the run ever reaches the last step; only a later undo of the
            # whole operation, outside the run, does.
            when = (
                f"{step.id} cannot be undone and, as the last step, is never rolled back; if "
                f"a completed {process.name} run is undone later by other means, {who} does this"
            )
        else:
            when = f"{step.id} cannot be undone; when its run is rolled back, {who} does this"
        items.append(
            (f"Own the mitigation of {step.id}", f"{when}: {mitigation_for(step)}", (step.id,))
        )
    if Observability.METRICS in observed:
        items.append(
            (
                "Chart runs and steps by status",
                f"Counts of {process.name} runs by status and steps by status, retries and "
                "compensations per step, and the age of the oldest run in needs_manual_review",
                (),
            )
        )
    else:
        items.append(
            (
                "Add metrics",
                f"Count {process.name} runs by status, retries and compensations per step, and "
                "track the age of the oldest run in needs_manual_review",
                (),
            )
        )
    ids = [s.external_id for s in process.steps if s.external_id]
    fields = "operation_id, step_id, attempt, status" + (
        f" and the step's external id ({', '.join(ids)})" if ids else ""
    )
    if Observability.TRACES in observed:
        detail = (
            f"Put {fields} on every log line and as span attributes of each {process.name} "
            "step's span"
        )
    elif Observability.LOGS in observed:
        detail = f"Put {fields} on every log line, so one grep tells a {process.name} run's story"
    else:
        detail = f"Add structured logs carrying {fields} for every {process.name} transition"
    items.append(("Make one run traceable end to end", detail, ()))
    return items


def _resolve(step: Step) -> str:
    return f"`sagaguard review resolve {{operation_id}} --step {step.id} --as ...`"


def _after_resolution(process: Process, step: Step, *, spent: bool) -> str:
    """What each resolution of a step waiting for review makes the engine do next."""
    index = process.index(step.id)
    undo = [
        s.id for s in reversed(process.steps[:index]) if s.step_class is StepClass.COMPENSATABLE
    ]
    later = process.steps[index + 1 :]
    rollback = f"the run rolls back {', '.join(undo)}" if undo else "the run fails, nothing to undo"
    undone = f"the rollback goes on with {', '.join(undo)}" if undo else "the run ends compensated"
    result = f" with its {step.external_id} in --result" if step.external_id else ""
    goes_on = f"the run continues with {later[0].id}" if later else "the run completes"
    attempts = process.max_attempts_for(step)
    if spent:
        again = f"its {attempts} attempts are spent, so {rollback}"
    else:
        again = (
            f"{step.id} is called again if any of its {attempts} attempts remain, else {rollback}"
        )
    text = (
        f"took effect -> `--as completed`{result}: {goes_on}; did not -> `--as not_applied`: "
        + again
    )
    if step.step_class is StepClass.COMPENSATABLE:
        text += f"; took effect and undone by hand -> `--as compensated`: {undone}"
    return text


def _review_runbook(process: Process, step: Step) -> _Item:
    # Its external id never reached the journal: the provider knows the call by its key.
    where = f"the idempotency key {{operation_id}}:{step.id}"
    ruling = decide(step, Situation.TIMEOUT)
    if ruling.decision is Decision.RETRY:
        when = (
            f"When none of {step.id}'s {process.max_attempts_for(step)} attempts with the same "
            "key got an answer"
        )
    elif ruling.decision is Decision.VERIFY:
        when = f"When verify cannot tell {step.id}'s outcome"
    else:
        when = f"When {step.id}'s outcome is unknown"
    return (
        f"Write the manual-review runbook for {step.id}",
        f"{when}, {alert_to(process, step)} looks {where} up in {lookup_place(step)}, then "
        f"runs {_resolve(step)}: "
        f"{_after_resolution(process, step, spent=ruling.decision is Decision.RETRY)}",
        (step.id,),
    )
