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
5. attempts are bounded and survive crashes (the journal counts every attempt made);
6. a failed compensation has its own event (and alert) and leaves the run in review;
7. one operation_id, one run;
8. the journal accounts for every external call before it was made and replays to its snapshot;
9. (``settled=True``) the run ended terminal or waiting for a person, consistently with its steps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sagaguard.engine.alerts import Alert
from sagaguard.model import Process, Step, StepClass
from sagaguard.storage.base import Event, RunSnapshot, RunStatus, StepRecord, input_hash
from sagaguard.testing.ledger import LedgerEntry, LedgerKind

__all__ = ["Violation", "check_invariants"]

_UNSETTLED = ("started", "unknown", "needs_manual_review")
_PERMITS_REPEAT = ("step_failed", "verified_not_applied")
_EFFECT_LIVE = ("completed", "compensating", "compensation_failed")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken invariant: its number in DESIGN.md section 4, the run, the step, what."""

    invariant: int
    operation_id: str
    step_id: str | None
    message: str

    def __str__(self) -> str:
        where = self.operation_id + (f"/{self.step_id}" if self.step_id else "")
        return f"invariant {self.invariant} [{where}]: {self.message}"


@dataclass
class _Facts:
    """One run's journal and ledger, indexed for the checks."""

    snapshot: RunSnapshot
    events: list[Event]
    entries: list[LedgerEntry]
    process: Process
    out: list[Violation] = field(default_factory=list)

    @property
    def op(self) -> str:
        return self.snapshot.run.operation_id

    def record(self, step_id: str) -> StepRecord:
        return self.snapshot.step(step_id)

    def step_events(self, step_id: str, *kinds: str) -> list[Event]:
        return [e for e in self.events if e.step_id == step_id and (not kinds or e.kind in kinds)]

    def calls(self, step_id: str, kind: LedgerKind) -> list[LedgerEntry]:
        return [e for e in self.entries if e.step_id == step_id and e.kind is kind]

    def seq(self, step_id: str) -> int | None:
        return self.record(step_id).completed_seq

    def flag(self, invariant: int, step_id: str | None, message: str) -> None:
        self.out.append(Violation(invariant, self.op, step_id, message))


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
    facts = _Facts(
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
    _attempts_bounded(facts)
    _failed_compensation_surfaces(facts)
    if alerts is not None:
        _alerts_sent(facts, [a for a in alerts if a.operation_id == op])
    if settled:
        _settled(facts)
    return facts.out


def _same_shape(facts: _Facts) -> bool:
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


def _one_run(facts: _Facts) -> None:
    """7: one operation_id, one run: one creation, one input, only this run's steps."""
    run = facts.snapshot.run
    strangers = {e.operation_id for e in facts.events} - {facts.op}
    if strangers:
        facts.flag(7, None, f"the audit trail mixes in events of {sorted(strangers)}")
    created = [e for e in facts.events if e.kind == "run_created"]
    if len(created) != 1:
        facts.flag(7, None, f"{len(created)} run_created events: one operation_id, one run")
    elif facts.events[0].kind != "run_created":
        facts.flag(7, None, "the audit trail does not start with run_created")
    if run.input_hash != input_hash(run.input):
        facts.flag(7, None, "the stored input does not match its hash")
    known = {s.id for s in facts.process.steps}
    for entry in facts.entries:
        if entry.step_id not in known:
            facts.flag(7, entry.step_id, f"a {entry.kind.value} of a step the run does not have")


def _journal_replays(facts: _Facts) -> None:
    """8: events replay to the snapshot, and every call was journaled before it was made."""
    seqs = [e.seq for e in facts.events]
    if len(set(seqs)) != len(seqs):
        facts.flag(8, None, "two events share a sequence number")
    for step in facts.process.steps:
        status = "pending"
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
            (LedgerKind.CALL, "step_started"),
            (LedgerKind.COMPENSATE, "compensation_started"),
            (LedgerKind.VERIFY, "verify_called"),
        )
        for kind, journaled in pairs:
            made, written = (
                len(facts.calls(step.id, kind)),
                len(facts.step_events(step.id, journaled)),
            )
            if made > written:
                facts.flag(
                    8,
                    step.id,
                    f"{made} {kind.value} calls in the ledger but only {written} {journaled} "
                    "events: a call was made that the journal did not record first",
                )


def _no_double_effect(facts: _Facts) -> None:
    """1: same key always; a non-idempotent step repeats only after a 'nothing happened'."""
    for entry in facts.entries:
        if entry.step_id not in {s.id for s in facts.process.steps}:
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
            1 for e in facts.step_events(step.id, "resolved") if e.to_status == "failed"
        )
        if len(calls) > 1 + permits:
            facts.flag(
                1,
                step.id,
                f"non-idempotent step called {len(calls)} times, but only {permits} answer(s) "
                "(verify: not applied, a definite failure, a person) made a repeat safe",
            )


def _replay(facts: _Facts) -> Iterator[tuple[Event, dict[str, str]]]:
    """Each step event with every step's status just before it."""
    status = {s.id: "pending" for s in facts.process.steps}
    for event in facts.events:
        if event.step_id is None or event.step_id not in status:
            continue
        yield event, dict(status)
        status[event.step_id] = event.to_status or status[event.step_id]


def _unknown_never_blind(facts: _Facts) -> None:
    """3: an unknown outcome is settled (verify, same-key retry, a person) before anything."""
    for event, before in _replay(facts):
        step = facts.process.step(event.step_id or "")
        blind = event.kind == "step_started" and event.from_status in _UNSETTLED
        if blind and not step.safe_to_repeat:
            facts.flag(
                3,
                step.id,
                f"retried blind (event {event.seq}): started again from "
                f"{event.from_status} without verify or a person settling the outcome",
            )
        if event.to_status == "compensating" and event.from_status != "completed":
            number = 3 if event.from_status in _UNSETTLED else 2
            facts.flag(
                number,
                step.id,
                f"compensated from {event.from_status} (event {event.seq}): only a confirmed "
                "effect is undone",
            )
        if event.kind == "compensation_started":
            for other, status in before.items():
                if status in _UNSETTLED:
                    facts.flag(
                        3,
                        step.id,
                        f"compensation began (event {event.seq}) while {other} was {status}: "
                        "an unknown outcome is settled before anything is compensated",
                    )


def _compensation_order(facts: _Facts) -> None:
    """2: only confirmed effects, strict reverse order of completion, once to success."""
    for event, before in _replay(facts):
        if event.kind != "compensation_started":
            continue
        mine = facts.seq(event.step_id or "")
        for other, status in before.items():
            later = facts.seq(other)
            step = facts.process.step(other)
            if mine is None or later is None or later <= mine or not _undoable(step):
                continue
            if status == "compensation_failed":
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
        repeats = len(facts.step_events(step.id, "compensation_attempt_failed"))
        if len(calls) > 1 + repeats:
            facts.flag(
                2,
                step.id,
                f"compensation called {len(calls)} times, but only {repeats} definite "
                "failure(s) made a repeat safe",
            )
        done = len(facts.step_events(step.id, "step_compensated"))
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


def _undoable(step: Step) -> bool:
    return step.step_class is StepClass.COMPENSATABLE


def _attempts_bounded(facts: _Facts) -> None:
    """5: attempts within bounds, counted once each, surviving crashes."""
    compensation_bound = facts.process.defaults.compensation_attempts
    for step in facts.process.steps:
        record = facts.record(step.id)
        bound = facts.process.max_attempts_for(step)
        limits = (
            ("attempts", record.attempts, bound, LedgerKind.CALL, "step_started"),
            (
                "compensation attempts",
                record.compensation_attempts,
                compensation_bound,
                LedgerKind.COMPENSATE,
                "compensation_started",
            ),
        )
        for what, count, limit, kind, journaled in limits:
            if count > limit:
                facts.flag(5, step.id, f"{count} {what}, more than the bound of {limit}")
            started = len(facts.step_events(step.id, journaled))
            if started != count:
                facts.flag(
                    5,
                    step.id,
                    f"{started} {journaled} events but {count} {what} persisted: "
                    "the count was lost or reset",
                )
            numbers = Counter(e.attempt for e in facts.calls(step.id, kind))
            for number, times in sorted(numbers.items()):
                if number > count or number > limit:
                    facts.flag(
                        5,
                        step.id,
                        f"{kind.value} as attempt {number}, beyond the {count} persisted "
                        f"(bound {limit})",
                    )
                if times > 1:
                    facts.flag(5, step.id, f"{kind.value} attempt {number} was made {times} times")


def _failed_compensation_surfaces(facts: _Facts) -> None:
    """6: a failed compensation is its own event and leaves the run waiting for a person."""
    for record in facts.snapshot.steps:
        if record.status.value != "compensation_failed":
            continue
        if not facts.step_events(record.step_id, "compensation_failed"):
            facts.flag(6, record.step_id, "compensation_failed without its own event")
        if facts.snapshot.run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
            facts.flag(
                6,
                record.step_id,
                f"compensation failed but the run is {facts.snapshot.run.status.value}, "
                "not needs_manual_review",
            )
    for event in facts.events:
        if event.kind != "compensation_failed" or event.step_id is None:
            continue
        still = facts.record(event.step_id).status.value == "compensation_failed"
        resolved = any(
            later.seq > event.seq for later in facts.step_events(event.step_id, "resolved")
        )
        if not still and not resolved:
            facts.flag(
                6,
                event.step_id,
                f"the compensation failure of event {event.seq} was left without a "
                "person's resolution",
            )


def _alerts_sent(facts: _Facts, alerts: list[Alert]) -> None:
    """6 (and section 2): each compensation failure and each review has its alert."""
    sent = Counter((a.kind.value, a.step_id) for a in alerts)
    wanted = Counter(
        (e.kind, e.step_id)
        for e in facts.events
        if e.kind in ("compensation_failed", "needs_manual_review")
    )
    for (kind, step_id), count in sorted(wanted.items(), key=str):
        if sent[(kind, step_id)] < count:
            facts.flag(6, step_id, f"{count} {kind} event(s) but {sent[(kind, step_id)]} alert(s)")


def _settled(facts: _Facts) -> None:
    """9: the run stopped, and its status agrees with its steps."""
    run = facts.snapshot.run
    records = facts.snapshot.steps
    if run.status.active:
        facts.flag(9, None, f"the run is still {run.status.value}: nobody finished it")
        return
    if run.status is RunStatus.NEEDS_MANUAL_REVIEW:
        waiting = [
            r for r in records if r.status.value in ("needs_manual_review", "compensation_failed")
        ]
        if not waiting:
            facts.flag(9, None, "the run waits for review, but no step waits for a person")
    elif run.status is RunStatus.COMPLETED:
        for r in records:
            if r.status.value != "completed":
                facts.flag(9, r.step_id, f"the run completed, the step is {r.status.value}")
    else:
        for r in records:
            step = facts.process.step(r.step_id)
            if r.completed_seq is None or step.read_only:
                continue
            if run.status is RunStatus.FAILED:
                facts.flag(
                    9, r.step_id, "the run failed with nothing to undo, but this step had an effect"
                )
            elif _undoable(step) and r.status.value != "compensated":
                facts.flag(9, r.step_id, f"the run is compensated, the step is {r.status.value}")
