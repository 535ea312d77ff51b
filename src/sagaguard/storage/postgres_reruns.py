"""What a PostgreSQL write finds as its own when it runs again after an unknown commit.

A connection lost during a commit leaves its outcome unknown, and the store runs the write
again (see :mod:`sagaguard.storage.postgres`). Each write left a mark its rerun can know:
a create its token, a record its token, a release the run unowned under its fencing token.
These say what the rerun returns when it finds its earlier attempt landed.
"""

from __future__ import annotations

from sagaguard.storage import journal
from sagaguard.storage.base import Claim, CreateResult, RunSnapshot
from sagaguard.storage.rows import RunState

__all__ = ["own_creation", "own_record", "released_by"]


def own_creation(snapshot: RunSnapshot, owner: str | None) -> CreateResult:
    """What a create whose commit landed unacknowledged returns when its rerun finds the run.

    The claim is the creator's first one, if the run is still under it (nothing else can
    have taken a live lease in the meantime).
    """
    run = snapshot.run
    claim = None
    if (
        owner is not None
        and run.owner == owner
        and run.fencing_token == 1
        and run.lease_expires_at is not None
    ):
        claim = Claim(run.operation_id, owner, 1, run.lease_expires_at)
    return CreateResult(snapshot=snapshot, created=True, claim=claim)


def released_by(claim: Claim, run: RunState | None) -> bool:
    """True when ``run`` shows ``claim``'s own release: unowned, its token not moved on.

    Only the holder of the current token can release a run, and any claim since would have
    moved the token on, so this is the state a landed release of ``claim`` left.
    """
    return run is not None and run.owner is None and run.fencing_token == claim.fencing_token


def own_record(claim: Claim, run: RunState, expires: float, released: bool) -> Claim:
    """What a record whose commit landed unacknowledged returns when its rerun finds it.

    The claim as that commit left it: its lease, or (a release) the one it would have had.
    A claim taken over since is stale all the same (``StaleOwnerError``).
    """
    if not released:
        journal.check_current(claim, run)
    lease = run.lease_expires_at if run.lease_expires_at is not None else expires
    return Claim(claim.operation_id, claim.owner, claim.fencing_token, lease)
