"""The ``sagaguard demo``: the guide's checkout incident on simulated providers and a real journal.

:mod:`~sagaguard.demo.providers` plays the outside world and keeps a ledger of every effect;
:mod:`~sagaguard.demo.saga` is the checkout saga written against it;
:mod:`~sagaguard.demo.scenarios` plays the two incidents and checks their claims.
"""

from __future__ import annotations

from sagaguard.demo.providers import Entry, Ledger, World, simulated_fault
from sagaguard.demo.saga import build_saga
from sagaguard.demo.scenarios import SCENARIOS, Check, JournalTap, Played, Scenario, play

__all__ = [
    "SCENARIOS",
    "Check",
    "Entry",
    "JournalTap",
    "Ledger",
    "Played",
    "Scenario",
    "World",
    "build_saga",
    "play",
    "simulated_fault",
]
