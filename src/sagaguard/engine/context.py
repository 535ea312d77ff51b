"""What step, compensation and verify code receives, and what verify code answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sagaguard.storage.payloads import JSONValue


@dataclass(frozen=True, slots=True)
class StepContext:
    """Everything a call needs to act exactly once.

    ``idempotency_key`` is the same on every attempt of the step, after a crash and under a new
    owner: pass it to the provider so a repeat is recognised. ``fencing_token`` grows with every
    change of owner: a downstream system that stores it can refuse a stale owner's call.
    """

    operation_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    fencing_token: int
    input: JSONValue
    results: Mapping[str, JSONValue]
    """Results of the steps completed so far, by step id."""
    external_ids: Mapping[str, str | None]
    """External ids (payment_id, ...) of the steps completed so far, by step id."""
    result: JSONValue = None
    """For a compensation: the result of the step being undone."""
    external_id: str | None = None
    """For a compensation: the external id of the step being undone."""


@dataclass(frozen=True, slots=True)
class Applied:
    """A verify answer: the effect did happen; ``result`` is stored as the step's result."""

    result: JSONValue = None


@dataclass(frozen=True, slots=True)
class NotApplied:
    """A verify answer: the effect did not happen, so a retry is safe."""

    reason: str = "verify found no effect"


VerifyAnswer = Applied | NotApplied


def is_verify_answer(value: Any) -> bool:
    """True when verify code returned one of the two answers."""
    return isinstance(value, Applied | NotApplied)
