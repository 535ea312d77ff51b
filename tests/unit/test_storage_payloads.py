"""storage.payloads.dumps: the one JSON encoder of the journal, and the one error it raises."""

from __future__ import annotations

from typing import Any

import pytest

from sagaguard.exceptions import PayloadError, StoreError
from sagaguard.storage.payloads import EncodedJSON, dumps, input_hash


def _deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"next": value}
    return value


def test_a_value_too_deep_to_encode_is_a_payload_error_not_a_recursion_error() -> None:
    """The engine sends such a result to review; it must see a SagaGuardError to do so."""
    with pytest.raises(PayloadError, match="result of charge is nested too deeply"):
        dumps(_deep(3_000), what="result of charge")


def test_a_payload_error_is_a_store_error() -> None:
    assert issubclass(PayloadError, StoreError)


def test_the_input_hash_of_a_value_that_is_not_json_names_the_input() -> None:
    with pytest.raises(PayloadError, match=r"^input is not JSON-serializable"):
        input_hash({"a": {1, 2}})
    with pytest.raises(PayloadError, match=r"^input is nested too deeply"):
        input_hash(_deep(3_000))


def test_a_value_encoded_once_carries_what_a_reader_decodes() -> None:
    encoded = EncodedJSON.of({"ids": (1, 2), 3: None})

    assert encoded.text == '{"ids":[1,2],"3":null}'
    assert encoded.value == {"ids": [1, 2], "3": None}


def test_deep_but_encodable_values_still_encode() -> None:
    assert dumps(_deep(200)).count("next") == 200
