"""What ``sagaguard verify TARGET`` proves: a saga, the fakes it talks to, and its input.

TARGET is one of:

- a spec file: every step gets a simulated provider (:mod:`sagaguard.testing.simulated`);
- ``module:attribute`` naming a :class:`~sagaguard.engine.Saga` (its fakes are found among
  the objects whose methods are bound as its steps, and serve every scenario), a
  :class:`Subject`, or a function that returns either. A function is called once per
  scenario, so each scenario gets fresh fakes: the surest way, since then every effect in
  them belongs to that scenario's run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sagaguard.engine.saga import Saga
from sagaguard.exceptions import PlanError, SagaGuardError
from sagaguard.model import Process
from sagaguard.storage.payloads import JSONValue
from sagaguard.targets import import_attribute, is_spec_file_target
from sagaguard.testing.clock import FakeClock
from sagaguard.testing.simulated import simulate_providers
from sagaguard.testing.world import World

__all__ = ["Subject", "SubjectSource", "load_subject", "subject_source", "with_input"]

_KEEP: Any = object()


@dataclass(frozen=True)
class Subject:
    """A saga under proof, the fakes whose effects are checked, and the input of each run."""

    saga: Saga
    world: World = field(default_factory=World)
    input: JSONValue = None
    fresh: bool = True
    """The fakes serve one scenario's run alone (a function made them for it)."""


@dataclass(frozen=True)
class SubjectSource:
    """Where each scenario's :class:`Subject` comes from."""

    make: Callable[[FakeClock], Subject]
    process: Process
    verify_bound: frozenset[str]
    """The steps with verify code bound: the plan the proof compares with is made so."""
    mode: str
    """``code`` (the team's step code) or ``spec`` (simulated providers)."""
    target: str
    shared: bool = False
    """Every scenario's run talks to the same fakes: their state carries from one scenario
    to the next, which a step that reads it (a stock count, "is this email taken") sees."""


def load_subject(
    target: str | Path, *, input: JSONValue = _KEEP, code: bool = False
) -> SubjectSource:
    """The subject ``target`` names; one-line ``SagaGuardError`` when it cannot be used.

    ``input``, when given, is the input of every run (else the subject's own, or None).
    ``code``: a spec file's own bound code (``handler``, ``compensate``, ``verify``) runs,
    instead of simulated providers.
    """
    text = str(target)
    if is_spec_file_target(target) and code:
        from sagaguard.engine.loading import load_saga

        source = subject_source(load_saga(text), target=text)
    elif is_spec_file_target(target):
        from sagaguard.spec import load_spec

        source = _simulated(load_spec(text), text)
    else:
        source = subject_source(import_attribute(text), target=text)
    return source if input is _KEEP else with_input(source, input)


def with_input(source: SubjectSource, value: JSONValue) -> SubjectSource:
    """``source`` whose runs all take ``value`` as their input."""
    make = source.make
    return dataclasses.replace(
        source, make=lambda clock: dataclasses.replace(make(clock), input=value)
    )


def subject_source(found: object, *, target: str) -> SubjectSource:
    """The subject a Saga, a :class:`Subject`, a Process or a function returning one is."""
    text = target
    if isinstance(found, Process):
        return _simulated(found, text)
    if isinstance(found, Saga | Subject):
        shared = _as_subject(found, fresh=False)
        return _source(lambda clock: shared, text)
    if callable(found):
        factory = found
        return _source(lambda clock: _as_subject(_call(factory, text), fresh=True), text)
    raise PlanError(
        f"{text}: is of type {type(found).__name__!r}, not a Saga, a Subject, a Process or a "
        "function returning a Saga or a Subject"
    )


def _simulated(process: Process, target: str) -> SubjectSource:
    def make(clock: FakeClock) -> Subject:
        saga, world = simulate_providers(process, clock=clock)
        return Subject(saga=saga, world=world, fresh=True)

    bound = frozenset(s.id for s in process.steps if s.verify_is_code)
    return SubjectSource(make=make, process=process, verify_bound=bound, mode="spec", target=target)


def _source(make: Callable[[FakeClock], Subject], target: str) -> SubjectSource:
    first = make(FakeClock())
    saga = first.saga
    try:
        saga.check_runnable()
        process = saga.process
        bound = frozenset(s.id for s in process.steps if saga.handlers(s.id).verify is not None)
    except SagaGuardError as exc:
        raise PlanError(f"{target}: {exc}") from None
    return SubjectSource(
        make=make,
        process=process,
        verify_bound=bound,
        mode="code",
        target=target,
        shared=make(FakeClock()) is first,
    )


def _call(factory: Callable[[], Any], target: str) -> Any:
    try:
        return factory()
    except SagaGuardError as exc:
        raise PlanError(f"{target}: {exc}") from None
    except Exception as exc:
        # The team's factory failed: their code, reported in one line.
        raise PlanError(f"{target}: calling it failed: {type(exc).__name__}: {exc}") from exc


def _as_subject(found: Any, *, fresh: bool) -> Subject:
    if isinstance(found, Subject):
        return found
    if isinstance(found, Saga):
        return Subject(saga=found, world=World.of_saga(found), fresh=fresh)
    raise PlanError(
        f"returned a {type(found).__name__!r}, not a Saga or a sagaguard.testing.Subject"
    )
