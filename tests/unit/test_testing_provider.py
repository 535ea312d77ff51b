"""The shipped fake provider: scripted answers, real effects, and a ledger of every call."""

from __future__ import annotations

import threading

import pytest

from sagaguard import StepFailed
from sagaguard.engine import Applied, NotApplied, StepContext
from sagaguard.testing import LedgerKind
from sagaguard.testing.provider import Behaviour, FakeProvider, StaleFencingTokenError


def ctx(step_id: str = "charge", *, attempt: int = 1, token: int = 1, **kw: object) -> StepContext:
    fields: dict[str, object] = {
        "operation_id": "op-1",
        "step_id": step_id,
        "attempt": attempt,
        "idempotency_key": f"op-1:{step_id}",
        "fencing_token": token,
        "input": {},
        "results": {},
        "external_ids": {},
    }
    fields.update(kw)
    return StepContext(**fields)  # type: ignore[arg-type]


def test_a_repeat_under_the_same_key_is_one_effect_when_keys_are_honoured() -> None:
    psp = FakeProvider("psp")
    first, second = psp.call(ctx()), psp.call(ctx(attempt=2))
    assert first == second == {"charge_id": "psp_0001"}
    assert len(psp.live_effects()) == 1
    assert [e.attempt for e in psp.ledger.select(kind=LedgerKind.CALL)] == [1, 2]


def test_a_provider_that_ignores_keys_applies_a_second_effect() -> None:
    """The guide's double charge: a blind retry against such a provider charges twice."""
    psp = FakeProvider("psp", honours_keys=False)
    psp.call(ctx())
    psp.call(ctx(attempt=2))
    assert [e.effect_id for e in psp.live_effects()] == ["psp_0001", "psp_0002"]


def test_apply_then_timeout_leaves_the_effect_and_loses_the_answer() -> None:
    psp = FakeProvider("psp")
    psp.script("charge", Behaviour.APPLY_THEN_TIMEOUT)
    with pytest.raises(TimeoutError):
        psp.call(ctx())
    assert len(psp.live_effects()) == 1
    assert psp.lookup(ctx()) == Applied({"charge_id": "psp_0001"})


@pytest.mark.parametrize(
    ("behaviour", "raised", "retry"),
    [
        (Behaviour.FAIL, StepFailed, True),
        (Behaviour.REFUSE, StepFailed, False),
        (Behaviour.LOSE, TimeoutError, None),
        (Behaviour.ERROR, ConnectionError, None),
    ],
)
def test_failures_change_nothing(
    behaviour: Behaviour, raised: type[Exception], retry: bool | None
) -> None:
    psp = FakeProvider("psp")
    psp.script("charge", behaviour)
    with pytest.raises(raised) as caught:
        psp.call(ctx())
    if retry is not None:
        assert isinstance(caught.value, StepFailed)
        assert caught.value.retry is retry
    assert psp.live_effects() == []
    assert isinstance(psp.lookup(ctx()), NotApplied)


def test_fail_times_then_succeed() -> None:
    psp = FakeProvider("psp")
    psp.fail_times("charge", 2)
    for _ in range(2):
        with pytest.raises(StepFailed):
            psp.call(ctx())
    assert psp.call(ctx()) == {"charge_id": "psp_0001"}


def test_a_lagging_lookup_does_not_see_a_fresh_effect() -> None:
    now = [100.0]
    psp = FakeProvider("psp", lookup_lag_s=5.0, clock=lambda: now[0])
    psp.call(ctx())
    assert isinstance(psp.lookup(ctx()), NotApplied)
    now[0] += 5.0
    assert isinstance(psp.lookup(ctx()), Applied)


def test_compensation_undoes_the_named_effect_once() -> None:
    psp = FakeProvider("psp", id_field="payment_id")
    psp.call(ctx())
    psp.script_compensation("charge", Behaviour.FAIL)
    with pytest.raises(StepFailed):
        psp.compensate(ctx(external_id="psp_0001"))
    assert len(psp.live_effects()) == 1
    psp.compensate(ctx(external_id="psp_0001"))
    assert psp.live_effects() == []
    assert len(psp.ledger.select(kind=LedgerKind.COMPENSATE)) == 2


def test_a_stale_fencing_token_is_refused_when_the_provider_checks_it() -> None:
    psp = FakeProvider("psp", checks_fencing=True)
    psp.call(ctx(token=3))
    with pytest.raises(StaleFencingTokenError):
        psp.call(ctx(token=2))
    assert len(psp.ledger.select(kind=LedgerKind.CALL)) == 2
    assert len(psp.live_effects()) == 1


def test_a_hanging_call_waits_for_release() -> None:
    """HANG keeps the call in flight until the test lets it go (a barrier, not a sleep)."""
    psp = FakeProvider("psp")
    psp.script("charge", Behaviour.HANG)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(psp.call(ctx())))
    worker.start()
    assert psp.wait_until_hanging()
    assert results == []
    psp.release()
    worker.join(5)
    assert results == [{"charge_id": "psp_0001"}]


def test_a_broken_lookup_raises() -> None:
    psp = FakeProvider("psp")
    psp.script_lookup("charge", Behaviour.ERROR)
    with pytest.raises(ConnectionError):
        psp.lookup(ctx())
