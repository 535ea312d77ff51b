"""The invariants of DESIGN.md section 4, checked on what a run left behind.

:func:`check_invariants` reads one run's journal (snapshot and events) and the ledger of
external calls, and lists every :class:`Violation` it can prove. It judges the record, not
the engine's code: a fault-injection test runs the real engine, crashes it anywhere, recovers,
and asks this module whether the outcome is one the rules allow. Numbers follow DESIGN.md:

1. no side-effecting step called twice unless idempotent (same key) or verify/a definite
   failure said it did not happen;
2. compensation only of confirmed effects, in strict reverse order of completion, each at most
   once to success;
3. an unknown outcome is never retried blind nor compensated;
5. attempts are bounded (in attempts, and in time where the rules give a window) and survive
   crashes (the journal counts every attempt made);
6. a failed compensation has its own event (and alert) and leaves the run in review;
7. one operation_id, one run;
8. the journal accounts for every external call before it was made and replays to its snapshot;
9. (``settled=True``) the run ended terminal or waiting for a person, consistently with its steps;
10. once the pivot completed nothing at or before it is compensated, and a best-effort step's
    failure never rolls the run back.

Checks 5, 6, 9 and 10 live in :mod:`sagaguard.testing.endings`.

Beyond the journal's own record of itself, three checks judge it by what happened in time:
:func:`rollback_order` (2: the order compensations reached the world, against the audit
trail), :func:`stale_writes` (4: one stale owner wrote nothing after a takeover) and
:func:`fenced` (4, for a whole fleet: every write and every external call under the claim
current at the time). An engine that numbered its completions wrongly would pass the first
checks and fail these.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from sagaguard.engine.alerts import Alert
from sagaguard.model import Process
from sagaguard.storage.base import NOTIFIER_ACTOR, SUBMITTER_ACTOR, Event, RunSnapshot
from sagaguard.storage.payloads import input_hash
from sagaguard.testing import endings
from sagaguard.testing.facts import UNSETTLED, RunFacts, Violation, undoable
from sagaguard.testing.ledger import LedgerEntry, LedgerKind
from sagaguard.vocabulary import EventKind, StepStatus

__all__ = ["Violation", "check_invariants", "fenced", "rollback_order", "stale_writes"]

_PERMITS_REPEAT = (EventKind.STEP_FAILED, EventKind.VERIFIED_NOT_APPLIED)
_EFFECT_LIVE = (
    StepStatus.COMPLETED,
    StepStatus.COMPENSATING,
    StepStatus.COMPENSATION_FAILED,
)


def check_invariants(
    snapshot: RunSnapshot,
    events: Sequence[Event],
    ledger: Iterable[LedgerEntry],
    process: Process,
    *,
    alerts: Iterable[Alert] | None = None,
    settled: bool = False,
) -> list[Violation]:
    """Every invariant violation the run's journal and the ledger of calls prove.

    ``ledger`` may hold other runs' calls (they are ignored). ``alerts``, when given, must
    be every alert sent for the run's lifetime. ``settled`` also demands invariant 9: the
    run stopped (terminal or waiting for a person) in a state its steps agree with.
    """
    op = snapshot.run.operation_id
    facts = RunFacts(
        snapshot=snapshot,
        events=sorted(events, key=lambda e: e.seq),
        entries=[e for e in ledger if e.operation_id == op],
        process=process,
    )
    if not _same_shape(facts):
        return facts.out
    _one_run(facts)
    _journal_replays(facts)
    _no_double_effect(facts)
    _unknown_never_blind(facts)
    _compensation_order(facts)
    endings.attempts_bounded(facts)
    endings.failed_compensation_surfaces(facts)
    endings.point_of_no_return(facts)
    if alerts is not None:
        endings.alerts_sent(facts, [a for a in alerts if a.operation_id == op])
    if settled:
        endings.settled(facts)
    return facts.out


def _same_shape(facts: RunFacts) -> bool:
    """The journal is a run of this process; otherwise nothing else can be judged."""
    run, process = facts.snapshot.run, facts.process
    journal_steps = [r.step_id for r in facts.snapshot.steps]
    if run.process != process.name or journal_steps != [s.id for s in process.steps]:
        facts.flag(
            7,
            None,
            f"the journal holds a run of {run.process!r} with steps {journal_steps}, "
            f"not of {process.name!r} with steps {[s.id for s in process.steps]}",
        )
        return False
    return True


def _one_run(facts: RunFacts) -> None:
    """7: one operation_id, one run: one creation, one input, only this run's steps."""
    run = facts.snapshot.run
    strangers = {e.operation_id for e in facts.events} - {facts.op}
    if strangers:
        facts.flag(7, None, f"the audit trail mixes in events of {sorted(strangers)}")
    created = [e for e in facts.events if e.kind == EventKind.RUN_CREATED]
    if len(created) != 1:
        facts.flag(7, None, f"{len(created)} run_created events: one operation_id, one run")
    elif facts.events[0].kind != EventKind.RUN_CREATED:
        facts.flag(7, None, "the audit trail does not start with run_created")
    if run.input_hash != input_hash(run.input):
        facts.flag(7, None, "the stored input does not match its hash")
    known = {s.id for s in facts.process.steps}
    for entry in facts.entries:
        if entry.step_id not in known:
            facts.flag(7, entry.step_id, f"a {entry.kind.value} of a step the run does not have")


def _journal_replays(facts: RunFacts) -> None:
    """8: events replay to the snapshot, and every call was journaled before it was made."""
    seqs = [e.seq for e in facts.events]
    if len(set(seqs)) != len(seqs):
        facts.flag(8, None, "two events share a sequence number")
    for step in facts.process.steps:
        status = StepStatus.PENDING.value
        for event in facts.step_events(step.id):
            if event.from_status != status:
                facts.flag(
                    8,
                    step.id,
                    f"event {event.seq} ({event.kind}) moves the step from {event.from_status}, "
                    f"but the journal had it {status}",
                )
            status = event.to_status or status
        if status != facts.record(step.id).status.value:
            facts.flag(
                8,
                step.id,
                f"events leave the step {status}, the snapshot says "
                f"{facts.record(step.id).status.value}",
            )
        pairs = (
            (LedgerKind.CALL, EventKind.STEP_STARTED),
            (LedgerKind.COMPENSATE, EventKind.COMPENSATION_STARTED),
            (LedgerKind.VERIFY, EventKind.VERIFY_CALLED),
        )
        for kind, journaled in pairs:
            made = len(facts.calls(step.id, kind))
            written = len(facts.step_events(step.id, journaled))
            if made > written:
                facts.flag(
                    8,
                    step.id,
                    f"{made} {kind.value} calls in the ledger but only {written} "
                    f"{journaled.value} events: a call was made that the journal did not "
                    "record first",
                )


def _no_double_effect(facts: RunFacts) -> None:
    """1: same key always; a non-idempotent step repeats only after a 'nothing happened'."""
    known = {s.id for s in facts.process.steps}
    for entry in facts.entries:
        if entry.step_id not in known:
            continue
        expected = facts.record(entry.step_id).idempotency_key
        if entry.idempotency_key != expected:
            facts.flag(
                1,
                entry.step_id,
                f"{entry.kind.value} attempt {entry.attempt} carried key "
                f"{entry.idempotency_key!r}, not the run's stable key {expected!r}",
            )
    for step in facts.process.steps:
        if step.safe_to_repeat:
            continue
        calls = facts.calls(step.id, LedgerKind.CALL)
        permits = len(facts.step_events(step.id, *_PERMITS_REPEAT)) + sum(
            1
            for e in facts.step_events(step.id, EventKind.RESOLVED)
            if e.to_status == StepStatus.FAILED
        )
        if len(calls) > 1 + permits:
            facts.flag(
                1,
                step.id,
                f"non-idempotent step called {len(calls)} times, but only {permits} answer(s) "
                "(verify: not applied, a definite failure, a person) made a repeat safe",
            )


def _unknown_never_blind(facts: RunFacts) -> None:
    """3: an unknown outcome is settled (verify, same-key retry, a person) before anything."""
    for event, before in facts.replay():
        step = facts.process.step(event.step_id or "")
        blind = event.kind == EventKind.STEP_STARTED and event.from_status in UNSETTLED
        if blind and not step.safe_to_repeat:
            facts.flag(
                3,
                step.id,
                f"retried blind (event {event.seq}): started again from "
                f"{event.from_status} without verify or a person settling the outcome",
            )
        if event.to_status == StepStatus.COMPENSATING and event.from_status != StepStatus.COMPLETED:
            number = 3 if event.from_status in UNSETTLED else 2
            facts.flag(
                number,
                step.id,
                f"compensated from {event.from_status} (event {event.seq}): only a confirmed "
                "effect is undone",
            )
        if event.kind == EventKind.COMPENSATION_STARTED:
            for other, status in before.items():
                # A best-effort step left unknown was alerted on and the run went on without it.
                if status in UNSETTLED and not facts.went_on_without(other):
                    facts.flag(
                        3,
                        step.id,
                        f"compensation began (event {event.seq}) while {other} was {status}: "
                        "an unknown outcome is settled before anything is compensated",
                    )


def _compensation_order(facts: RunFacts) -> None:
    """2: only confirmed effects, strict reverse order of completion, once to success."""
    for event, before in facts.replay():
        if event.kind != EventKind.COMPENSATION_STARTED:
            continue
        mine = facts.seq(event.step_id or "")
        for other, status in before.items():
            later = facts.seq(other)
            step = facts.process.step(other)
            if mine is None or later is None or later <= mine or not undoable(step):
                continue
            if status == StepStatus.COMPENSATION_FAILED:
                facts.flag(
                    6,
                    event.step_id,
                    f"rollback went on (event {event.seq}) after {other}'s compensation "
                    "failed: it must halt and wait for a person",
                )
            elif status in _EFFECT_LIVE:
                facts.flag(
                    2,
                    event.step_id,
                    f"compensated (event {event.seq}) while {other}, completed later, was "
                    f"still {status}: not strict reverse order of completion",
                )
    for step in facts.process.steps:
        calls = facts.calls(step.id, LedgerKind.COMPENSATE)
        if calls and facts.seq(step.id) is None:
            facts.flag(2, step.id, "compensated, but its effect was never confirmed")
        repeats = len(facts.step_events(step.id, EventKind.COMPENSATION_ATTEMPT_FAILED))
        if len(calls) > 1 + repeats:
            facts.flag(
                2,
                step.id,
                f"compensation called {len(calls)} times, but only {repeats} definite "
                "failure(s) made a repeat safe",
            )
        done = len(facts.step_events(step.id, EventKind.STEP_COMPENSATED))
        if done > 1:
            facts.flag(2, step.id, f"compensated to success {done} times")
    floor: int | None = None
    for entry in facts.entries:
        seq = facts.seq(entry.step_id) if entry.kind is LedgerKind.COMPENSATE else None
        if seq is None:
            continue
        if floor is not None and seq > floor:
            facts.flag(
                2,
                entry.step_id,
                "compensation call came after the compensation of a step that completed "
                "earlier: not reverse order of completion",
            )
        floor = seq if floor is None else min(floor, seq)


def rollback_order(events: Sequence[Event], entries: Iterable[LedgerEntry]) -> list[Violation]:
    """2: compensations reach the world latest-completed first, as the audit trail orders it."""
    completed: dict[str, int] = {}
    for event in events:
        if event.step_id is not None and event.to_status == StepStatus.COMPLETED:
            completed.setdefault(event.step_id, event.seq)
    op = events[0].operation_id if events else ""
    undone: list[str] = []
    for entry in entries:
        if entry.kind is LedgerKind.COMPENSATE and entry.step_id not in undone:
            undone.append(entry.step_id)
    out: list[Violation] = []
    for earlier, later in itertools.pairwise(undone):
        first, second = completed.get(earlier), completed.get(later)
        if first is not None and second is not None and second > first:
            out.append(
                Violation(
                    2,
                    op,
                    later,
                    f"compensated after {earlier}, though it completed later (event {second} "
                    f"after {first}): not reverse order of completion",
                )
            )
    return out


def stale_writes(events: Sequence[Event], stale: str) -> list[Violation]:
    """4: once another owner claimed the run, ``stale`` writes nothing more to it."""
    taken = [e.seq for e in events if e.kind == EventKind.CLAIMED and e.actor != stale]
    if not taken:
        return []
    return [
        Violation(
            4,
            event.operation_id,
            event.step_id,
            f"{stale} wrote {event.kind} (event {event.seq}) after another owner took the run "
            "over: a stale owner's write was not fenced off",
        )
        for event in events
        if event.seq > taken[0] and event.actor == stale
    ]


_JOURNALED_FIRST = {
    LedgerKind.CALL: EventKind.STEP_STARTED,
    LedgerKind.COMPENSATE: EventKind.COMPENSATION_STARTED,
    LedgerKind.VERIFY: EventKind.VERIFY_CALLED,
}


def fenced(events: Sequence[Event], entries: Iterable[LedgerEntry]) -> list[Violation]:
    """4 for any number of owners: every write and every call under the claim then current.

    The audit trail splits into claims: each ``claimed`` event must carry the next fencing
    token, and every event until the next claim must be written by that claim's owner (alert
    delivery, which writes no run state, excepted). Each external call in the ledger must
    carry a token the run really issued, and be preceded, under that very token, by the
    journaled start it belongs to: a call made on a stale claim, or one no start under its
    claim accounts for, is a violation.
    """
    ordered = sorted(events, key=lambda e: e.seq)
    if not ordered:
        return []
    op = ordered[0].operation_id
    out: list[Violation] = []
    created = ordered[0]
    # A run submitted without an owner starts at token 0; one created by its runner at 1.
    token = 0 if created.actor == SUBMITTER_ACTOR else 1
    owner: str | None = None if token == 0 else created.actor
    starts: dict[tuple[int, str, str], int] = {}
    for event in ordered[1:]:
        if event.kind == EventKind.CLAIMED:
            got = _token_of(event)
            if got != token + 1:
                out.append(
                    Violation(
                        4,
                        op,
                        None,
                        f"claim by {event.actor} (event {event.seq}) carries token {got}, "
                        f"not the next one ({token + 1})",
                    )
                )
            token, owner = (got if got is not None else token + 1), event.actor
            continue
        if event.actor == NOTIFIER_ACTOR:
            continue
        if event.actor != owner:
            out.append(
                Violation(
                    4,
                    op,
                    event.step_id,
                    f"{event.actor} wrote {event.kind} (event {event.seq}) while token "
                    f"{token} belonged to {owner}: a write the fencing token did not stop",
                )
            )
        if event.step_id is not None:
            key = (token, event.step_id, event.kind)
            starts[key] = starts.get(key, 0) + 1
    used: dict[tuple[int, str, str], int] = {}
    for entry in entries:
        if entry.operation_id != op:
            continue
        if entry.fencing_token is None or not 1 <= entry.fencing_token <= token:
            out.append(
                Violation(
                    4,
                    op,
                    entry.step_id,
                    f"a {entry.kind.value} carried token {entry.fencing_token}, which the run "
                    f"never issued (last: {token})",
                )
            )
            continue
        key = (entry.fencing_token, entry.step_id, _JOURNALED_FIRST[entry.kind].value)
        used[key] = used.get(key, 0) + 1
        if used[key] > starts.get(key, 0):
            out.append(
                Violation(
                    4,
                    op,
                    entry.step_id,
                    f"a {entry.kind.value} under token {entry.fencing_token} that no "
                    f"{key[2]} event under that token accounts for: made on a stale claim",
                )
            )
    return out


def _token_of(event: Event) -> int | None:
    data = event.data
    if isinstance(data, dict):
        value = data.get("fencing_token")
        if isinstance(value, int):
            return value
    return None
