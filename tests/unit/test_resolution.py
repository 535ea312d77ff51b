"""A person's ``completed`` finding must carry the external id the step persists.

The rule lives in the library (:func:`sagaguard.engine.resolution.external_id_of`), so the
command line, a web page and a script calling ``Engine.resolve`` all refuse the same things.
"""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.engine.resolution import external_id_of
from sagaguard.exceptions import ResolutionError


@pytest.mark.parametrize(
    "result",
    [None, [1], "pay_1", 7, {}, {"id": "pay_1"}, {"payment_id": None}, {"payment_id": ""},
     {"payment_id": "  "}, {"payment_id": True}, {"payment_id": [1]}, {"payment_id": {}}],
)  # fmt: skip
def test_a_result_without_a_usable_id_is_refused(result: Any) -> None:
    with pytest.raises(ResolutionError, match="charge persists payment_id"):
        external_id_of("charge", "payment_id", result)


@pytest.mark.parametrize(("value", "expected"), [("pay_1", "pay_1"), (42, "42"), ("ch 9", "ch 9")])
def test_the_id_is_read_as_text(value: Any, expected: str) -> None:
    assert external_id_of("charge", "payment_id", {"payment_id": value, "x": 1}) == expected
