"""The demo's two incidents from the guide, played on a real journal.

1. *The answer is lost*: the payment provider charges the card, then its answer times out.
   The engine records the outcome as unknown, asks the provider (verify, by idempotency key),
   finds the charge and completes the step without charging again.
2. *Delivery cannot be booked*: the carrier refuses, every bounded retry too, so the run rolls
   back in reverse order: the payment is refunded, the stock released, the order cancelled.

:func:`play` runs one scenario through the real :class:`~sagaguard.engine.Engine` and reports
each journal event and each provider effect the moment it is committed or made, so the demo
shows the write-ahead order (``started`` committed before the call) as it happens. Each
scenario checks its own claims against the provider ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sagaguard.demo.providers import Entry, World
from sagaguard.demo.saga import build_saga
from sagaguard.engine import Engine, RecordingNotifier
from sagaguard.exceptions import RunNotFoundError
from sagaguard.storage.base import (
    AlertBacklog,
    Claim,
    CreateResult,
    Event,
    JournalStore,
    NewRun,
    OutboxAlert,
    RunRecord,
    RunSnapshot,
    RunStatus,
    StoreInfo,
    Transition,
)
from sagaguard.vocabulary import EventKind

__all__ = ["SCENARIOS", "Check", "JournalTap", "Played", "Scenario", "play"]


@dataclass(frozen=True, slots=True)
class Check:
    """One claim the demo makes, and whether the ledger and journal bear it out."""

    claim: str
    holds: bool


@dataclass(frozen=True, slots=True)
class Played:
    """What one scenario left behind."""

    scenario: Scenario
    operation_id: str
    snapshot: RunSnapshot
    events: list[Event]
    ledger: list[Entry]
    checks: list[Check]

    @property
    def ok(self) -> bool:
        """True when every claim holds."""
        return all(check.holds for check in self.checks)


@dataclass(frozen=True, slots=True)
class Scenario:
    """One incident: its story, the input that asks the providers to misbehave, its claims."""

    number: int
    title: str
    story: str
    operation_id: str
    input: dict[str, Any]
    checks: Callable[[RunSnapshot, list[Event], list[Entry]], list[Check]] = field(repr=False)


def _count(ledger: list[Entry], system: str, action: str) -> int:
    return sum(1 for e in ledger if e.system == system and e.action == action)


def _lost_answer_checks(
    snapshot: RunSnapshot, events: list[Event], ledger: list[Entry]
) -> list[Check]:
    kinds = [e.kind for e in events if e.step_id == "charge_payment"]
    return [
        Check("the run completed", snapshot.run.status is RunStatus.COMPLETED),
        Check(
            "the charge's outcome was unknown, then verified as applied",
            EventKind.OUTCOME_UNKNOWN in kinds and EventKind.VERIFIED_APPLIED in kinds,
        ),
        Check("the card was charged exactly once", _count(ledger, "psp", "charge") == 1),
        Check("nothing was refunded", _count(ledger, "psp", "refund") == 0),
    ]


def _rollback_checks(
    snapshot: RunSnapshot, events: list[Event], ledger: list[Entry]
) -> list[Check]:
    undone = [e.step_id for e in events if e.kind == EventKind.STEP_COMPENSATED]
    bookings = [
        e for e in events if e.kind == EventKind.STEP_STARTED and e.step_id == "book_delivery"
    ]
    return [
        Check("the run was compensated", snapshot.run.status is RunStatus.COMPENSATED),
        Check("delivery was tried 3 times, then given up", len(bookings) == 3),
        Check(
            "undone in reverse order: payment, stock, order",
            undone == ["charge_payment", "reserve_stock", "create_order"],
        ),
        Check(
            "one charge and one refund",
            _count(ledger, "psp", "charge") == 1 and _count(ledger, "psp", "refund") == 1,
        ),
        Check(
            "one reservation and one release",
            _count(ledger, "inventory", "reserve") == 1
            and _count(ledger, "inventory", "release") == 1,
        ),
    ]


_ORDER = {"total_cents": 4990, "email": "ada@example.com"}

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        number=1,
        title="The card is charged, but the answer is lost",
        story=(
            "The payment provider takes the money, then its answer times out. A blind "
            "retry would charge the card a second time. The engine asks the provider "
            "instead, under the same idempotency key."
        ),
        operation_id="order-1001",
        input={"order": _ORDER, "simulate": {"charge_payment": ["answer_lost"]}},
        checks=_lost_answer_checks,
    ),
    Scenario(
        number=2,
        title="Delivery cannot be booked",
        story=(
            "The carrier refuses every booking (a definite failure, nothing booked). "
            "After its bounded retries the run rolls back, latest step first: refund "
            "the payment, release the stock, cancel the order."
        ),
        operation_id="order-1002",
        input={"order": _ORDER, "simulate": {"book_delivery": "carrier_down"}},
        checks=_rollback_checks,
    ),
)


def play(
    scenario: Scenario,
    *,
    store: JournalStore,
    on_event: Callable[[Event], None],
    on_effect: Callable[[Entry], None],
) -> Played:
    """Run one scenario on ``store``, reporting events and effects as they happen."""
    operation_id = _free_operation_id(store, scenario.operation_id)
    world = World(on_record=on_effect)
    tap = JournalTap(store=store, on_event=on_event)
    with Engine(store=tap, notifier=RecordingNotifier(), owner="demo-worker") as engine:
        snapshot = engine.run(build_saga(world), operation_id=operation_id, input=scenario.input)
    events = store.events(operation_id)
    ledger = world.ledger.entries()
    return Played(
        scenario=scenario,
        operation_id=operation_id,
        snapshot=snapshot,
        events=events,
        ledger=ledger,
        checks=scenario.checks(snapshot, events, ledger),
    )


def _free_operation_id(store: JournalStore, wanted: str) -> str:
    # A reused demo journal already holds order-1001: the same id would return that run.
    candidate, n = wanted, 1
    while True:
        try:
            store.load(candidate)
        except RunNotFoundError:
            return candidate
        n += 1
        candidate = f"{wanted}-{n}"


class JournalTap:
    """A journal store that reports every event right after the write that committed it.

    Wraps another store and delegates every call; after each write it reads the run's new
    events and hands them to ``on_event`` in order.
    """

    def __init__(self, *, store: JournalStore, on_event: Callable[[Event], None]) -> None:
        self._store = store
        self._on_event = on_event
        self._seen: dict[str, int] = {}
        self.url = store.url

    def _report(self, operation_id: str) -> None:
        for event in self._store.events(operation_id):
            if event.seq > self._seen.get(operation_id, 0):
                self._seen[operation_id] = event.seq
                self._on_event(event)

    def create_run(
        self,
        new: NewRun,
        *,
        owner: str | None,
        now: float,
        lease_s: float,
        transitions: Sequence[Transition] = (),
    ) -> CreateResult:
        """Delegate, then report."""
        created = self._store.create_run(
            new, owner=owner, now=now, lease_s=lease_s, transitions=transitions
        )
        self._report(new.operation_id)
        return created

    def load(self, operation_id: str) -> RunSnapshot:
        """Delegate."""
        return self._store.load(operation_id)

    def claim(self, operation_id: str, *, owner: str, now: float, lease_s: float) -> Claim:
        """Delegate, then report."""
        claim = self._store.claim(operation_id, owner=owner, now=now, lease_s=lease_s)
        self._report(operation_id)
        return claim

    def claim_expired(
        self,
        *,
        owner: str,
        now: float,
        lease_s: float,
        limit: int = 10,
        processes: Collection[tuple[str, str]] | None = None,
    ) -> list[Claim]:
        """Delegate, then report."""
        claims = self._store.claim_expired(
            owner=owner, now=now, lease_s=lease_s, limit=limit, processes=processes
        )
        for claim in claims:
            self._report(claim.operation_id)
        return claims

    def record(
        self,
        claim: Claim,
        transitions: Sequence[Transition],
        *,
        now: float,
        lease_s: float,
        release: bool = False,
    ) -> Claim:
        """Delegate, then report."""
        renewed = self._store.record(claim, transitions, now=now, lease_s=lease_s, release=release)
        self._report(claim.operation_id)
        return renewed

    def heartbeat(self, claim: Claim, *, now: float, lease_s: float) -> Claim:
        """Delegate."""
        return self._store.heartbeat(claim, now=now, lease_s=lease_s)

    def release(self, claim: Claim, *, now: float) -> None:
        """Delegate, then report."""
        self._store.release(claim, now=now)
        self._report(claim.operation_id)

    def list_runs(self, *, status: RunStatus | None = None, limit: int = 100) -> list[RunRecord]:
        """Delegate."""
        return self._store.list_runs(status=status, limit=limit)

    def load_many(self, operation_ids: Sequence[str]) -> list[RunSnapshot]:
        """Delegate."""
        return self._store.load_many(operation_ids)

    def count_runs(self) -> dict[RunStatus, int]:
        """Delegate."""
        return self._store.count_runs()

    def oldest_run(self, *, status: RunStatus) -> RunRecord | None:
        """Delegate."""
        return self._store.oldest_run(status=status)

    def alert_backlog(self) -> AlertBacklog:
        """Delegate."""
        return self._store.alert_backlog()

    def claim_due_alerts(self, *, now: float, lease_s: float, limit: int = 10) -> list[OutboxAlert]:
        """Delegate."""
        return self._store.claim_due_alerts(now=now, lease_s=lease_s, limit=limit)

    def settle_alert(
        self, alert_id: str, *, now: float, error: str | None = None, retry_at: float = 0.0
    ) -> None:
        """Delegate, then report (the alert's run is one of those already seen)."""
        self._store.settle_alert(alert_id, now=now, error=error, retry_at=retry_at)
        for operation_id in list(self._seen):
            self._report(operation_id)

    def wait_for_work(self, timeout_s: float) -> bool:
        """Delegate."""
        return self._store.wait_for_work(timeout_s)

    def prune(self, *, older_than: float, statuses: Collection[RunStatus] = ()) -> int:
        """Delegate."""
        return self._store.prune(older_than=older_than, statuses=statuses)

    def events(self, operation_id: str) -> list[Event]:
        """Delegate."""
        return self._store.events(operation_id)

    def info(self) -> StoreInfo:
        """Delegate."""
        return self._store.info()

    def close(self) -> None:
        """Leave the wrapped store open: its owner closes it."""
