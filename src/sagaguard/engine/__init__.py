"""The saga engine: define steps in code, run them durably, recover from every partial failure.

Names are imported on first use (:mod:`sagaguard.lazy`): ``from sagaguard.engine import
Resolution`` does not load the executor, and a plan-only command never loads the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sagaguard.lazy import lazy_exports

if TYPE_CHECKING:
    from sagaguard.engine.alerts import (
        Alert,
        LoggingNotifier,
        Notifier,
        RecordingNotifier,
        WebhookNotifier,
    )
    from sagaguard.engine.calls import Call, Caller, Outcome, OutcomeKind, ThreadCaller
    from sagaguard.engine.context import Applied, NotApplied, StepContext
    from sagaguard.engine.executor import Engine
    from sagaguard.engine.faults import FaultInjector, NoFaults, SimulatedCrash
    from sagaguard.engine.resolution import Resolution
    from sagaguard.engine.results import RunResult
    from sagaguard.engine.saga import Saga, StepDefinition
    from sagaguard.engine.worker import Worker, WorkerStats
    from sagaguard.vocabulary import AlertKind, Encounter, FaultPoint

__all__ = [
    "Alert",
    "AlertKind",
    "Applied",
    "Call",
    "Caller",
    "Encounter",
    "Engine",
    "FaultInjector",
    "FaultPoint",
    "LoggingNotifier",
    "NoFaults",
    "NotApplied",
    "Notifier",
    "Outcome",
    "OutcomeKind",
    "RecordingNotifier",
    "Resolution",
    "RunResult",
    "Saga",
    "SimulatedCrash",
    "StepContext",
    "StepDefinition",
    "ThreadCaller",
    "WebhookNotifier",
    "Worker",
    "WorkerStats",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Alert": "sagaguard.engine.alerts",
        "LoggingNotifier": "sagaguard.engine.alerts",
        "Notifier": "sagaguard.engine.alerts",
        "RecordingNotifier": "sagaguard.engine.alerts",
        "WebhookNotifier": "sagaguard.engine.alerts",
        "Call": "sagaguard.engine.calls",
        "Caller": "sagaguard.engine.calls",
        "Outcome": "sagaguard.engine.calls",
        "OutcomeKind": "sagaguard.engine.calls",
        "ThreadCaller": "sagaguard.engine.calls",
        "Applied": "sagaguard.engine.context",
        "NotApplied": "sagaguard.engine.context",
        "StepContext": "sagaguard.engine.context",
        "Engine": "sagaguard.engine.executor",
        "FaultInjector": "sagaguard.engine.faults",
        "NoFaults": "sagaguard.engine.faults",
        "SimulatedCrash": "sagaguard.engine.faults",
        "Resolution": "sagaguard.engine.resolution",
        "RunResult": "sagaguard.engine.results",
        "Saga": "sagaguard.engine.saga",
        "StepDefinition": "sagaguard.engine.saga",
        "Worker": "sagaguard.engine.worker",
        "WorkerStats": "sagaguard.engine.worker",
        "AlertKind": "sagaguard.vocabulary",
        "Encounter": "sagaguard.vocabulary",
        "FaultPoint": "sagaguard.vocabulary",
    },
)
