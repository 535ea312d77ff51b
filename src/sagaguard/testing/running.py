"""Running one scenario against the real engine, and judging what it left behind.

Every scenario gets a fresh journal, fresh fakes (when its subject makes them), a fake
clock and a seeded random source, so it replays exactly from its id and seed. The first
worker runs the saga; a worker that crashes is gone, and a fresh engine on the same journal
recovers the run once its lease has expired (or the client sends the operation_id again,
when the scenario says so), until the run is over or waits for a person. Then the outbox
is drained and the run is judged: every invariant of DESIGN.md section 4, the end the plan
promised, the world against the journal, and whatever else the scenario is about.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from random import Random

from sagaguard.engine.alerts import RecordingNotifier
from sagaguard.engine.executor import Engine
from sagaguard.engine.faults import SimulatedCrash
from sagaguard.exceptions import OperationConflictError, StaleOwnerError
from sagaguard.storage.base import JournalStore, RunSnapshot
from sagaguard.testing.caller import FaultingCaller
from sagaguard.testing.clock import FakeClock
from sagaguard.testing.compare import compare, observe
from sagaguard.testing.injector import ScheduledFaults
from sagaguard.testing.invariants import Violation, check_invariants, rollback_order, stale_writes
from sagaguard.testing.ledger import MemoryLedger
from sagaguard.testing.scenario import Duplicate, Failure, Observed, Scenario, ScenarioResult
from sagaguard.testing.stores import ScenarioStores
from sagaguard.testing.subject import Subject, SubjectSource
from sagaguard.vocabulary import RunStatus

__all__ = ["LEASE_S", "MAX_RESTARTS", "run_scenario"]

LEASE_S = 30.0
"""Every worker's lease: a dead worker's run is taken up once it has run out."""
MAX_RESTARTS = 50
"""A run still not settled after this many fresh workers is reported as never settling."""

_RUNS = itertools.count(1)


@dataclass
class _Scene:
    """One scenario's run: its subject, journal, clock and everything the workers share."""

    scenario: Scenario
    subject: Subject
    store: JournalStore
    clock: FakeClock
    seed: int
    operation_id: str
    notifier: RecordingNotifier = field(default_factory=RecordingNotifier)
    failures: list[Failure] = field(default_factory=list)
    workers: int = 0
    restarts: int = 0
    stale_owner: str | None = None
    stale_fenced: bool = False

    def __post_init__(self) -> None:
        self.ledger = MemoryLedger(clock=self.clock)
        self.caller = FaultingCaller(
            saga=self.subject.saga,
            faults=self.scenario.faults,
            ledger=self.ledger,
            world=self.subject.world,
        )
        self.faults = ScheduledFaults(
            self.scenario.faults, caller=self.caller, on_concurrent_start=self._second_start
        )
        self.rng = Random(f"{self.seed}:{self.scenario.id}")
        process = self.subject.saga.process
        longest = max(process.timeout_for(step) for step in process.steps)
        # Long enough for any lease this engine sets (a call's timeout and a backoff on top).
        self.gap_s = LEASE_S + longest + process.defaults.backoff_max + 1.0

    def engine(self) -> Engine:
        self.workers += 1
        return Engine(
            store=self.store,
            sagas=(self.subject.saga,),
            clock=self.clock,
            sleep=self.clock.sleep,
            faults=self.faults,
            notifier=self.notifier,
            owner=f"worker-{self.workers}",
            lease_s=LEASE_S,
            rng=self.rng,
            caller=self.caller,
        )

    def start(self, engine: Engine) -> RunSnapshot:
        return engine.run(
            self.subject.saga, operation_id=self.operation_id, input=self.subject.input
        )

    def work(self, action: Callable[[Engine], object], *, engine: Engine | None = None) -> None:
        """Let one worker act; a crash ends it, any other error of the engine is reported."""
        engine = engine or self.engine()
        try:
            action(engine)
        except SimulatedCrash:
            pass
        except StaleOwnerError:
            if engine.owner != self.stale_owner:
                self.failures.append(Failure("ownership", None, f"{engine.owner} was fenced off"))
            self.stale_fenced = True
        except Exception as exc:  # noqa: BLE001 - what the engine raised is the finding
            self.failures.append(
                Failure("engine", None, f"{engine.owner} raised {type(exc).__name__}: {exc}")
            )
        finally:
            engine.close()

    def _second_start(self) -> None:
        """A second worker starts the run while its owner waits before a call."""
        before = len(self.ledger)
        second = self.engine()
        try:
            snapshot = self.start(second)
        except Exception as exc:  # noqa: BLE001 - what the engine raised is the finding
            self.failures.append(
                Failure("duplicate", None, f"the second start raised {type(exc).__name__}: {exc}")
            )
            return
        finally:
            second.close()
        if len(self.ledger) != before:
            self.failures.append(
                Failure(
                    "duplicate", None, "the second start called step code of a run it does not own"
                )
            )
        if snapshot.run.status is not RunStatus.RUNNING:
            self.failures.append(
                Failure(
                    "duplicate",
                    None,
                    f"the second start got the run {snapshot.run.status.value}, "
                    "not running under its owner",
                )
            )

    def take_over(self, owner: str) -> None:
        """The first owner's lease runs out while it waits; a second owner recovers the run."""
        self.stale_owner = owner
        self.clock.advance(self.gap_s)
        self.work(lambda engine: engine.recover())


def run_scenario(
    source: SubjectSource,
    scenario: Scenario,
    *,
    stores: ScenarioStores,
    seed: int,
) -> ScenarioResult:
    """Run ``scenario`` in a fresh store and report every way its run went wrong."""
    started = time.perf_counter()
    clock = FakeClock()
    subject = source.make(clock)
    store = stores.open(scenario.id)
    scene = _Scene(
        scenario=scenario,
        subject=subject,
        store=store,
        clock=clock,
        seed=seed,
        # Fakes shared by every scenario keep effects apart by key: one operation_id a run.
        operation_id=scenario.id if subject.fresh else f"{scenario.id}-{next(_RUNS)}",
    )
    observed = None
    try:
        _play(scene)
        observed = _judge(scene)
    finally:
        stores.done(store, keep=bool(scene.failures))
    return ScenarioResult(
        scenario=scenario,
        seed=seed,
        failures=tuple(scene.failures),
        observed=observed,
        restarts=scene.restarts,
        seconds=time.perf_counter() - started,
        operation_id=scene.operation_id,
    )


def _play(scene: _Scene) -> None:
    scenario = scene.scenario
    if scenario.duplicate is Duplicate.CONCURRENT:
        _start_together(scene)
    else:
        first = scene.engine()
        if scenario.takeover_at is not None:
            step_id, point = scenario.takeover_at
            owner = first.owner
            scene.faults.hooks[(point, step_id, 1)] = lambda: scene.take_over(owner)
        scene.work(scene.start, engine=first)
    for _ in range(MAX_RESTARTS):
        if not scene.store.load(scene.operation_id).run.status.active and not (
            scene.faults.resubmit
        ):
            break
        scene.clock.advance(scene.gap_s)
        scene.restarts += 1
        if scene.faults.resubmit:
            scene.faults.resubmit = False  # the client sends the operation_id again
            scene.work(scene.start)
        else:
            scene.work(lambda engine: engine.recover())
    else:
        scene.failures.append(
            Failure("engine", None, f"the run never settled in {MAX_RESTARTS} restarts")
        )
    if scenario.duplicate is Duplicate.SEQUENTIAL:
        _start_again(scene)
    if scenario.takeover_at is not None:
        _check_fenced(scene)


def _start_together(scene: _Scene) -> None:
    """Two workers start the same operation_id at once, lined up by a barrier."""
    barrier = threading.Barrier(2)
    engines = [scene.engine(), scene.engine()]

    def start(engine: Engine) -> None:
        barrier.wait()
        scene.work(scene.start, engine=engine)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _start_again(scene: _Scene) -> None:
    """The client sends the operation_id again: the run comes back, nothing runs twice."""
    store, op = scene.store, scene.operation_id
    before, events, calls = store.load(op), len(store.events(op)), len(scene.ledger)
    again = scene.engine()
    try:
        snapshot = scene.start(again)
        if snapshot.run != before.run or snapshot.steps != before.steps:
            scene.failures.append(
                Failure("duplicate", None, "the same operation_id again changed the run")
            )
        try:
            again.run(scene.subject.saga, operation_id=op, input={"another": "input"})
        except OperationConflictError:
            pass
        else:
            scene.failures.append(
                Failure("duplicate", None, "another input under the same operation_id was taken")
            )
    except Exception as exc:  # noqa: BLE001 - what the engine raised is the finding
        scene.failures.append(
            Failure("duplicate", None, f"the repeated request raised {type(exc).__name__}: {exc}")
        )
    finally:
        again.close()
    if len(scene.ledger) != calls or len(store.events(op)) != events:
        scene.failures.append(
            Failure("duplicate", None, "the same operation_id again ran step code or wrote")
        )


def _check_fenced(scene: _Scene) -> None:
    """4: after the takeover the stale owner wrote nothing, and its next write was refused."""
    stale = scene.stale_owner
    if stale is None:
        scene.failures.append(
            Failure("ownership", scene.scenario.step, "the run never reached the takeover point")
        )
        return
    scene.failures.extend(_failures(stale_writes(scene.store.events(scene.operation_id), stale)))
    if not scene.stale_fenced:
        scene.failures.append(
            Failure(
                "invariant 4", None, f"{stale} went on after the takeover without being refused"
            )
        )


def _failures(violations: Iterable[Violation]) -> list[Failure]:
    return [Failure(f"invariant {v.invariant}", v.step_id, v.message) for v in violations]


def _judge(scene: _Scene) -> Observed:
    """Drain the outbox, then check invariants, the promised end and the world."""
    scene.clock.advance(scene.gap_s)
    scene.work(lambda engine: engine.deliver_alerts())
    process = scene.subject.saga.process
    op = scene.operation_id
    snapshot = scene.store.load(op)
    events = scene.store.events(op)
    entries = scene.ledger.entries()
    found = check_invariants(
        snapshot, events, entries, process, alerts=scene.notifier.alerts, settled=True
    )
    scene.failures.extend(_failures([*found, *rollback_order(events, entries)]))
    for violation in scene.subject.world.check(snapshot, process, fresh=scene.subject.fresh):
        scene.failures.append(Failure("world", violation.step_id, violation.message))
    for step_id, lie in scene.caller.lies:
        scene.failures.append(Failure("verify", step_id, lie))
    observed = observe(snapshot, entries, scene.notifier.alerts)
    scene.failures.extend(compare(scene.scenario.expected, observed, [s.id for s in process.steps]))
    return observed
