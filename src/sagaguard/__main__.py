"""``python -m sagaguard``: the same command line as the ``sagaguard`` script."""

from __future__ import annotations

from sagaguard.cli import main

if __name__ == "__main__":
    main()
