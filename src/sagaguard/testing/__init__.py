"""Proving a saga safe to fail: fault injectors, a ledger of external calls, invariant checks.

ledger = FileLedger(path="calls.jsonl")      # step code: ledger.record(ctx, "call")
engine = Engine(store=url, faults=CrashAt("after_call", step_id="charge", mode="kill"))
...                                          # run, crash, recover in a new process
assert check_invariants(store.load(op), store.events(op), ledger, saga.process) == []
"""

from __future__ import annotations

from sagaguard.engine.faults import SimulatedCrash
from sagaguard.testing.clock import FakeClock
from sagaguard.testing.faults import CrashAt, CrashMode, FaultPlan, Hit
from sagaguard.testing.invariants import Violation, check_invariants
from sagaguard.testing.ledger import FileLedger, Ledger, LedgerEntry, LedgerKind, MemoryLedger
from sagaguard.testing.provider import Behaviour, Effect, FakeProvider, StaleFencingTokenError
from sagaguard.vocabulary import FaultPoint

__all__ = [
    "Behaviour",
    "CrashAt",
    "CrashMode",
    "Effect",
    "FakeClock",
    "FakeProvider",
    "FaultPlan",
    "FaultPoint",
    "FileLedger",
    "Hit",
    "Ledger",
    "LedgerEntry",
    "LedgerKind",
    "MemoryLedger",
    "SimulatedCrash",
    "StaleFencingTokenError",
    "Violation",
    "check_invariants",
]
