"""What kind of thing a step really does, read from its change kinds and its action text.

``changes: [payment]`` covers a card charge and a bank transfer alike, and
``changes: [external_api]`` a DNS change as much as a CI run; their answers, their
providers and when they must not be undone differ. A :class:`Profile` picks the closest
kind of operation so the plan can speak in its terms (a 402 for a card, a rejection code
for a bank, ``PENDING``/``INSYNC`` for DNS). Pure and deterministic: the same step always
gets the same profile.
"""

from __future__ import annotations

import re
from enum import StrEnum

from sagaguard.model import ChangeKind, Step

__all__ = ["Profile", "is_notification", "lookup_place", "profile_of", "provider_of"]


class Profile(StrEnum):
    """The kind of operation a step performs."""

    PAYMENT = "payment"
    BANK_TRANSFER = "bank_transfer"
    FX_TRADE = "fx_trade"
    RESERVATION = "reservation"
    EMAIL = "email"
    SMS = "sms"
    NOTIFICATION = "notification"
    QUEUE = "queue"
    DNS_CHANGE = "dns_change"
    TEST_SUITE = "test_suite"
    EXTERNAL_API = "external_api"
    DATABASE = "database"
    READ_ONLY = "read_only"


NOTIFICATIONS = frozenset({Profile.EMAIL, Profile.SMS, Profile.NOTIFICATION})
"""Profiles of a message to people: never the reason to undo anything."""

_WORDS = {
    Profile.BANK_TRANSFER: r"transfer|payout|pay out|wire|sepa|swift|ach|bank|remit|settle",
    Profile.FX_TRADE: r"fx|foreign exchange|currency|convert|conversion",
    Profile.SMS: r"sms|text message",
    Profile.NOTIFICATION: (
        r"notify|notification|push|slack|teams message|release note|announce|page the"
    ),
    Profile.DNS_CHANGE: r"dns|cname|a record|txt record|hosted zone|name ?servers?",
    Profile.TEST_SUITE: r"tests?|test suite|smoke|ci run|ci pipeline|integration suite",
}
_PATTERNS = {p: re.compile(rf"\b(?:{w})\b") for p, w in _WORDS.items()}

_PROVIDER = {
    Profile.PAYMENT: "the payment provider",
    Profile.BANK_TRANSFER: "the bank",
    Profile.FX_TRADE: "the FX desk or liquidity provider",
    Profile.RESERVATION: "the reservation service",
    Profile.EMAIL: "the email provider",
    Profile.SMS: "the SMS provider",
    Profile.NOTIFICATION: "the messaging service",
    Profile.QUEUE: "the broker (deduplication by message id)",
    Profile.DNS_CHANGE: "the DNS provider",
    Profile.TEST_SUITE: "the CI system",
    Profile.EXTERNAL_API: "the API's owner",
    Profile.DATABASE: "the owners of the table it writes",
    Profile.READ_ONLY: "the data source",
}

_LOOKUP = {
    Profile.PAYMENT: "the payment provider's dashboard",
    Profile.BANK_TRANSFER: "the bank's payment status report (by end-to-end id)",
    Profile.FX_TRADE: "the trade blotter of the FX desk",
    Profile.RESERVATION: "the reservation service",
    Profile.EMAIL: "the email provider's message log",
    Profile.SMS: "the SMS provider's message log",
    Profile.NOTIFICATION: "the channel it posts to",
    Profile.QUEUE: "the broker and its consumers",
    Profile.DNS_CHANGE: "the DNS provider's change history",
    Profile.TEST_SUITE: "the CI system's run history",
    Profile.EXTERNAL_API: "the API it called",
    Profile.DATABASE: "the database",
    Profile.READ_ONLY: "the data source",
}


def _text(step: Step) -> str:
    return f"{step.id.replace('_', ' ')} {step.action or ''}".lower()


def _says(step: Step, profile: Profile) -> bool:
    return _PATTERNS[profile].search(_text(step)) is not None


def profile_of(step: Step) -> Profile:
    """The closest kind of operation for ``step`` (money first, then what its text says)."""
    kinds = set(step.changes)
    if ChangeKind.PAYMENT in kinds:
        if _says(step, Profile.FX_TRADE):
            return Profile.FX_TRADE
        if _says(step, Profile.BANK_TRANSFER):
            return Profile.BANK_TRANSFER
        return Profile.PAYMENT
    if step.read_only:
        return Profile.TEST_SUITE if _says(step, Profile.TEST_SUITE) else Profile.READ_ONLY
    if ChangeKind.RESERVATION in kinds:
        return Profile.RESERVATION
    if ChangeKind.EMAIL in kinds:
        return Profile.EMAIL
    if ChangeKind.QUEUE in kinds:
        return Profile.QUEUE
    if ChangeKind.EXTERNAL_API in kinds:
        for profile in (
            Profile.SMS,
            Profile.DNS_CHANGE,
            Profile.TEST_SUITE,
            Profile.NOTIFICATION,
        ):
            if _says(step, profile):
                return profile
        return Profile.EXTERNAL_API
    return Profile.DATABASE


def is_notification(step: Step) -> bool:
    """True for a message to people (an email, an SMS, a chat post): never worth a rollback."""
    return profile_of(step) in NOTIFICATIONS


def provider_of(step: Step) -> str:
    """Who can say whether a repeated call of ``step`` is a no-op."""
    return _PROVIDER[profile_of(step)]


def lookup_place(step: Step) -> str:
    """Where a person looks up whether ``step`` took effect."""
    return _LOOKUP[profile_of(step)]
