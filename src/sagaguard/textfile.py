"""Reading a text file a person named (a spec, an input): a regular file, UTF-8, bounded in size.

A FIFO given as a spec would block the command forever, a device (``/dev/zero``) would be
read without end; both are refused before a byte is read. The file is opened without
blocking and checked on the open descriptor, so nothing can swap it in between.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["MAX_TEXT_BYTES", "UnreadableFileError", "kind_of", "read_text_file"]

MAX_TEXT_BYTES = 16 * 1024 * 1024
"""The largest spec or input file read (16 MiB); a real one is a few kilobytes."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISSOCK, "a socket"),
)


class UnreadableFileError(ValueError):
    """Why a file cannot be read as text; the caller names the file and what it was for."""


def kind_of(mode: int) -> str:
    """What a file of this ``st_mode`` is, in words (``a named pipe (FIFO)``)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return next((what for test, what in _KINDS if test(mode)), "not a regular file")


def read_text_file(path: str | Path, *, limit: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of the regular file at ``path``; ``UnreadableFileError`` saying why not."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UnreadableFileError("no such file") from None
    except IsADirectoryError:
        raise UnreadableFileError("is a directory") from None
    except OSError as exc:
        raise UnreadableFileError(f"cannot be read ({exc.strerror or exc})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise UnreadableFileError(f"is {kind_of(mode)}, not a regular file")
    with os.fdopen(fd, "rb") as handle:
        try:
            data = handle.read(limit + 1)
        except OSError as exc:
            raise UnreadableFileError(f"cannot be read ({exc.strerror or exc})") from None
    if len(data) > limit:
        raise UnreadableFileError(f"is larger than {limit // (1024 * 1024)} MiB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(f"not UTF-8 text (byte {exc.start})") from None
