"""The cells of the rulebook's table, and a run of the real engine that puts a step in each.

A cell is a step kind (with its step class) x a situation x where the step stands (before,
at or after the pivot) x required or best-effort. :func:`provoke` builds a small process
around the step under test (``target``), scripts a :class:`~sagaguard.testing.FakeProvider`
so the target meets the cell's situation, runs the engine on the memory store with a fake
clock, and returns what it left behind: the journal, the provider's ledger, the alerts.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sagaguard.engine import Engine, RecordingNotifier, Saga, SimulatedCrash
from sagaguard.model import Phase
from sagaguard.rules import Situation, StepKind
from sagaguard.storage import JournalStore, RunSnapshot
from sagaguard.storage.base import Event, Transition
from sagaguard.storage.memory import InMemoryStore
from sagaguard.testing import (
    Behaviour,
    CrashAt,
    FakeClock,
    FakeProvider,
    FaultPoint,
    LedgerEntry,
)
from sagaguard.vocabulary import EventKind

TARGET = "target"
OP = "cell-1"
FOREVER = 400
"""How many times a behaviour is queued to mean "every time" (far beyond any bound here)."""
IN_FLIGHT_TIMEOUT = "0.05s"
"""The target's timeout in the call-in-flight cells: its call hangs past it for real."""
SETTLE_S = 5.0
"""The target's verify_after in the verify-too-soon cells."""
LAG_S = 3.0
"""How long the provider's lookup lags its writes in those cells (less than the settle)."""

DEFAULTS: dict[str, Any] = {
    "max_attempts": 3,
    "compensation_attempts": 2,
    "retry_for": "2m",
    "compensation_retry_for": "1m",
    "backoff_base": "1s",
    "backoff_max": "10s",
    "timeout": "5s",
}


@dataclass(frozen=True, slots=True)
class Cell:
    """One cell of the table: what the target is, where it stands, what happens to it."""

    kind: StepKind
    compensatable: bool
    phase: Phase
    required: bool
    situation: Situation

    @property
    def id(self) -> str:
        undo = (
            "" if self.kind is StepKind.READ_ONLY else ("-undo" if self.compensatable else "-once")
        )
        need = "required" if self.required else "best_effort"
        return f"{self.kind.value}{undo}-{self.phase.value}-{need}-{self.situation.value}"

    @property
    def verify_bound(self) -> bool:
        return self.kind is StepKind.VERIFIABLE


def cells() -> Iterator[Cell]:
    """Every cell: a best-effort step is never the pivot, a read-only one never undone."""
    for kind, phase, required, situation in itertools.product(
        StepKind, Phase, (True, False), Situation
    ):
        if phase is Phase.PIVOT and not required:
            continue
        for compensatable in (True,) if kind is StepKind.READ_ONLY else (True, False):
            yield Cell(
                kind, compensatable and kind is not StepKind.READ_ONLY, phase, required, situation
            )


@dataclass
class Outcome:
    """What one provoked run left behind."""

    saga: Saga
    snapshot: RunSnapshot
    events: list[Event]
    ledger: list[LedgerEntry]
    alerts: list[Any]
    duplicate: RunSnapshot | None = None
    calls_before_duplicate: int = 0

    def target_events(self) -> list[Event]:
        return [e for e in self.events if e.step_id == TARGET]


def build(cell: Cell, provider: FakeProvider) -> Saga:
    """head (undoable), [pivot], target, [pivot], tail (undoable), as the cell's phase says."""
    saga = Saga("cell", alerts={"default": "ops"}, defaults=DEFAULTS)

    def add(step_id: str, **fields: Any) -> Any:
        return saga.step(id=step_id, **fields)(provider.call)

    def pivot() -> None:
        add("pivot", changes=["external_api"], idempotent="yes", compensation="none", pivot=True)

    add("head", changes=["database"], idempotent="yes").compensate(provider.compensate)
    if cell.phase is Phase.AFTER_PIVOT:
        pivot()
    target = add(TARGET, **_target_fields(cell))
    if cell.compensatable:
        target.compensate(provider.compensate)
    if cell.kind is StepKind.VERIFIABLE:
        target.verify(provider.lookup)
    if cell.phase is Phase.BEFORE_PIVOT:
        pivot()
    add("tail", changes=["database"], idempotent="yes").compensate(provider.compensate)
    return saga


def _target_fields(cell: Cell) -> dict[str, Any]:
    fields: dict[str, Any] = {"required": cell.required}
    if cell.kind is StepKind.READ_ONLY:
        fields |= {"changes": ["none"], "idempotent": "yes"}
    elif cell.kind is StepKind.IDEMPOTENT:
        fields |= {"changes": ["external_api"], "idempotent": "yes"}
    else:
        fields |= {"changes": ["payment"], "idempotent": "no"}
    if cell.kind is StepKind.VERIFY_UNBOUND:
        fields["verify"] = "Look the payment up by its idempotency key"
    if cell.kind is not StepKind.READ_ONLY and not cell.compensatable:
        fields["compensation"] = "none"
    if cell.phase is Phase.PIVOT:
        fields["pivot"] = True
    if cell.situation is Situation.CALL_IN_FLIGHT:
        fields["timeout"] = IN_FLIGHT_TIMEOUT
    if cell.situation is Situation.VERIFY_TOO_SOON:
        fields["verify_after"] = SETTLE_S
    return fields


class _OnRecord:
    """A store that runs ``hook`` after each commit holding an event of ``kind``."""

    def __init__(self, inner: JournalStore, kind: EventKind, hook: Callable[[], None]) -> None:
        self._inner, self._kind, self._hook = inner, kind, hook

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def record(self, claim: Any, transitions: list[Transition], **kwargs: Any) -> Any:
        claimed = self._inner.record(claim, transitions, **kwargs)
        if any(t.kind == self._kind for t in transitions):
            self._hook()
        return claimed


@dataclass
class _Run:
    cell: Cell
    clock: FakeClock = field(default_factory=FakeClock)
    store: InMemoryStore = field(default_factory=InMemoryStore)
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)

    def __post_init__(self) -> None:
        self.provider = FakeProvider(
            "world",
            clock=self.clock,
            lookup_lag_s=LAG_S if self.cell.situation is Situation.VERIFY_TOO_SOON else 0.0,
            hang_timeout_s=30.0,
        )
        self.saga = build(self.cell, self.provider)

    def engine(self, store: Any = None, **options: Any) -> Engine:
        return Engine(
            store=store or self.store,
            clock=self.clock,
            sleep=self.clock.sleep,
            notifier=self.notifier,
            owner=options.pop("owner", "conformance"),
            lease_s=30,
            **options,
        )

    def outcome(self, **extra: Any) -> Outcome:
        return Outcome(
            saga=self.saga,
            snapshot=self.store.load(OP),
            events=self.store.events(OP),
            ledger=self.provider.ledger.entries(),
            alerts=list(self.notifier.alerts),
            **extra,
        )


def provoke(cell: Cell, *, late_answer: bool = False) -> Outcome:
    """Run the engine so that the target meets ``cell.situation``; return what it left.

    For a call in flight, ``late_answer`` lets the hung call return the moment the engine
    journals it as in flight (so a wait for it is seen); otherwise it never returns in time.
    """
    run = _Run(cell)
    provider, s = run.provider, cell.situation
    if s is Situation.DEFINITE_FAILURE:
        provider.script(TARGET, *[Behaviour.FAIL] * FOREVER)
    elif s is Situation.REFUSED:
        provider.script(TARGET, Behaviour.REFUSE)
    elif s in (Situation.TIMEOUT, Situation.CRASH_BEFORE_PERSIST):
        provider.script(TARGET, *[Behaviour.LOSE] * FOREVER)
        provider.script_lookup(TARGET, *[Behaviour.ERROR] * FOREVER)
    elif s is Situation.CALL_IN_FLIGHT:
        provider.script(TARGET, Behaviour.HANG, *[Behaviour.LOSE] * FOREVER)
        provider.script_lookup(TARGET, *[Behaviour.ERROR] * FOREVER)
    elif s is Situation.VERIFY_NOT_APPLIED:
        provider.script(TARGET, *[Behaviour.LOSE] * FOREVER)
    elif s is Situation.VERIFY_TOO_SOON:
        provider.script(TARGET, Behaviour.APPLY_THEN_TIMEOUT)
    elif s is Situation.VERIFY_FAILED:
        provider.script(TARGET, Behaviour.APPLY_THEN_TIMEOUT)
        provider.script_lookup(TARGET, *[Behaviour.ERROR] * FOREVER)
    elif s in (Situation.LATER_STEP_FAILED, *_COMPENSATION):
        trigger = "pivot" if cell.phase is Phase.BEFORE_PIVOT else "tail"
        provider.script(trigger, Behaviour.REFUSE)
        undo = _COMPENSATION.get(s)
        if undo is not None:
            provider.script_compensation(TARGET, *[undo] * FOREVER)
    if s is Situation.CRASH_BEFORE_PERSIST:
        return _crash_then_recover(run)
    if s is Situation.DUPLICATE_REQUEST:
        return _twice(run)
    store: Any = run.store
    if s is Situation.CALL_IN_FLIGHT and late_answer:
        store = _OnRecord(run.store, EventKind.CALL_IN_FLIGHT, provider.release)
    try:
        with run.engine(store) as engine:
            engine.run(run.saga, operation_id=OP, input={"cell": cell.id})
    finally:
        provider.release()  # a hung call never outlives its cell
    return run.outcome()


_COMPENSATION = {
    Situation.COMPENSATION_FAILED: Behaviour.FAIL,
    Situation.COMPENSATION_REFUSED: Behaviour.REFUSE,
    Situation.COMPENSATION_UNKNOWN: Behaviour.ERROR,
}


def _crash_then_recover(run: _Run) -> Outcome:
    crash = CrashAt(FaultPoint.AFTER_CALL, step_id=TARGET, attempt=1)
    dying = run.engine(faults=crash, owner="dying")
    with contextlib.suppress(SimulatedCrash):
        dying.run(run.saga, operation_id=OP, input={"cell": run.cell.id})
    run.clock.advance(3600.0)  # the dead owner's lease is long over
    with run.engine(sagas=[run.saga], owner="survivor") as survivor:
        survivor.recover()
    return run.outcome()


def _twice(run: _Run) -> Outcome:
    with run.engine() as engine:
        engine.run(run.saga, operation_id=OP, input={"cell": run.cell.id})
        calls = len(run.provider.ledger.entries())
        again = engine.run(run.saga, operation_id=OP, input={"cell": run.cell.id})
    return run.outcome(duplicate=again, calls_before_duplicate=calls)
