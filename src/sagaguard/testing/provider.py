"""A fake external system for fault tests: scripted answers, real effects, a ledger of calls.

A :class:`FakeProvider` stands in for a payment provider, a warehouse or a mailer. Its three
methods are a step's call, compensation and verify, ready to bind::

    psp = FakeProvider("psp", honours_keys=False)            # a PSP that charges twice
    step = saga.step(changes=["payment"], idempotent="no")(psp.call)
    step.compensate(psp.compensate)
    step.verify(psp.lookup)
    psp.script("charge", Behaviour.APPLY_THEN_TIMEOUT)       # charges, then the answer is lost

Every call is appended to a :class:`~sagaguard.testing.ledger.Ledger` (with its idempotency
key and fencing token) before anything else happens, so the invariant checks see each call
that may have had an effect; the provider also keeps the effects it holds, so a test can ask
what the world looks like (``live_effects()``), not only what the journal believes.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sagaguard.engine.context import Applied, NotApplied, StepContext
from sagaguard.exceptions import StepFailed
from sagaguard.testing.ledger import Ledger, LedgerKind, MemoryLedger

__all__ = ["Behaviour", "Effect", "FakeProvider", "StaleFencingTokenError"]


class Behaviour(StrEnum):
    """How the provider answers one call."""

    OK = "ok"
    """Apply the effect (or find it, under a known key) and answer."""
    FAIL = "fail"
    """A definite failure a repeat may fix: nothing changes (``StepFailed``)."""
    REFUSE = "refuse"
    """A refusal a repeat cannot change, e.g. a decline (``StepFailed(retry=False)``)."""
    APPLY_THEN_TIMEOUT = "apply_then_timeout"
    """Apply the effect, then lose the answer (``TimeoutError``): the guide's double charge."""
    LOSE = "lose"
    """Change nothing and never answer (``TimeoutError``)."""
    ERROR = "error"
    """Change nothing and break the connection (``ConnectionError``): an unknown outcome."""
    HANG = "hang"
    """Block until :meth:`FakeProvider.release` (or its timeout), then behave as ``OK``."""


class StaleFencingTokenError(Exception):
    """The provider refused a caller whose fencing token is older than one it already saw."""


@dataclass
class Effect:
    """One effect the provider holds: a charge, a reservation, a sent message."""

    effect_id: str
    operation_id: str
    step_id: str
    idempotency_key: str
    result: dict[str, Any]
    created_at: float
    undone: bool = False


@dataclass
class _Script:
    calls: deque[Behaviour] = field(default_factory=deque)
    compensations: deque[Behaviour] = field(default_factory=deque)
    lookups: deque[Behaviour] = field(default_factory=deque)


class FakeProvider:
    """A scriptable external system that records every call in a ledger.

    ``honours_keys``: a repeated call under a known idempotency key returns the existing effect
    instead of applying a second one (what ``idempotent: yes`` promises). ``lookup_lag_s``: a
    lookup does not see an effect younger than this (a provider whose reads lag its writes).
    ``checks_fencing``: a call carrying a fencing token lower than one already seen for its run
    is refused, as a provider that stores the token can refuse a stale owner.
    """

    def __init__(
        self,
        name: str,
        *,
        honours_keys: bool = True,
        lookup_lag_s: float = 0.0,
        checks_fencing: bool = False,
        ledger: Ledger | None = None,
        clock: Callable[[], float] | None = None,
        hang_timeout_s: float = 60.0,
        id_field: str | None = None,
    ) -> None:
        self.name = name
        self.honours_keys = honours_keys
        self.lookup_lag_s = lookup_lag_s
        self.checks_fencing = checks_fencing
        self.ledger = ledger if ledger is not None else MemoryLedger()
        self._clock = clock or time.time
        self._hang_timeout_s = hang_timeout_s
        self._id_field = id_field
        self._lock = threading.Lock()
        self._scripts: dict[str, _Script] = defaultdict(_Script)
        self._effects: list[Effect] = []
        self._tokens: dict[str, int] = {}
        self._released = threading.Event()
        self._hanging = threading.Event()

    # -- scripting ---------------------------------------------------------------------------

    def script(self, step_id: str, *behaviours: Behaviour | str) -> None:
        """Queue how the next forward calls of ``step_id`` behave (then: ``OK``)."""
        self._scripts[step_id].calls.extend(Behaviour(b) for b in behaviours)

    def script_compensation(self, step_id: str, *behaviours: Behaviour | str) -> None:
        """Queue how the next compensations of ``step_id`` behave (``OK``/``FAIL``/...)."""
        self._scripts[step_id].compensations.extend(Behaviour(b) for b in behaviours)

    def script_lookup(self, step_id: str, *behaviours: Behaviour | str) -> None:
        """Queue how the next lookups (verify) of ``step_id`` behave (``ERROR``: it breaks)."""
        self._scripts[step_id].lookups.extend(Behaviour(b) for b in behaviours)

    def fail_times(self, step_id: str, times: int, *, refuse: bool = False) -> None:
        """The next ``times`` calls of ``step_id`` fail definitely, then calls succeed."""
        self.script(step_id, *([Behaviour.REFUSE if refuse else Behaviour.FAIL] * times))

    def release(self) -> None:
        """Let every hanging call go on (a test's barrier for ``HANG``)."""
        self._released.set()

    def wait_until_hanging(self, timeout_s: float = 10.0) -> bool:
        """Block until some call is hanging (so a test can act while it is in flight)."""
        return self._hanging.wait(timeout_s)

    # -- the three functions a step binds ------------------------------------------------------

    def call(self, ctx: StepContext) -> dict[str, Any]:
        """The step's forward action: apply the effect under ``ctx.idempotency_key``."""
        self.ledger.record(ctx, LedgerKind.CALL)
        self._check_fencing(ctx)
        behaviour = self._next(ctx.step_id, "calls")
        if behaviour is Behaviour.HANG:
            self._hanging.set()
            self._released.wait(self._hang_timeout_s)
            behaviour = Behaviour.OK
        if behaviour is Behaviour.FAIL:
            raise StepFailed(f"{self.name}: {ctx.step_id} failed, nothing changed")
        if behaviour is Behaviour.REFUSE:
            raise StepFailed(f"{self.name}: {ctx.step_id} refused", retry=False)
        if behaviour is Behaviour.LOSE:
            raise TimeoutError(f"{self.name}: {ctx.step_id} did not answer")
        if behaviour is Behaviour.ERROR:
            raise ConnectionError(f"{self.name}: connection reset during {ctx.step_id}")
        effect = self._apply(ctx)
        if behaviour is Behaviour.APPLY_THEN_TIMEOUT:
            raise TimeoutError(f"{self.name}: {ctx.step_id} applied, but the answer was lost")
        return dict(effect.result)

    def compensate(self, ctx: StepContext) -> None:
        """The step's reverse action: undo the effect its result names."""
        self.ledger.record(ctx, LedgerKind.COMPENSATE)
        self._check_fencing(ctx)
        behaviour = self._next(ctx.step_id, "compensations")
        if behaviour is Behaviour.FAIL:
            raise StepFailed(f"{self.name}: undo of {ctx.step_id} failed, nothing changed")
        if behaviour is Behaviour.REFUSE:
            raise StepFailed(f"{self.name}: undo of {ctx.step_id} refused", retry=False)
        if behaviour in (Behaviour.LOSE, Behaviour.APPLY_THEN_TIMEOUT):
            if behaviour is Behaviour.APPLY_THEN_TIMEOUT:
                self._undo(ctx)
            raise TimeoutError(f"{self.name}: undo of {ctx.step_id} did not answer")
        if behaviour is Behaviour.ERROR:
            raise ConnectionError(f"{self.name}: connection reset undoing {ctx.step_id}")
        self._undo(ctx)

    def lookup(self, ctx: StepContext) -> Applied | NotApplied:
        """The step's verify: look the effect up by idempotency key (with the provider's lag)."""
        self.ledger.record(ctx, LedgerKind.VERIFY)
        behaviour = self._next(ctx.step_id, "lookups")
        if behaviour is Behaviour.ERROR:
            raise ConnectionError(f"{self.name}: lookup of {ctx.step_id} failed")
        if behaviour is Behaviour.LOSE:
            raise TimeoutError(f"{self.name}: lookup of {ctx.step_id} did not answer")
        now = self._clock()
        with self._lock:
            found = [
                e
                for e in self._effects
                if e.idempotency_key == ctx.idempotency_key
                and not e.undone
                and now - e.created_at >= self.lookup_lag_s
            ]
        if found:
            return Applied(dict(found[-1].result))
        return NotApplied(f"{self.name} holds nothing under {ctx.idempotency_key}")

    # -- what the world looks like -------------------------------------------------------------

    def effects(self, *, step_id: str | None = None) -> list[Effect]:
        """Every effect ever applied (undone ones included), oldest first."""
        with self._lock:
            return [e for e in self._effects if step_id is None or e.step_id == step_id]

    def live_effects(self, *, step_id: str | None = None) -> list[Effect]:
        """The effects that exist now."""
        return [e for e in self.effects(step_id=step_id) if not e.undone]

    # -- internals -----------------------------------------------------------------------------

    def _next(self, step_id: str, queue: str) -> Behaviour:
        with self._lock:
            pending: deque[Behaviour] = getattr(self._scripts[step_id], queue)
            return pending.popleft() if pending else Behaviour.OK

    def _check_fencing(self, ctx: StepContext) -> None:
        if not self.checks_fencing:
            return
        with self._lock:
            seen = self._tokens.get(ctx.operation_id, 0)
            if ctx.fencing_token < seen:
                raise StaleFencingTokenError(
                    f"{self.name}: fencing token {ctx.fencing_token} of run "
                    f"{ctx.operation_id} is older than {seen}"
                )
            self._tokens[ctx.operation_id] = ctx.fencing_token

    def _apply(self, ctx: StepContext) -> Effect:
        with self._lock:
            if self.honours_keys:
                for effect in self._effects:
                    if effect.idempotency_key == ctx.idempotency_key and not effect.undone:
                        return effect
            number = len(self._effects) + 1
            effect_id = f"{self.name}_{number:04d}"
            field_name = self._id_field or f"{ctx.step_id}_id"
            effect = Effect(
                effect_id=effect_id,
                operation_id=ctx.operation_id,
                step_id=ctx.step_id,
                idempotency_key=ctx.idempotency_key,
                result={field_name: effect_id},
                created_at=self._clock(),
            )
            self._effects.append(effect)
            return effect

    def _undo(self, ctx: StepContext) -> None:
        target = ctx.external_id
        with self._lock:
            for effect in self._effects:
                named = target is not None and effect.effect_id == target
                keyed = target is None and effect.idempotency_key == ctx.idempotency_key
                if (named or keyed) and not effect.undone:
                    effect.undone = True
                    return
