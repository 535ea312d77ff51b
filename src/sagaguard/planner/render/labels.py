"""Words and small formatting helpers shared by the Markdown and HTML renderers.

Only presentation lives here: how an enum value reads to a person, how a duration, a count
or a list of step ids is written. Nothing is decided about the process; the plan already did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from sagaguard.model import IMPORT_PATH_PATTERN, Phase, StepClass
from sagaguard.planner.plan import (
    Answer,
    Backoff,
    BoundSpec,
    Count,
    FlowNode,
    Severity,
    TestCategory,
)
from sagaguard.planner.wording import fmt_seconds
from sagaguard.rules import Decision, Situation, StepKind

__all__ = [
    "ANSWER_LABELS",
    "CATEGORY_LABELS",
    "DECISION_LABELS",
    "KIND_LABELS",
    "LIST_LIMIT",
    "MATRIX_GROUPS",
    "SECTIONS",
    "SEVERITY_ORDER",
    "SITUATION_LABELS",
    "backoff_text",
    "bound_label",
    "count_label",
    "count_text",
    "duration",
    "elide",
    "id_list",
    "is_code",
    "role_label",
    "step_look",
    "words",
]

SECTIONS: tuple[tuple[str, str], ...] = (
    ("steps", "1. Step table"),
    ("rollback-sequences", "2. Rollback sequences"),
    ("rollback-failure-policy", "3. When a rollback fails"),
    ("decision-matrix", "4. Decision matrix"),
    ("tests", "5. Partial-failure tests"),
    ("checklist", "6. Production-readiness checklist"),
    ("findings", "7. Findings"),
    ("example-states", "Example states"),
    ("flow", "Flow diagram"),
)
"""Anchor and title of every part of a rendered plan, in reading order."""

SITUATION_LABELS: dict[Situation, str] = {
    Situation.DEFINITE_FAILURE: "definite failure",
    Situation.REFUSED: "refused",
    Situation.TIMEOUT: "timeout",
    Situation.CRASH_BEFORE_PERSIST: "crash before persist",
    Situation.CALL_IN_FLIGHT: "call still running",
    Situation.VERIFY_NOT_APPLIED: "verify: not applied",
    Situation.VERIFY_TOO_SOON: "verify: not found too soon",
    Situation.VERIFY_FAILED: "verify cannot tell",
    Situation.LATER_STEP_FAILED: "a later step failed",
    Situation.COMPENSATION_FAILED: "compensation failed",
    Situation.COMPENSATION_REFUSED: "compensation refused",
    Situation.COMPENSATION_UNKNOWN: "compensation outcome unknown",
    Situation.DUPLICATE_REQUEST: "duplicate request",
}

MATRIX_GROUPS: tuple[tuple[str, tuple[Situation, ...]], ...] = (
    (
        "The step's own call",
        (
            Situation.DEFINITE_FAILURE,
            Situation.REFUSED,
            Situation.TIMEOUT,
            Situation.CRASH_BEFORE_PERSIST,
            Situation.CALL_IN_FLIGHT,
        ),
    ),
    (
        "What verify answers",
        (Situation.VERIFY_NOT_APPLIED, Situation.VERIFY_TOO_SOON, Situation.VERIFY_FAILED),
    ),
    (
        "A rollback reaches the step",
        (
            Situation.LATER_STEP_FAILED,
            Situation.COMPENSATION_FAILED,
            Situation.COMPENSATION_REFUSED,
            Situation.COMPENSATION_UNKNOWN,
        ),
    ),
)
"""The decision matrix in three tables (a duplicate request reads the same for every step)."""

DECISION_LABELS: dict[Decision, str] = {
    Decision.RETRY: "retry",
    Decision.VERIFY: "verify",
    Decision.WAIT: "wait",
    Decision.ROLLBACK: "roll back",
    Decision.MANUAL_REVIEW: "manual review",
    Decision.CONTINUE: "go on without it",
    Decision.COMPENSATE: "compensate",
    Decision.KEEP: "keep",
    Decision.RETURN_EXISTING: "return the existing run",
    Decision.NONE: "none",
}

CATEGORY_LABELS: dict[TestCategory, str] = {
    TestCategory.FAILURE_AFTER_STEP: "failure after a step",
    TestCategory.CRASH_BEFORE_PERSIST: "crash before the result is saved",
    TestCategory.TIMEOUT: "timeout of an external call",
    TestCategory.RETRY_AFTER_PARTIAL_SUCCESS: "retry after partial success",
    TestCategory.PARALLEL_SAME_OPERATION_ID: "two runs, one operation_id",
    TestCategory.COMPENSATION_FAILURE: "the compensation itself fails",
}

ANSWER_LABELS: dict[Answer, str] = {
    Answer.SUCCESS: "success",
    Answer.FAILURE: "failure (a repeat may succeed)",
    Answer.REFUSED: "refused (a repeat gets the same answer)",
    Answer.IN_PROGRESS: "still in progress",
    Answer.UNKNOWN: "outcome unknown",
}

KIND_LABELS: dict[StepKind, str] = {
    StepKind.READ_ONLY: "read-only",
    StepKind.IDEMPOTENT: "idempotent",
    StepKind.VERIFIABLE: "verify bound",
    StepKind.VERIFY_UNBOUND: "verify described, not bound",
    StepKind.UNVERIFIABLE: "no verify",
}

SEVERITY_ORDER: dict[Severity, int] = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}

LIST_LIMIT = 12
"""How many step ids a rendered list shows before it says how many more (long processes)."""


def words(value: str) -> str:
    """``needs_manual_review`` -> ``needs manual review`` (enum values read as words)."""
    return value.replace("_", " ")


def duration(seconds: float) -> str:
    """``10.0`` -> ``10s``, ``0.2`` -> ``200ms``, ``120.0`` -> ``2m`` (the planner's wording)."""
    return fmt_seconds(seconds)


def backoff_text(backoff: Backoff) -> str:
    """How the wait between attempts grows, in one phrase."""
    jitter = " with jitter" if backoff.jitter else ""
    return f"exponential{jitter}, from {duration(backoff.base_s)} up to {duration(backoff.max_s)}"


def bound_label(bound: BoundSpec | None, noun: str = "attempt") -> str:
    """``at most 3 attempts``, ``15m, at least 3 attempts``, ``10s``."""
    if bound is None:
        return "—"
    plural = "" if bound.attempts == 1 else "s"
    if bound.window_s is None:
        return f"at most {bound.attempts} {noun}{plural}"
    if bound.attempts is None:
        return duration(bound.window_s)
    return f"{duration(bound.window_s)}, at least {bound.attempts} {noun}{plural}"


def count_label(count: Count) -> str:
    """``×3`` when exact, ``×3+`` when the clock decides how many more."""
    return f"×{count.at_least}" if count.at_most == count.at_least else f"×{count.at_least}+"


def role_label(phase: Phase, *, pivot: bool, pivot_declared: bool, required: bool) -> str:
    """Where a step stands: ``pivot (declared)``, ``before the pivot``, ``best-effort``...

    ``pivot``: the process has one; without it every step is rolled back on a failure.
    """
    if phase is Phase.PIVOT:
        return f"pivot ({'declared' if pivot_declared else 'derived'})"
    if not pivot:
        where = "undone on a failure"
    else:
        where = "after the pivot" if phase is Phase.AFTER_PIVOT else "before the pivot"
    if not required:
        return "best-effort" if not pivot else f"{where}, best-effort"
    return where


def step_look(node: FlowNode) -> str:
    """What a drawing marks a step's box by, the first that holds: ``pivot``, ``best-effort``,
    ``irreversible``, ``read-only``, else ``step`` (the SVG and the Mermaid diagram alike)."""
    if node.pivot:
        return "pivot"
    if not node.required:
        return "best-effort"
    if node.step_class is StepClass.IRREVERSIBLE:
        return "irreversible"
    if node.step_class is StepClass.READ_ONLY:
        return "read-only"
    return "step"


def id_list(ids: Iterable[str], *, empty: str = "—") -> str:
    """Step ids joined with commas, or ``empty`` when there are none."""
    items = list(ids)
    return ", ".join(items) if items else empty


def elide(ids: Sequence[str], limit: int = LIST_LIMIT) -> tuple[list[str], int]:
    """The first ``limit`` ids of a long list, and how many were left out."""
    if len(ids) <= limit:
        return list(ids), 0
    return list(ids[:limit]), len(ids) - limit


def is_code(text: str) -> bool:
    """True when spec text binds code (``module:function``) rather than describing in words."""
    return re.match(IMPORT_PATH_PATTERN, text) is not None


def count_text(severity: Severity, count: int) -> str:
    """``3 warnings``, ``1 error``, ``2 info`` (info is a mass noun: no plural)."""
    plural = "s" if count > 1 and severity is not Severity.INFO else ""
    return f"{count} {severity.value}{plural}"
