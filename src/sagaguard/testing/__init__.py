"""Proving a saga safe to fail: fault injectors, a ledger of external calls, invariant checks,
and the fault matrix that ``sagaguard verify`` runs.

ledger = FileLedger(path="calls.jsonl")      # step code: ledger.record(ctx, "call")
engine = Engine(store=url, faults=CrashAt("after_call", step_id="charge", mode="kill"))
...                                          # run, crash, recover in a new process
assert check_invariants(store.load(op), store.events(op), ledger, saga.process) == []

report = verify(load_subject("shop.checkout:checkout"))   # the whole matrix, in seconds
assert report.passed, report.failed

The harness's names (``verify``, ``load_subject``, ``Subject``, ``World``, ...) are imported
on first use, so importing this package for a fault injector stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagaguard.engine.faults import SimulatedCrash
from sagaguard.lazy import lazy_exports
from sagaguard.testing.clock import FakeClock
from sagaguard.testing.faults import CrashAt, CrashMode, FaultPlan, Hit
from sagaguard.testing.invariants import Violation, check_invariants
from sagaguard.testing.ledger import FileLedger, Ledger, LedgerEntry, LedgerKind, MemoryLedger
from sagaguard.testing.provider import Behaviour, Effect, FakeProvider, StaleFencingTokenError
from sagaguard.vocabulary import FaultPoint

if TYPE_CHECKING:
    from sagaguard.testing.caller import FaultingCaller, InlineCaller
    from sagaguard.testing.harness import Report, replay_command, verify
    from sagaguard.testing.pytest_plugin import verify_tests
    from sagaguard.testing.scenario import Failure, Scenario, ScenarioKind, ScenarioResult
    from sagaguard.testing.subject import Subject, SubjectSource, load_subject
    from sagaguard.testing.world import Observable, World

_LAZY = {
    "FaultingCaller": "sagaguard.testing.caller",
    "InlineCaller": "sagaguard.testing.caller",
    "Report": "sagaguard.testing.harness",
    "replay_command": "sagaguard.testing.harness",
    "verify": "sagaguard.testing.harness",
    "verify_tests": "sagaguard.testing.pytest_plugin",
    "Failure": "sagaguard.testing.scenario",
    "Scenario": "sagaguard.testing.scenario",
    "ScenarioKind": "sagaguard.testing.scenario",
    "ScenarioResult": "sagaguard.testing.scenario",
    "Subject": "sagaguard.testing.subject",
    "SubjectSource": "sagaguard.testing.subject",
    "load_subject": "sagaguard.testing.subject",
    "Observable": "sagaguard.testing.world",
    "World": "sagaguard.testing.world",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "Behaviour",
    "CrashAt",
    "CrashMode",
    "Effect",
    "Failure",
    "FakeClock",
    "FakeProvider",
    "FaultPlan",
    "FaultPoint",
    "FaultingCaller",
    "FileLedger",
    "Hit",
    "InlineCaller",
    "Ledger",
    "LedgerEntry",
    "LedgerKind",
    "MemoryLedger",
    "Observable",
    "Report",
    "Scenario",
    "ScenarioKind",
    "ScenarioResult",
    "SimulatedCrash",
    "StaleFencingTokenError",
    "Subject",
    "SubjectSource",
    "Violation",
    "World",
    "check_invariants",
    "load_subject",
    "replay_command",
    "verify",
    "verify_tests",
]
