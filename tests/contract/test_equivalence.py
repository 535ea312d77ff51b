"""Every backend answers any sequence of calls exactly as the in-memory reference does.

Hypothesis drives random sequences of creates (with first transitions or without, owned or
submitted unowned), prunes, claims,
recoveries, records (releasing or not, raising alerts or not), heartbeats, releases (stale
claims included) and the alert outbox's claims and settlements through each store, and
compares every answer, every error and the whole journal (runs, steps, events and the
outbox) after each call.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sagaguard.exceptions import SagaGuardError
from sagaguard.storage import Claim, JournalStore, RunStatus, StepChange, StepStatus, Transition
from sagaguard.storage.base import NewAlert
from sagaguard.storage.memory import InMemoryStore

from .conftest import STORE_FACTORIES
from .helpers import STEPS, T0, new_run, step

OPS = ("op-a", "op-b", "op-c")
OWNERS = ("w1", "w2", "w3")
INPUTS = ({"n": 1}, {"n": 2})

alerting = st.builds(
    lambda sid, n, after: Transition(
        kind="needs_manual_review",
        step=StepChange(sid, StepStatus.NEEDS_MANUAL_REVIEW, failure_reason="timed out"),
        run_status=RunStatus.NEEDS_MANUAL_REVIEW,
        alert=NewAlert(
            alert_id=f"alert-{n}",
            kind="needs_manual_review",
            payload={"step_id": sid, "n": n},
            deliver_after=T0 + after,
        ),
    ),
    st.sampled_from(STEPS),
    st.integers(0, 5),
    st.sampled_from((0.0, 5.0, 30.0)),
)

transitions = st.one_of(
    alerting,
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
        st.lists(transitions, max_size=3),
    ),
    st.tuples(
        st.just("submit"),
        st.sampled_from(OPS),
        st.sampled_from(("p", "q")),
        st.sampled_from(INPUTS),
    ),
    st.tuples(st.just("prune"), st.sampled_from((0.0, 5.0)), st.sampled_from(((), ("failed",)))),
    st.tuples(st.just("claim"), st.sampled_from(OPS), st.sampled_from(OWNERS)),
    st.tuples(st.just("claim_expired"), st.sampled_from(OWNERS), st.integers(0, 3)),
    st.tuples(
        st.just("record"), st.integers(0, 50), st.lists(transitions, max_size=4), st.booleans()
    ),
    st.tuples(st.just("heartbeat"), st.integers(0, 50)),
    st.tuples(st.just("release"), st.integers(0, 50)),
    st.tuples(st.just("claim_due_alerts"), st.sampled_from((1.0, 20.0)), st.integers(0, 3)),
    st.tuples(
        st.just("settle_alert"),
        st.integers(0, 6),
        st.none() | st.sampled_from(("HTTP 503", "refused")),
        st.sampled_from((0.0, 10.0)),
    ),
)


def _call(store: JournalStore, call: tuple[Any, ...], claims: list[Claim], now: float) -> Any:
    """Run one call; answer its result or the name of the error it raised."""
    kind, *args = call
    try:
        if kind == "create":
            operation_id, process, payload, first = args
            new = new_run(operation_id, process=process, input=payload)
            return store.create_run(new, owner="creator", now=now, lease_s=10.0, transitions=first)
        if kind == "submit":
            operation_id, process, payload = args
            new = new_run(operation_id, process=process, input=payload)
            return store.create_run(new, owner=None, now=now, lease_s=10.0)
        if kind == "prune":
            return store.prune(older_than=now - args[0], statuses=[RunStatus(s) for s in args[1]])
        if kind == "claim":
            return store.claim(args[0], owner=args[1], now=now, lease_s=10.0)
        if kind == "claim_expired":
            return store.claim_expired(owner=args[0], now=now, lease_s=10.0, limit=args[1])
        if kind == "claim_due_alerts":
            return store.claim_due_alerts(now=now, lease_s=args[0], limit=args[1])
        if kind == "settle_alert":
            alert_id, error, retry_in = f"alert-{args[0]}", args[1], args[2]
            return store.settle_alert(alert_id, now=now, error=error, retry_at=now + retry_in)
        if not claims:
            return "no claim yet"
        claim = claims[args[0] % len(claims)]
        if kind == "record":
            return store.record(claim, args[1], now=now, lease_s=10.0, release=args[2])
        if kind == "heartbeat":
            return store.heartbeat(claim, now=now, lease_s=10.0)
        return store.release(claim, now=now)
    except SagaGuardError as exc:
        return type(exc).__name__


def _journal(store: JournalStore) -> Any:
    runs = store.list_runs()
    return runs, [(store.load(r.operation_id), store.events(r.operation_id)) for r in runs]


def _outbox(store: JournalStore) -> list[Any]:
    """Every undelivered alert with its attempts and last error (this takes them all)."""
    return store.claim_due_alerts(now=float("inf"), lease_s=0.0, limit=1000)


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
            outbox = _outbox(reference)
            for other in stores:
                assert _outbox(other) == outbox, other.url
        finally:
            for other in stores:
                other.close()
