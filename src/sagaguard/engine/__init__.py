"""The saga engine: define steps in code, run them durably, recover from every partial failure."""

from __future__ import annotations

from sagaguard.engine.alerts import (
    Alert,
    LoggingNotifier,
    Notifier,
    RecordingNotifier,
    WebhookNotifier,
)
from sagaguard.engine.context import Applied, NotApplied, StepContext
from sagaguard.engine.executor import Engine
from sagaguard.engine.faults import FaultInjector, NoFaults, SimulatedCrash
from sagaguard.engine.resolution import Resolution
from sagaguard.engine.saga import Saga, StepDefinition
from sagaguard.vocabulary import AlertKind, FaultPoint

__all__ = [
    "Alert",
    "AlertKind",
    "Applied",
    "Engine",
    "FaultInjector",
    "FaultPoint",
    "LoggingNotifier",
    "NoFaults",
    "NotApplied",
    "Notifier",
    "RecordingNotifier",
    "Resolution",
    "Saga",
    "SimulatedCrash",
    "StepContext",
    "StepDefinition",
    "WebhookNotifier",
]
