"""What the outside world holds after a run, checked against what the journal says.

The journal can be right about itself and wrong about the world: an "idempotent" step that
never passes its key charges twice on a retry, a compensation that needs an id the step
never returned undoes nothing, a verify that looks up the wrong key says "not applied".
Fakes that keep their effects (:class:`~sagaguard.testing.provider.FakeProvider`, or a
team's own with an ``effects()`` method) let the harness see that. Effects are told apart
by the idempotency key they were made under: ``{operation_id}:{step_id}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol, runtime_checkable

from sagaguard.engine.saga import Saga
from sagaguard.model import Process
from sagaguard.storage.base import RunSnapshot, idempotency_key
from sagaguard.testing.invariants import Violation
from sagaguard.vocabulary import StepStatus

__all__ = ["EffectRecord", "Observable", "World"]

_NO_EFFECT = (StepStatus.PENDING, StepStatus.FAILED, StepStatus.COMPENSATED)


class EffectRecord(Protocol):
    """One effect a fake holds (or held): the key it was made under, and whether it is undone."""

    @property
    def idempotency_key(self) -> str | None:
        """The key the step passed when it made the effect (None: it passed none)."""
        ...

    @property
    def undone(self) -> bool:
        """True once a compensation undid it."""
        ...


@runtime_checkable
class Observable(Protocol):
    """A fake whose effects the harness can read."""

    def effects(self) -> Sequence[EffectRecord]:
        """Every effect it ever made, undone ones included, oldest first."""
        ...


class World:
    """The fakes one scenario's steps talk to."""

    def __init__(self, fakes: Iterable[Observable] = ()) -> None:
        self.fakes: tuple[Observable, ...] = tuple(dict.fromkeys(fakes))

    @classmethod
    def of_saga(cls, saga: Saga) -> World:
        """The observable fakes whose methods are bound directly as the saga's step code."""
        found: list[Observable] = []
        for step in saga.process.steps:
            handlers = saga.handlers(step.id)
            for fn in (handlers.call, handlers.compensate, handlers.verify):
                owner = getattr(fn, "__self__", None)
                if owner is not None and isinstance(owner, Observable):
                    found.append(owner)
        return cls(found)

    def _effects(self) -> list[EffectRecord]:
        return [effect for fake in self.fakes for effect in fake.effects()]

    def live(self, key: str) -> int | None:
        """How many live effects the fakes hold under ``key``; None when there are no fakes."""
        if not self.fakes:
            return None
        return sum(1 for e in self._effects() if e.idempotency_key == key and not e.undone)

    def check(self, snapshot: RunSnapshot, process: Process, *, fresh: bool) -> list[Violation]:
        """Every way the world disagrees with the run's journal.

        ``fresh``: the fakes served this run alone, so an effect under a key that is no step's
        key was made by a step that did not pass its idempotency key.
        """
        if not self.fakes:
            return []
        op = snapshot.run.operation_id
        effects = self._effects()
        out: list[Violation] = []
        keys = {idempotency_key(op, step.id): step.id for step in process.steps}
        if fresh:
            strays = {e.idempotency_key for e in effects} - set(keys)
            for key in sorted(strays, key=str):
                how = "without an idempotency key" if key is None else f"under {key!r}"
                out.append(
                    Violation(
                        1,
                        op,
                        None,
                        f"the provider holds an effect made {how}, not under a step's "
                        "ctx.idempotency_key: it cannot recognise a retry of that step",
                    )
                )
        for key, step_id in keys.items():
            made = [e for e in effects if e.idempotency_key == key]
            if not made:
                continue
            live = sum(1 for e in made if not e.undone)
            status = snapshot.step(step_id).status
            if live > 1:
                out.append(
                    Violation(1, op, step_id, f"{live} live effects under {key}: done {live} times")
                )
            if status in _NO_EFFECT and live:
                out.append(
                    Violation(
                        2 if status is StepStatus.COMPENSATED else 8,
                        op,
                        step_id,
                        f"the journal says {status.value}, but the provider still holds its effect",
                    )
                )
            if status is StepStatus.COMPLETED and not live:
                out.append(
                    Violation(
                        2,
                        op,
                        step_id,
                        "the journal says completed, but its effect was undone without a "
                        "compensation of this step",
                    )
                )
        return out
