"""User signup defined in code: the decorator API of :class:`sagaguard.engine.Saga`.

The process that ``user_signup.yaml`` describes, written the way an application defines it,
with the welcome email moved last (it cannot be unsent, so it goes after every step that
can still fail). ``saga.process`` is the same model a spec file gives, so it plans, checks
and runs the same way; from this folder:

    sagaguard plan signup_saga:saga
    sagaguard check signup_saga:saga
    echo '{"email": "ada@example.com"}' > signup.json
    sagaguard run signup_saga:saga --operation-id signup-1 --input signup.json

Each step is a function that receives a :class:`~sagaguard.engine.StepContext`. Its first
docstring line is the action the plan shows; ``@step.compensate`` attaches the reverse
action (its docstring is the compensation) and ``@step.verify`` the check that settles an
unknown outcome by answering ``Applied(result)`` or ``NotApplied(reason)``. A step returns
its result (JSON, journaled with its external id), raises ``StepFailed`` when the other side
refused and nothing changed, and any other exception means the outcome is unknown.

The providers below are in-memory stand-ins, alive as long as the process, that honour the
idempotency key the way a real accounts table, CRM, broker and email provider must (the email
provider refuses bounced@example.com, to show a rollback); replace ``_services`` with clients.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from sagaguard.engine import Applied, NotApplied, Saga, StepContext
from sagaguard.exceptions import StepFailed

saga = Saga(
    "signup",
    description="Sign a new user up: account, CRM contact, signup event, welcome email",
    state_store="database",
    observability=["logs", "metrics", "alerts"],
    alerts={"default": "growth-oncall"},
)


@dataclass
class _Services:
    """Accounts table, CRM, broker and email provider, each keyed by the idempotency key."""

    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    emails: dict[str, dict[str, Any]] = field(default_factory=dict)
    suppressed: set[str] = field(default_factory=lambda: {"bounced@example.com"})
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: str) -> str:
        return f"{prefix}_{next(self.ids):04d}"


_services = _Services()


def _email(ctx: StepContext) -> str:
    data = ctx.input if isinstance(ctx.input, dict) else {}
    return str(data.get("email", "")).strip().lower()


def _user_id(ctx: StepContext) -> str:
    return str(ctx.external_ids["create_account"])


@saga.step(changes=["none"], idempotent="yes")
def check_email_available(ctx: StepContext) -> dict[str, Any]:
    """Look the email address up in the accounts table."""
    email = _email(ctx)
    taken = any(
        a["email"] == email and a["status"] == "active" for a in _services.accounts.values()
    )
    if not email or taken:
        raise StepFailed(f"email {email!r} is not available", retry=False)
    return {"email": email}


@saga.step(changes=["database"], idempotent="yes", external_id="user_id")
def create_account(ctx: StepContext) -> dict[str, Any]:
    """Insert the account row (status active); the idempotency key is a unique column."""
    account = _services.accounts.get(ctx.idempotency_key)
    if account is None:
        account = {"user_id": _services.new_id("usr"), "email": _email(ctx), "status": "active"}
        _services.accounts[ctx.idempotency_key] = account
    return {"user_id": account["user_id"]}


@create_account.compensate
def soft_delete_account(ctx: StepContext) -> None:
    """Soft-delete the account (status signup_rolled_back) by user_id."""
    for account in _services.accounts.values():
        if account["user_id"] == ctx.external_id:
            account["status"] = "signup_rolled_back"


@saga.step(
    changes=["external_api"], idempotent="unknown", external_id="crm_contact_id", timeout="8s"
)
def create_crm_contact(ctx: StepContext) -> dict[str, Any]:
    """Create the contact in the CRM with external_ref = user_id."""
    # The CRM says nothing about repeated requests: a second call may make a second contact.
    contact_id = _services.new_id("crm")
    _services.contacts[contact_id] = {"external_ref": _user_id(ctx), "archived": False}
    return {"crm_contact_id": contact_id}


@create_crm_contact.verify
def find_crm_contact(ctx: StepContext) -> Applied | NotApplied:
    """Search CRM contacts by external_ref = user_id."""
    user_id = _user_id(ctx)
    for contact_id, contact in _services.contacts.items():
        if contact["external_ref"] == user_id and not contact["archived"]:
            return Applied({"crm_contact_id": contact_id})
    return NotApplied(f"no CRM contact with external_ref {user_id}")


@create_crm_contact.compensate
def archive_crm_contact(ctx: StepContext) -> None:
    """Archive the CRM contact by crm_contact_id."""
    contact = _services.contacts.get(str(ctx.external_id))
    if contact is not None:
        contact["archived"] = True


@saga.step(changes=["queue"], idempotent="yes", external_id="message_id")
def publish_user_created(ctx: StepContext) -> dict[str, Any]:
    """Publish user_created to the events topic; the broker deduplicates on the message id."""
    event = _services.events.setdefault(
        ctx.idempotency_key,
        {"message_id": _services.new_id("msg"), "type": "user_created", "user": _user_id(ctx)},
    )
    return {"message_id": event["message_id"]}


@publish_user_created.compensate
def publish_signup_cancelled(ctx: StepContext) -> None:
    """Publish user_signup_cancelled for the user, referring to message_id."""
    _services.events.setdefault(
        f"{ctx.idempotency_key}:cancel",
        {"type": "user_signup_cancelled", "cancels": ctx.external_id},
    )


@saga.step(
    changes=["email"],
    idempotent="no",
    external_id="email_message_id",
    compensation="none",
    mitigation="Do not send it twice; if the account is later closed, send a closing notice",
)
def send_welcome_email(ctx: StepContext) -> dict[str, Any]:
    """Send the welcome email through the email provider."""
    if _email(ctx) in _services.suppressed:
        # Refused for good, nothing sent: the run rolls back the account and the contact.
        raise StepFailed("the provider refuses a suppressed recipient", retry=False)
    message_id = _services.new_id("eml")
    _services.emails[message_id] = {"to": _email(ctx), "tag": ctx.idempotency_key}
    return {"email_message_id": message_id}


@send_welcome_email.verify
def find_welcome_email(ctx: StepContext) -> Applied | NotApplied:
    """Look the message up in the provider's log by its tag (the idempotency key)."""
    for message_id, message in _services.emails.items():
        if message["tag"] == ctx.idempotency_key:
            return Applied({"email_message_id": message_id})
    return NotApplied("the provider's log has no message with this tag")
