"""The fleet's fencing check judges a trail of many owners: tokens, writers and calls.

Pure: hand-written audit trails and ledgers, no store. Each case is a trail a broken engine
or store could leave, and the check must name it.
"""

from __future__ import annotations

from sagaguard.storage.base import Event
from sagaguard.testing.invariants import fenced
from sagaguard.testing.ledger import LedgerEntry, LedgerKind

OP = "op-1"


def _event(seq: int, actor: str, kind: str, step: str | None = None, token: int = 0) -> Event:
    data = {"fencing_token": token} if kind == "claimed" else None
    return Event(OP, seq, float(seq), actor, kind, step, None, None, None, data)


def _call(
    token: int | None, step: str = "charge", kind: LedgerKind = LedgerKind.CALL
) -> LedgerEntry:
    return LedgerEntry(OP, step, kind, f"{OP}:{step}", 1, 1, 0.0, fencing_token=token)


def _two_owners() -> list[Event]:
    """Submitted; A claims (1) and starts charge; B takes over (2) and starts it again."""
    return [
        _event(1, "submitter", "run_created"),
        _event(2, "A", "claimed", token=1),
        _event(3, "A", "step_started", "charge"),
        _event(4, "B", "claimed", token=2),
        _event(5, "B", "step_started", "charge"),
        _event(6, "notifier", "alert_delivered"),
        _event(7, "B", "step_completed", "charge"),
    ]


def test_a_clean_takeover_with_one_call_per_claim_passes() -> None:
    assert fenced(_two_owners(), [_call(1), _call(2)]) == []


def test_a_write_by_the_previous_owner_after_the_takeover_is_named() -> None:
    events = [*_two_owners(), _event(8, "A", "step_completed", "charge")]
    [violation] = fenced(events, [])
    assert violation.invariant == 4
    assert "A wrote step_completed (event 8) while token 2 belonged to B" in violation.message


def test_a_claim_that_skips_or_repeats_a_token_is_named() -> None:
    events = _two_owners()
    events[3] = _event(4, "B", "claimed", token=1)
    [violation] = fenced(events, [])
    assert "carries token 1, not the next one (2)" in violation.message


def test_a_call_on_a_stale_claim_is_named() -> None:
    # A's start under token 1 was journaled once; a second call under token 1 has none.
    [violation] = fenced(_two_owners(), [_call(1), _call(1), _call(2)])
    assert "under token 1 that no step_started event under that token" in violation.message


def test_a_call_with_a_token_the_run_never_issued_is_named() -> None:
    found = fenced(_two_owners(), [_call(3), _call(None)])
    assert [v.message.split(",")[0] for v in found] == [
        "a call carried token 3",
        "a call carried token None",
    ]


def test_a_run_created_by_its_runner_starts_at_token_one() -> None:
    events = [
        _event(1, "A", "run_created"),
        _event(2, "A", "step_started", "charge"),
        _event(3, "B", "claimed", token=2),
    ]
    assert fenced(events, [_call(1)]) == []
    assert fenced(events, [_call(2)]) != []
