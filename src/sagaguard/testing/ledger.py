"""A ledger of external calls: what the outside world saw, to check the journal against.

Step, compensation and verify code under test writes one :class:`LedgerEntry` when it is
entered (``ledger.record(ctx, LedgerKind.CALL)``), before doing anything else, so the ledger
holds every call that may have had an effect, including one whose process died a moment
later. :class:`MemoryLedger` serves one process; :class:`FileLedger` is a JSON-lines file that
several processes append to, each entry flushed and fsynced before the call goes on, so it
survives ``SIGKILL`` of the writer (and a power cut). The invariant checks
(:mod:`sagaguard.testing.invariants`) read either.
"""

from __future__ import annotations

import json
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from sagaguard.engine.context import StepContext

__all__ = ["FileLedger", "Ledger", "LedgerEntry", "LedgerKind", "MemoryLedger"]


class LedgerKind(StrEnum):
    """Which of a step's functions was called."""

    CALL = "call"
    """The forward action."""
    COMPENSATE = "compensate"
    """The reverse action."""
    VERIFY = "verify"
    """The outcome check."""


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One external call: which run, step and function, with what key, by whom, when."""

    operation_id: str
    step_id: str
    kind: LedgerKind
    idempotency_key: str
    attempt: int
    pid: int
    time: float
    fencing_token: int | None = None
    """The caller's fencing token: tells the calls of a stale owner from the new owner's."""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (one line of a :class:`FileLedger`)."""
        return asdict(self) | {"kind": self.kind.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LedgerEntry:
        """The entry a :meth:`to_json` dict describes (``ValueError`` when it is malformed)."""
        try:
            return cls(
                operation_id=str(data["operation_id"]),
                step_id=str(data["step_id"]),
                kind=LedgerKind(data["kind"]),
                idempotency_key=str(data["idempotency_key"]),
                attempt=int(data["attempt"]),
                pid=int(data["pid"]),
                time=float(data["time"]),
                fencing_token=(
                    None if data.get("fencing_token") is None else int(data["fencing_token"])
                ),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a ledger entry: {data!r} ({exc!r})") from exc


class Ledger(ABC):
    """What both ledgers share: recording from a step's context, and queries."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock

    @abstractmethod
    def append(self, entry: LedgerEntry) -> None:
        """Store one entry durably before returning."""

    @abstractmethod
    def entries(self) -> list[LedgerEntry]:
        """Every entry, in the order they were appended."""

    def record(self, ctx: StepContext, kind: LedgerKind | str) -> LedgerEntry:
        """Append the call that ``ctx`` describes, as made by this process now."""
        entry = LedgerEntry(
            operation_id=ctx.operation_id,
            step_id=ctx.step_id,
            kind=LedgerKind(kind),
            idempotency_key=ctx.idempotency_key,
            attempt=ctx.attempt,
            pid=os.getpid(),
            time=self._clock(),
            fencing_token=ctx.fencing_token,
        )
        self.append(entry)
        return entry

    def select(
        self,
        *,
        operation_id: str | None = None,
        step_id: str | None = None,
        kind: LedgerKind | str | None = None,
        idempotency_key: str | None = None,
        pid: int | None = None,
    ) -> list[LedgerEntry]:
        """The entries matching every filter given, in append order."""
        wanted = None if kind is None else LedgerKind(kind)
        return [
            e
            for e in self.entries()
            if (operation_id is None or e.operation_id == operation_id)
            and (step_id is None or e.step_id == step_id)
            and (wanted is None or e.kind is wanted)
            and (idempotency_key is None or e.idempotency_key == idempotency_key)
            and (pid is None or e.pid == pid)
        ]

    def called(self, idempotency_key: str) -> bool:
        """True when a forward call carried this key (a fake provider's "it happened")."""
        return bool(self.select(kind=LedgerKind.CALL, idempotency_key=idempotency_key))

    def __iter__(self) -> Iterator[LedgerEntry]:
        return iter(self.entries())

    def __len__(self) -> int:
        return len(self.entries())


class MemoryLedger(Ledger):
    """A ledger in this process's memory (threads may share it)."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(clock=clock)
        self._lock = threading.Lock()
        self._entries: list[LedgerEntry] = []

    def append(self, entry: LedgerEntry) -> None:
        """Keep the entry."""
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[LedgerEntry]:
        """A copy of every entry so far."""
        with self._lock:
            return list(self._entries)


class FileLedger(Ledger):
    """A JSON-lines file shared by processes; every entry is on disk before ``append`` returns.

    Each entry is one ``write`` to a file opened with ``O_APPEND`` (so lines of concurrent
    writers never interleave), then ``fsync``. A process killed in the middle of a write
    leaves at most a torn last line without its newline; readers skip it.
    """

    def __init__(self, *, path: str | os.PathLike[str], clock: Callable[[], float] = time.time):
        super().__init__(clock=clock)
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.exists():
            self.path.touch()
            _fsync_directory(self.path.parent)

    def append(self, entry: LedgerEntry) -> None:
        """Append one line and fsync it."""
        line = (json.dumps(entry.to_json(), separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write to ledger {self.path}: {written} of {len(line)}")
                os.fsync(fd)
            finally:
                os.close(fd)

    def entries(self) -> list[LedgerEntry]:
        """Every complete line, decoded; a torn last line (writer killed) is skipped."""
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        # The last element is "" after a final newline, or a torn line without one.
        complete = lines[:-1]
        entries = []
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                entries.append(LedgerEntry.from_json(json.loads(line)))
            except (json.JSONDecodeError, ValueError) as exc:
                raise ValueError(f"{self.path}:{number}: bad ledger line: {exc}") from exc
        return entries


def _fsync_directory(directory: Path) -> None:
    """Make a newly created file's directory entry durable (a power cut keeps the file)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
