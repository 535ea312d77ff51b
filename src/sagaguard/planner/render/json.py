"""The recovery plan as JSON: the machine-readable contract (format ``sagaguard.plan/v1``).

The document is exactly ``plan.model_dump(mode="json")``: keys in the models' field order
(stable from run to run), indented by two spaces, UTF-8 text kept as is, one final newline.
"""

from __future__ import annotations

import json

from sagaguard.planner.plan import Plan

__all__ = ["render_json"]


def render_json(plan: Plan) -> str:
    """The plan as a JSON document (ends with a newline)."""
    return json.dumps(plan.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"
