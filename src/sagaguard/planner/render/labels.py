"""Words and small formatting helpers shared by the Markdown and HTML renderers.

Only presentation lives here: how an enum value reads to a person, how a duration or a
list of step ids is written. Nothing is decided about the process; the plan already did.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sagaguard._legacy_rules import Decision, Situation
from sagaguard.model import IMPORT_PATH_PATTERN
from sagaguard.planner.plan import Backoff, Severity, TestCategory

__all__ = [
    "CATEGORY_LABELS",
    "DECISION_LABELS",
    "SECTIONS",
    "SEVERITY_ORDER",
    "SITUATION_LABELS",
    "backoff_text",
    "count_text",
    "duration",
    "id_list",
    "is_code",
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
    Situation.TIMEOUT: "timeout",
    Situation.CRASH_BEFORE_PERSIST: "crash before persist",
    Situation.LATER_STEP_FAILED: "a later step failed",
    Situation.COMPENSATION_FAILED: "compensation failed",
    Situation.DUPLICATE_REQUEST: "duplicate request",
}

DECISION_LABELS: dict[Decision, str] = {
    Decision.RETRY: "retry",
    Decision.VERIFY: "verify",
    Decision.COMPENSATE: "compensate",
    Decision.MANUAL_REVIEW: "manual review",
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

SEVERITY_ORDER: dict[Severity, int] = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


def words(value: str) -> str:
    """``needs_manual_review`` -> ``needs manual review`` (enum values read as words)."""
    return value.replace("_", " ")


def duration(seconds: float) -> str:
    """``10.0`` -> ``10s``, ``0.2`` -> ``200ms``, ``120.0`` -> ``2m`` (the planner's wording)."""
    if seconds < 1:
        return f"{round(seconds * 1000):d}ms"
    for unit, size in (("h", 3600.0), ("m", 60.0)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def backoff_text(backoff: Backoff) -> str:
    """How the wait between attempts grows, in one phrase."""
    jitter = " with jitter" if backoff.jitter else ""
    return f"exponential{jitter}, from {duration(backoff.base_s)} up to {duration(backoff.max_s)}"


def id_list(ids: Iterable[str], *, empty: str = "—") -> str:
    """Step ids joined with commas, or ``empty`` when there are none."""
    items = list(ids)
    return ", ".join(items) if items else empty


def is_code(text: str) -> bool:
    """True when spec text binds code (``module:function``) rather than describing in words."""
    return re.match(IMPORT_PATH_PATTERN, text) is not None


def count_text(severity: Severity, count: int) -> str:
    """``3 warnings``, ``1 error``, ``2 info`` (info is a mass noun: no plural)."""
    plural = "s" if count > 1 and severity is not Severity.INFO else ""
    return f"{count} {severity.value}{plural}"
