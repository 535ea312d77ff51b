"""Shared phrases of the planner, so every part of a plan says the same thing the same way.

How durations, counts and lists of steps read; what to do instead of undoing an
irreversible step; how a compensation or a verify is quoted; example ids for journal rows.
Nothing here decides anything: the rules and :class:`~.context.Planning` did.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence

from sagaguard.model import IMPORT_PATH_PATTERN, ChangeKind, StateStore, Step
from sagaguard.rules import Bound

__all__ = [
    "at_most",
    "bound_text",
    "compensation_instruction",
    "compensation_text",
    "described",
    "external_id_phrase",
    "few",
    "fmt_seconds",
    "join",
    "mitigation_for",
    "plural",
    "sample_external_id",
    "sample_operation_id",
    "single_owner_mechanism",
    "verify_text",
]

FEW = 4
"""How many step ids a sentence names before it says "and N more" (keeps plans linear)."""


def fmt_seconds(seconds: float) -> str:
    """``0.2`` -> ``200ms``, ``10.0`` -> ``10s``, ``120.0`` -> ``2m``, ``7200.0`` -> ``2h``."""
    if seconds < 1:
        return f"{round(seconds * 1000):d}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def plural(count: int, noun: str) -> str:
    """``1 attempt``, ``3 attempts``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def at_most(count: int, noun: str = "attempt") -> str:
    """``at most 1 attempt``, ``at most 3 attempts``."""
    return f"at most {plural(count, noun)}"


def join(items: Iterable[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    words = list(items)
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {last} {words[-1]}"


def few(ids: Sequence[str], total: int | None = None, last: str = "and") -> str:
    """Up to :data:`FEW` ids, then ``and N more``: ``c, b, a`` or ``z, y, x, w and 9 more``.

    ``total`` is the length of the whole list when ``ids`` holds only its first few.
    """
    count = len(ids) if total is None else total
    shown = list(ids[:FEW])
    if count <= len(shown):
        return join(shown, last)
    return f"{', '.join(shown)} {last} {count - len(shown)} more"


def bound_text(bound: Bound | None, noun: str = "attempt") -> str:
    """``at most 3 attempts`` or ``for at least 15m and at least 3 attempts``."""
    if bound is None:
        return "once"
    attempts = bound.attempts
    if bound.window_s is None:
        return at_most(attempts or 1, noun)
    window = fmt_seconds(bound.window_s)
    if attempts is None:
        return f"for {window}"
    return f"for at least {window} and at least {plural(attempts, noun)}"


def external_id_phrase(step: Step) -> str:
    """How the journal names the step's external object: ``payment_id`` or a fallback."""
    if step.external_id:
        return step.external_id
    return f"the result of {step.id}"


def described(text: str) -> str:
    """Spec text as a reader takes it: a ``module:function`` binding reads ``code: ...``."""
    text = " ".join(text.split())
    return f"code: {text}" if re.match(IMPORT_PATH_PATTERN, text) else text


def verify_text(step: Step) -> str:
    """How the step's real outcome is learned, readable whether it is words or code."""
    return described(step.verify or "")


def compensation_text(step: Step) -> str:
    """The step's declared compensation, readable whether it is words or code."""
    return described(step.compensation or "")


def compensation_instruction(step: Step) -> str:
    """The compensation of a compensatable step, with the journal id it must address."""
    text = compensation_text(step).rstrip(".")
    if step.external_id and step.external_id not in text:
        return f"{text}, by the {step.external_id} saved in the journal"
    return text


def mitigation_for(step: Step) -> str:
    """What to do instead of undoing an irreversible step: the spec's, else one from its changes."""
    if step.mitigation:
        return " ".join(step.mitigation.split())
    ref = f" (by {step.external_id})" if step.external_id else ""
    kinds = set(step.changes)
    if ChangeKind.PAYMENT in kinds:
        return (
            f"hand the money moved by {step.id}{ref} to a person: refund it by hand or keep it "
            "and finish the order by hand; never charge again"
        )
    if ChangeKind.EMAIL in kinds:
        return (
            "send a correction that explains the state (the run for this operation_id was "
            f"rolled back); never resend the original message of {step.id}"
        )
    if ChangeKind.QUEUE in kinds:
        return (
            f"publish a cancelling message{ref} carrying the operation_id so consumers of "
            f"{step.id}'s message undo or ignore it; never publish the original again"
        )
    if ChangeKind.RESERVATION in kinds:
        return (
            f"let the hold made by {step.id}{ref} expire, or release it by hand; "
            "never reserve again for this operation_id"
        )
    if ChangeKind.EXTERNAL_API in kinds:
        return (
            f"record what {step.id} created{ref} and ask its owner to reverse it by hand; "
            "never repeat the call for this operation_id"
        )
    return (
        f"write a correcting record that voids what {step.id} wrote{ref} (keep the original "
        "for the audit trail); never write it a second time"
    )


def sample_operation_id(name: str) -> str:
    """A deterministic example operation_id for journal rows shown in the plan."""
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"op-{digest}"


def sample_external_id(name: str, step: Step) -> str | None:
    """A deterministic example value of the step's external id, e.g. ``payment_id=pay_3f9c1a``.

    The prefix is the id's name without ``_id`` and without underscores, so ``fx_trade_id``
    gives ``fxt_…``, never ``fx__…``.
    """
    if not step.external_id:
        return None
    stem = step.external_id.lower().removesuffix("_id").removesuffix("id").replace("_", "")
    digest = hashlib.sha256(f"{name}:{step.id}".encode()).hexdigest()[:6]
    return f"{step.external_id}={(stem or 'ext')[:3]}_{digest}"


_OWNER_BY_STORE = {
    StateStore.DATABASE: (
        "lock the run row with SELECT ... FOR UPDATE and claim it by setting owner, "
        "lease_expires_at and a new fencing token in the same transaction; every later write "
        "carries the token and is rejected when it is stale"
    ),
    StateStore.KEY_VALUE: (
        "take a compare-and-set lease key with expiry (e.g. SET lease:{process}:{operation_id} "
        "<owner> NX PX <ttl>) and a fencing token from an atomic counter (INCR "
        "fence:{process}:{operation_id}); every write carries the token and the store rejects "
        "a stale one (check-and-write in one script)"
    ),
    StateStore.JOBS_TABLE: (
        "claim the job row with SELECT ... FOR UPDATE SKIP LOCKED, set owner and lease expiry "
        "and bump a fencing token that every later write checks"
    ),
    StateStore.EVENT_LOG: (
        "append a claim event with the expected stream version (optimistic concurrency) and "
        "check the version on every later append: a writer holding a stale version is "
        "rejected, so one claim wins"
    ),
    StateStore.STATE_MACHINE: (
        "use the state machine's conditional transition (only from the current state and "
        "version) to claim the run; a second worker's transition is rejected, and the version "
        "acts as the fencing token for every later write"
    ),
}


def single_owner_mechanism(store: StateStore, name: str) -> str:
    """How the process's state store gives one run exactly one rollback owner."""
    return _OWNER_BY_STORE[store].replace("{process}", name)
