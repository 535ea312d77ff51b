"""Every backend answers any sequence of calls exactly as the in-memory reference does.

Hypothesis drives random sequences of creates, claims, recoveries, records, heartbeats and
releases (stale claims included) through each store and compares every answer, every error
and the whole journal after each call.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagaguard.exceptions import SagaGuardError
from sagaguard.storage import Claim, JournalStore, RunStatus, StepStatus, Transition
from sagaguard.storage.memory import InMemoryStore

from .conftest import STORE_FACTORIES
from .helpers import STEPS, T0, new_run, step

OPS = ("op-a", "op-b", "op-c")
OWNERS = ("w1", "w2", "w3")
INPUTS = ({"n": 1}, {"n": 2})

transitions = st.one_of(
    st.builds(
        lambda sid, status, n, text: step(
            f"step_{status.value}",
            sid,
            status,
            attempts=n,
            result=None if text is None else {"v": text},
            failure_reason=text,
        ),
        st.sampled_from((*STEPS, "ghost")),
        st.sampled_from(StepStatus),
        st.none() | st.integers(0, 3),
        st.none() | st.text(max_size=3),
    ),
    st.builds(
        lambda status, reason: Transition(kind="run", run_status=status, run_reason=reason),
        st.none() | st.sampled_from(RunStatus),
        st.none() | st.sampled_from(("why", "because")),
    ),
)

calls = st.one_of(
    st.tuples(
        st.just("create"),
        st.sampled_from(OPS),
        st.sampled_from(("p", "q")),
        st.sampled_from(INPUTS),
    ),
    st.tuples(st.just("claim"), st.sampled_from(OPS), st.sampled_from(OWNERS)),
    st.tuples(st.just("claim_expired"), st.sampled_from(OWNERS), st.integers(0, 3)),
    st.tuples(st.just("record"), st.integers(0, 50), st.lists(transitions, max_size=4)),
    st.tuples(st.just("heartbeat"), st.integers(0, 50)),
    st.tuples(st.just("release"), st.integers(0, 50)),
)


def _call(store: JournalStore, call: tuple[Any, ...], claims: list[Claim], now: float) -> Any:
    """Run one call; answer its result or the name of the error it raised."""
    kind, *args = call
    try:
        if kind == "create":
            operation_id, process, payload = args
            new = new_run(operation_id, process=process, input=payload)
            return store.create_run(new, owner="creator", now=now, lease_s=10.0)
        if kind == "claim":
            return store.claim(args[0], owner=args[1], now=now, lease_s=10.0)
        if kind == "claim_expired":
            return store.claim_expired(owner=args[0], now=now, lease_s=10.0, limit=args[1])
        if not claims:
            return "no claim yet"
        claim = claims[args[0] % len(claims)]
        if kind == "record":
            return store.record(claim, args[1], now=now, lease_s=10.0)
        if kind == "heartbeat":
            return store.heartbeat(claim, now=now, lease_s=10.0)
        return store.release(claim, now=now)
    except SagaGuardError as exc:
        return type(exc).__name__


def _journal(store: JournalStore) -> Any:
    runs = store.list_runs()
    return runs, [(store.load(r.operation_id), store.events(r.operation_id)) for r in runs]


def _claims_in(answer: Any) -> list[Claim]:
    if isinstance(answer, Claim):
        return [answer]
    if isinstance(answer, list):
        return [c for c in answer if isinstance(c, Claim)]
    claim = getattr(answer, "claim", None)
    return [claim] if isinstance(claim, Claim) else []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=st.lists(
        st.tuples(calls, st.sampled_from((0.0, 1.0, 2.5, 5.0, 10.0))), min_size=1, max_size=25
    )
)
def test_every_backend_behaves_exactly_like_the_reference(
    script: list[tuple[tuple[Any, ...], float]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[JournalStore] = []
        for factory in STORE_FACTORIES:
            if factory.name != "memory" and factory.skip_reason() is None:
                (Path(tmp) / factory.name).mkdir()
                stores.append(factory.open(Path(tmp) / factory.name))
        reference = InMemoryStore()
        claims: list[Claim] = []
        now = T0
        try:
            for call, step_s in script:
                now += step_s
                expected = _call(reference, call, claims, now)
                for other in stores:
                    assert _call(other, call, claims, now) == expected, (other.url, call)
                    assert _journal(other) == _journal(reference), other.url
                claims.extend(_claims_in(expected))
        finally:
            for other in stores:
                other.close()
