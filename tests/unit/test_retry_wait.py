"""What is left of a backoff that counts from the journaled start of the last attempt."""

from __future__ import annotations

from sagaguard.engine.retry import still_owed


def test_without_a_journaled_attempt_the_whole_delay_is_owed() -> None:
    assert still_owed(0.5, since=None, now=100.0) == 0.5


def test_time_since_the_attempt_counts_toward_the_wait() -> None:
    assert abs(still_owed(0.5, since=100.0, now=100.2) - 0.3) < 1e-9
    assert still_owed(0.5, since=100.0, now=100.0) == 0.5


def test_a_wait_already_passed_is_not_owed() -> None:
    assert still_owed(0.5, since=100.0, now=160.0) == 0.0


def test_a_clock_behind_the_journal_never_makes_the_wait_longer() -> None:
    assert still_owed(0.5, since=100.0, now=70.0) == 0.5
