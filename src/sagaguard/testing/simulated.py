"""A spec proved before a line of its code exists: a simulated provider behind every step.

Each step gets a :class:`~sagaguard.testing.provider.FakeProvider` that behaves as the spec
declares: it deduplicates on the idempotency key only when the step says ``idempotent:
yes`` (``no`` and ``unknown`` charge twice on a blind retry, the worst case the guide warns
about), it can be looked up when the spec binds verify code (``verify: module:function``;
a verify in words cannot be asked, as the plan says), it can be undone when the step is
compensatable, and it refuses a stale owner's fencing token. The real engine runs against
them, so what is proved is the plan of the process as the spec binds it.
"""

from __future__ import annotations

from sagaguard.engine.saga import Saga, StepHandlers
from sagaguard.model import Idempotency, Process, StepClass
from sagaguard.testing.clock import FakeClock
from sagaguard.testing.provider import FakeProvider
from sagaguard.testing.world import World

__all__ = ["simulate_providers"]


def simulate_providers(process: Process, *, clock: FakeClock) -> tuple[Saga, World]:
    """A runnable saga of ``process`` on simulated providers, and the world they make."""
    handlers: dict[str, StepHandlers] = {}
    effects: list[FakeProvider] = []
    for step in process.steps:
        provider = FakeProvider(
            step.id,
            honours_keys=step.read_only or step.idempotent is Idempotency.YES,
            checks_fencing=True,
            clock=clock,
            id_field=step.external_id,
        )
        compensatable = step.step_class is StepClass.COMPENSATABLE
        handlers[step.id] = StepHandlers(
            call=provider.call,
            compensate=provider.compensate if compensatable else None,
            verify=provider.lookup if step.verify_is_code else None,
        )
        if not step.read_only:
            effects.append(provider)
    return Saga.binding(process, handlers), World(effects)
