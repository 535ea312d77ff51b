"""The recovery planner: a :class:`~sagaguard.model.Process` in, a :class:`Plan` out (pure).

``plan(process)`` builds the seven parts of the plan (step table, rollback sequences,
rollback-failure policy, decision matrix, partial-failure tests, checklist, findings) plus
example journal states and the flow diagram. Renderers in ``sagaguard.planner.render``
turn the :class:`Plan` into Markdown, JSON or HTML without re-deriving anything.
"""

from __future__ import annotations

from sagaguard.planner.build import plan
from sagaguard.planner.findings import FINDING_CODES
from sagaguard.planner.plan import PLAN_FORMAT, Finding, Plan, Severity

__all__ = ["FINDING_CODES", "PLAN_FORMAT", "Finding", "Plan", "Severity", "plan"]
