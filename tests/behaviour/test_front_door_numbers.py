"""The engine's Python front door refuses numbers outside the documented bounds.

The bounds are the command line's (:mod:`sagaguard.bounds`): an infinite or negative lease,
a thread pool of a billion threads or a batch of 10**20 runs is bad input, refused with one
``SagaGuardError`` that names the argument, before anything is opened or journaled.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from sagaguard import SagaGuardError
from sagaguard.engine import Engine, Worker
from sagaguard.storage import JournalStore

BAD_NUMBERS: list[Any] = [math.inf, -math.inf, math.nan, -1, 0, 10**20, 1e300, True, "60"]


@pytest.mark.parametrize("value", BAD_NUMBERS, ids=repr)
def test_a_lease_outside_its_bound_is_refused_naming_lease_s(value: Any) -> None:
    with pytest.raises(SagaGuardError, match=r"^lease_s: .*0\.1 to 86400 seconds"):
        Engine(store="memory://", lease_s=value)


@pytest.mark.parametrize("value", [0, -3, 10**9, 2.5, math.nan, None], ids=repr)
def test_a_call_pool_outside_its_bound_is_refused_naming_call_threads(value: Any) -> None:
    with pytest.raises(SagaGuardError, match=r"^call_threads: "):
        Engine(store="memory://", call_threads=value)


@pytest.mark.parametrize("value", [0, -1, 10**20, 1.5, math.inf], ids=repr)
def test_recover_and_deliver_alerts_refuse_a_limit_outside_the_batch_bound(
    engine: Engine, value: Any
) -> None:
    with pytest.raises(SagaGuardError, match=r"^limit: .*1 to 10000 runs"):
        engine.recover(limit=value)
    with pytest.raises(SagaGuardError, match=r"^limit: .*1 to 10000 runs"):
        engine.deliver_alerts(limit=value)


def test_a_lease_within_its_bound_is_used_as_given(store: JournalStore) -> None:
    with Engine(store=store, lease_s=0.1, call_threads=1) as small:
        assert small.lease_s == 0.1
    with Engine(store=store, lease_s=86_400) as large:
        assert large.lease_s == 86_400


@pytest.mark.parametrize("value", [0, -1, 10**20, 1.5, math.inf], ids=repr)
def test_claim_runs_refuses_a_limit_outside_the_batch_bound(engine: Engine, value: Any) -> None:
    with pytest.raises(SagaGuardError, match=r"^limit: .*1 to 10000 runs"):
        engine.claim_runs(value)


@pytest.mark.parametrize(
    ("argument", "value", "bound"),
    [
        ("concurrency", 0, "1 to 1024 runs"),
        ("concurrency", 2.5, "1 to 1024 runs"),
        ("batch", 10_001, "1 to 10000 runs"),
        ("interval_s", 0, "0.01 to 86400 seconds"),
        ("interval_s", math.nan, "0.01 to 86400 seconds"),
    ],
)
def test_a_worker_refuses_numbers_outside_their_bounds(
    engine: Engine, argument: str, value: Any, bound: str
) -> None:
    with pytest.raises(SagaGuardError, match=rf"^{argument}: .*{bound}"):
        Worker(engine, **{argument: value})
