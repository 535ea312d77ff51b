"""Which findings a person may record for a step waiting for review, and what each needs.

The rules are the engine's, asked, never copied: an outcome is allowed when
:func:`sagaguard.engine.resolution.resolution_change` accepts it for the step as it stands,
and a ``completed`` finding needs what :func:`~sagaguard.engine.resolution.external_id_of`
demands (a JSON object holding the step's external-id field, when the step persists one).
Recording the finding stays :meth:`sagaguard.engine.Engine.resolve`; this module only says
what is allowed, so a form (or ``review list``) can offer exactly that and check it early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sagaguard.engine.resolution import Resolution, external_id_of, resolution_change
from sagaguard.exceptions import ResolutionError
from sagaguard.vocabulary import RunStatus

if TYPE_CHECKING:
    from sagaguard.storage.base import RunSnapshot
    from sagaguard.storage.payloads import JSONValue

__all__ = ["AllowedResolution", "allowed_resolutions"]


@dataclass(frozen=True, slots=True)
class AllowedResolution:
    """One outcome a person may record for a waiting step, what it needs, where it leads."""

    step_id: str
    outcome: Resolution
    takes_result: bool
    """Whether the finding carries the step's result (only ``completed`` does)."""
    result_field: str | None
    """The field the result must hold (the step's external id), or ``None`` when none must."""
    run_goes_to: RunStatus
    """The run's status once recorded: ``running`` (it goes on) or ``compensating``."""

    def check(self, result: JSONValue) -> None:
        """``ResolutionError`` when ``result`` would be refused by the engine for this outcome.

        ``None`` means no result is given.
        """
        if result is not None and not self.takes_result:
            raise ResolutionError(
                f"a result applies only to {Resolution.COMPLETED.value}, "
                f"not to {self.outcome.value}"
            )
        if self.result_field is not None:
            external_id_of(self.step_id, self.result_field, result)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {
            "outcome": self.outcome.value,
            "takes_result": self.takes_result,
            "result_field": self.result_field,
            "run_goes_to": self.run_goes_to.value,
        }


def allowed_resolutions(
    snapshot: RunSnapshot, step_id: str, *, external_id_field: str | None = None
) -> tuple[AllowedResolution, ...]:
    """The outcomes a person may record for ``step_id`` of the run, in the order of Resolution.

    None unless the run needs review (as :meth:`~sagaguard.engine.Engine.resolve` requires)
    and the step is one that waits. ``external_id_field`` stands in for the field a run
    journaled before steps recorded it, as the saga declares it (``external_id``).
    """
    if snapshot.run.status is not RunStatus.NEEDS_MANUAL_REVIEW:
        return ()
    try:
        record = snapshot.step(step_id)
    except KeyError:
        return ()
    field = record.external_id_field or external_id_field
    allowed = []
    for outcome in Resolution:
        try:
            # Asked without a field to check: what a result needs is said apart, below.
            _, run_status = resolution_change(record, outcome, None, snapshot, None)
        except ResolutionError:
            continue
        takes_result = outcome is Resolution.COMPLETED
        allowed.append(
            AllowedResolution(
                step_id=step_id,
                outcome=outcome,
                takes_result=takes_result,
                result_field=field if takes_result else None,
                run_goes_to=run_status,
            )
        )
    return tuple(allowed)
