"""The numbers a journal URL (or a store's constructor) takes are bounded, and say so by name.

A journal URL is configuration, often read from ``$SAGAGUARD_DB``: ``?busy_timeout_s=inf``
used to reach SQLite as an endless wait (or an overflow), ``?pool_size=0`` quietly became 1
and ``?reconnect_s=nan`` made every reconnect deadline false. Each is refused with one
``StoreError`` that names the option, the value and the bound, before anything is opened.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sagaguard.exceptions import StoreError
from sagaguard.storage import open_store
from sagaguard.storage.sqlite import SQLiteStore

ABSURD = ["inf", "-inf", "nan", "-1", "1e300", "86401"]


@pytest.mark.parametrize("value", ABSURD)
def test_sqlite_busy_timeout_out_of_bounds_is_refused_by_name(value: str, tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with pytest.raises(StoreError, match=r"busy_timeout_s.*0 to 86400 seconds") as error:
        open_store(f"sqlite:///{path}?busy_timeout_s={value}")
    assert error.type is StoreError
    assert value in str(error.value)
    assert not path.exists()


@pytest.mark.parametrize("value", [math.inf, math.nan, -0.5, 1e300])
def test_sqlite_busy_timeout_given_in_python_is_bounded_too(value: float, tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with pytest.raises(StoreError, match="busy_timeout_s"):
        SQLiteStore(path=path, busy_timeout_s=value)
    assert not path.exists()


@pytest.mark.parametrize("value", ["0", "86400", "2.5"])
def test_sqlite_busy_timeout_within_bounds_is_used(value: str, tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/journal.sqlite3?busy_timeout_s={value}")
    try:
        assert store.info().details["busy_timeout_s"] == f"{float(value):g}"
    finally:
        store.close()


@pytest.mark.parametrize(
    ("option", "value", "bound"),
    [
        *(("reconnect_s", value, "0.1 to 86400 seconds") for value in [*ABSURD, "0"]),
        *(
            ("pool_size", value, "1 to 1000 connections")
            for value in [
                "0",
                "-3",
                "1001",
                "99999999999999999999",
                "9" * 400,
                "8.5",
                "inf",
                "many",
            ]
        ),
    ],
)
def test_postgresql_numeric_options_out_of_bounds_are_refused_by_name(
    option: str, value: str, bound: str
) -> None:
    """Refused while reading the URL: no server is reached, and no password is echoed."""
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg 3")
    url = f"postgresql://ada:s3cret@127.0.0.1:1/nowhere?{option}={value}"
    with pytest.raises(StoreError, match=f"{option}.*{bound}") as error:
        open_store(url)
    assert error.type is StoreError
    assert "s3cret" not in str(error.value)


@pytest.mark.parametrize(("option", "value"), [("pool_size", 0), ("reconnect_s", math.inf)])
def test_postgresql_numbers_given_in_python_are_bounded_too(option: str, value: float) -> None:
    pytest.importorskip("psycopg", reason="the PostgreSQL store needs psycopg 3")
    from sagaguard.storage.postgres import PostgresStore

    with pytest.raises(StoreError, match=option):
        PostgresStore(conninfo="postgresql://127.0.0.1:1/nowhere", **{option: value})
