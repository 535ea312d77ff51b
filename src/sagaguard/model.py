"""The process model: one description of a multi-step process, shared by plan, run and prove.

A *process* (saga) is an ordered list of *steps*; each step says what it changes, whether a
repeat is safe (idempotency), how to undo it (compensation) and how to learn its real
outcome (verify). The model is pure data: spec files and the Python API both produce it,
and the planner, the engine and the fault harness all consume it. Nothing here does I/O.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

STEP_ID_PATTERN = r"^[a-z][a-z0-9_]*$"
PROCESS_NAME_PATTERN = r"^[a-z][a-z0-9_-]*$"
IMPORT_PATH_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$"
MAX_PLANNED_STEPS = 20
"""Beyond this many steps a plan still works but warns: a saga that long is hard to recover."""
MAX_STEPS = 1000
"""The hard cap on steps in one process; a spec with more is refused."""
MAX_ATTEMPTS = 1000
"""The largest attempt bound a step or the defaults may set."""
MAX_DURATION_S = 90 * 24 * 3600.0
"""The longest duration any field may set (90 days): every duration is finite and positive."""
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_MAX_ATTEMPTS = 3
DEFAULT_COMPENSATION_ATTEMPTS = 3
DEFAULT_RETRY_FOR_S = 15 * 60.0
"""How long a step after the point of no return is pushed forward before a person is asked."""
DEFAULT_COMPENSATION_RETRY_FOR_S = 15 * 60.0
"""How long a failing compensation is retried: long enough to outlast a provider outage."""
DEFAULT_RESUBMISSION_WINDOW_S = 24 * 3600.0


class ChangeKind(StrEnum):
    """What a step changes in the world; ``none`` marks a read-only step."""

    DATABASE = "database"
    EXTERNAL_API = "external_api"
    QUEUE = "queue"
    EMAIL = "email"
    PAYMENT = "payment"
    RESERVATION = "reservation"
    NONE = "none"


class Idempotency(StrEnum):
    """Whether repeating the call with the same idempotency key has no second effect."""

    YES = "yes"
    NO = "no"
    UNKNOWN = "unknown"


class StateStore(StrEnum):
    """Where the team keeps process state today (shapes the checklist)."""

    DATABASE = "database"
    KEY_VALUE = "key_value"
    JOBS_TABLE = "jobs_table"
    EVENT_LOG = "event_log"
    STATE_MACHINE = "state_machine"


class Observability(StrEnum):
    """Observability the team already has."""

    LOGS = "logs"
    METRICS = "metrics"
    TRACES = "traces"
    DEAD_LETTER_QUEUE = "dead_letter_queue"
    ALERTS = "alerts"


class StepClass(StrEnum):
    """How a step behaves under rollback."""

    READ_ONLY = "read_only"
    COMPENSATABLE = "compensatable"
    IRREVERSIBLE = "irreversible"


IRREVERSIBLE_MARKER = "none"

# What a step of each kind does, for a step that declares no `action`.
_ACTION_BY_KIND = {
    ChangeKind.DATABASE: "writes to the database",
    ChangeKind.EXTERNAL_API: "calls an external service",
    ChangeKind.QUEUE: "publishes a message",
    ChangeKind.EMAIL: "sends an email",
    ChangeKind.PAYMENT: "charges or moves money",
    ChangeKind.RESERVATION: "reserves or holds capacity",
    ChangeKind.NONE: "reads data and changes nothing",
}
_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from ``10s``, ``500ms``, ``2m``, ``1h`` or a bare number of seconds.

    Every duration is finite, longer than zero and at most 90 days (:data:`MAX_DURATION_S`):
    an infinite timeout would make every call "unknown", an infinite lease would pin a run.
    """
    shown = _short_repr(value)
    if isinstance(value, bool):
        raise ValueError(f"{shown} is not a duration (use e.g. 10s, 500ms, 2m)")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:
            seconds = math.inf
    elif isinstance(value, str) and (match := _DURATION_RE.match(value)):
        seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    else:
        raise ValueError(f"{shown} is not a duration (use e.g. 10s, 500ms, 2m)")
    if math.isnan(seconds):
        raise ValueError(f"{shown} is not a duration (use e.g. 10s, 500ms, 2m)")
    if math.isinf(seconds):
        raise ValueError(f"{shown} is not a finite duration (at most 90 days)")
    if seconds <= 0:
        raise ValueError(f"{shown} must be longer than zero")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"{shown} is longer than the 90 days a duration may be")
    return seconds


def parse_attempts(value: Any) -> int:
    """A whole number of attempts, 1 to :data:`MAX_ATTEMPTS` (no booleans, no strings)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{_short_repr(value)} is not a whole number of attempts")
    if value < 1:
        raise ValueError(f"{value} must be at least 1")
    if value > MAX_ATTEMPTS:
        raise ValueError(f"{_short_repr(value)} is more than the {MAX_ATTEMPTS} attempts allowed")
    return value


def _strict_bool(value: Any) -> Any:
    if not isinstance(value, bool):
        raise ValueError(f"{_short_repr(value)} is not true or false")
    return value


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _yaml_bool_to_idempotency(value: Any) -> Any:
    # YAML 1.1 reads a bare yes/no/true/false as a boolean; the spec means yes/no.
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return value


def _none_string(value: Any) -> Any:
    # `compensation: none` is the irreversible marker; YAML `null` means "not declared".
    return value.strip() if isinstance(value, str) else value


Duration = Annotated[float, BeforeValidator(parse_duration)]
Attempts = Annotated[int, BeforeValidator(parse_attempts)]
Flag = Annotated[bool, BeforeValidator(_strict_bool)]
IdempotencyField = Annotated[Idempotency, BeforeValidator(_yaml_bool_to_idempotency)]


class Phase(StrEnum):
    """Where a step stands relative to the point of no return (the pivot)."""

    BEFORE_PIVOT = "before_pivot"
    """Compensatable territory: a failure here rolls the run back."""
    PIVOT = "pivot"
    """The go/no-go step: failing for good rolls back what came before it."""
    AFTER_PIVOT = "after_pivot"
    """The pivot completed: the step is pushed forward, never rolled back."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Signals(_Strict):
    """What each answer of the other side looks like, for the plan's step table.

    Each field overrides the wording the planner derives from the step's change kind.
    """

    success: str | None = None
    """The call took effect (e.g. a 2xx with the charge id and a succeeded status)."""
    failure: str | None = None
    """A definite failure a repeat may fix (e.g. a rate limit answered before any effect)."""
    refused: str | None = None
    """A refusal a repeat cannot change (e.g. a 402 or a decline)."""
    in_progress: str | None = None
    """The other side still works on it (e.g. a 409 under the same idempotency key)."""
    unknown: str | None = None
    """No telling what happened (e.g. a 5xx, a timeout, a reset connection)."""


class Step(_Strict):
    """One step of a process: its forward action, its reverse action and how to check it."""

    id: str = Field(pattern=STEP_ID_PATTERN, description="stable identifier, unique in the process")
    action: str | None = Field(default=None, description="what the step does going forward")
    changes: tuple[ChangeKind, ...] = Field(min_length=1, description="what the step changes")
    idempotent: IdempotencyField = Field(description="can the call be repeated with the same key")
    compensation: Annotated[str | None, BeforeValidator(_none_string)] = Field(
        default=None, description="reverse action; `none` = irreversible; absent = not declared"
    )
    verify: str | None = Field(default=None, description="how to learn the real outcome")
    external_id: str | None = Field(
        default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="name of the id to persist"
    )
    timeout: Duration | None = Field(default=None, description="per-call limit, seconds")
    max_attempts: Attempts | None = Field(default=None, description="forward attempts at most")
    retry_for: Duration | None = Field(
        default=None,
        description="after the pivot: how long a failing step is retried before a person is asked",
    )
    verify_after: Duration | None = Field(
        default=None,
        description="settle delay: a 'not found' from verify counts only once this has passed",
    )
    pivot: Flag = Field(default=False, description="marks the point of no return")
    required: Flag = Field(
        default=True, description="false: best-effort, its failure never rolls the run back"
    )
    rollback_condition: str | None = Field(
        default=None, description="when the compensation must not run"
    )
    signals: Signals | None = Field(
        default=None, description="what success, refusal and an unknown outcome look like"
    )
    mitigation: str | None = Field(
        default=None, description="what to do instead of undoing an irreversible step"
    )
    handler: str | None = Field(
        default=None, pattern=IMPORT_PATH_PATTERN, description="forward code, module:function"
    )
    compensate: str | None = Field(
        default=None, pattern=IMPORT_PATH_PATTERN, description="compensation code, module:function"
    )

    @field_validator("changes")
    @classmethod
    def _none_stands_alone(cls, value: tuple[ChangeKind, ...]) -> tuple[ChangeKind, ...]:
        if ChangeKind.NONE in value and len(value) > 1:
            raise ValueError("`none` (read-only) cannot be combined with other change kinds")
        if len(set(value)) != len(value):
            raise ValueError("a change kind is listed twice")
        return value

    @field_validator("action", "compensation", "verify", "mitigation", "rollback_condition")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty (omit the key instead)")
        return value

    @model_validator(mode="after")
    def _best_effort_is_no_pivot(self) -> Step:
        if self.pivot and not self.required:
            raise ValueError(
                "a best-effort step (required: false) cannot be the pivot: the point of no "
                "return must be a step the run cannot do without"
            )
        return self

    @property
    def read_only(self) -> bool:
        """True when the step changes nothing."""
        return self.changes == (ChangeKind.NONE,)

    @property
    def irreversible(self) -> bool:
        """True when the spec says the step cannot be undone (``compensation: none``)."""
        return (self.compensation or "").lower() == IRREVERSIBLE_MARKER

    @property
    def compensation_declared(self) -> bool:
        """True when the spec says anything about undoing the step."""
        return self.compensation is not None

    @property
    def step_class(self) -> StepClass:
        """Read-only, compensatable, or irreversible (undeclared compensation counts as none)."""
        if self.read_only:
            return StepClass.READ_ONLY
        if self.compensation is not None and not self.irreversible:
            return StepClass.COMPENSATABLE
        return StepClass.IRREVERSIBLE

    @property
    def has_verify(self) -> bool:
        """True when the step can learn its real outcome from the other side."""
        return self.verify is not None

    @property
    def verify_is_code(self) -> bool:
        """True when ``verify`` binds code (``module:function``) rather than describing a check."""
        return self.verify is not None and re.match(IMPORT_PATH_PATTERN, self.verify) is not None

    @property
    def safe_to_repeat(self) -> bool:
        """True when a repeat of the call cannot cause a second effect."""
        return self.read_only or self.idempotent is Idempotency.YES

    @property
    def action_text(self) -> str:
        """The declared action, or one derived from what the step changes, naming the step."""
        if self.action:
            return self.action
        name = self.id.replace("_", " ").capitalize()
        does = " and ".join(_ACTION_BY_KIND[c] for c in self.changes)
        return f"{name}: {does}"


class Defaults(_Strict):
    """Process-wide limits that apply to a step that sets none of its own."""

    timeout: Duration = DEFAULT_TIMEOUT_S
    max_attempts: Attempts = DEFAULT_MAX_ATTEMPTS
    retry_for: Duration = DEFAULT_RETRY_FOR_S
    """After the pivot: how long a failing step is retried before a person is asked."""
    verify_after: Duration | None = None
    """Settle delay before a "not found" from verify counts (none by default)."""
    compensation_attempts: Attempts = DEFAULT_COMPENSATION_ATTEMPTS
    """A failing compensation is tried at least this often ..."""
    compensation_retry_for: Duration = DEFAULT_COMPENSATION_RETRY_FOR_S
    """... and for at least this long after its first attempt, before a person is asked."""
    backoff_base: Duration = 0.2
    backoff_max: Duration = 30.0

    @model_validator(mode="after")
    def _backoff_grows(self) -> Defaults:
        if self.backoff_base > self.backoff_max:
            raise ValueError(
                f"backoff_base ({self.backoff_base:g}s) is longer than backoff_max "
                f"({self.backoff_max:g}s)"
            )
        return self


class Process(_Strict):
    """A whole process: its steps in order, where state lives, and what the team can observe."""

    name: str = Field(alias="process", pattern=PROCESS_NAME_PATTERN)
    version: str = Field(default="1", min_length=1)
    description: str | None = None
    state_store: StateStore
    observability: tuple[Observability, ...]
    alerts: dict[str, str] = Field(default_factory=dict)
    defaults: Defaults = Field(default_factory=Defaults)
    resubmission_window: Duration = Field(
        default=DEFAULT_RESUBMISSION_WINDOW_S,
        description="how long a client may resend an operation_id: idempotency keys live longer",
    )
    steps: tuple[Step, ...] = Field(min_length=1, max_length=MAX_STEPS)

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        return (
            str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
        )

    @field_validator("observability")
    @classmethod
    def _unique_observability(cls, value: tuple[Observability, ...]) -> tuple[Observability, ...]:
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _consistent(self) -> Process:
        seen: dict[str, int] = {}
        for index, step in enumerate(self.steps):
            if step.id in seen:
                raise DuplicateStepError(index, step.id, seen[step.id])
            seen[step.id] = index
        valid_routes = {"default"} | {c.value for c in ChangeKind} | set(seen)
        for key in self.alerts:
            if key not in valid_routes:
                raise UnknownAlertRouteError(key)
        declared = [i for i, step in enumerate(self.steps) if step.pivot]
        if len(declared) > 1:
            raise SecondPivotError(declared[1], self.steps[declared[1]].id, declared[0])
        return self

    @cached_property
    def pivot(self) -> Step | None:
        """The point of no return: the step declaring ``pivot: true``, else the first
        irreversible step that is required; None when every step can be undone."""
        for step in self.steps:
            if step.pivot:
                return step
        for step in self.steps:
            if step.required and step.step_class is StepClass.IRREVERSIBLE:
                return step
        return None

    @property
    def pivot_declared(self) -> bool:
        """True when a step declares the pivot; False when it is derived (or there is none)."""
        return any(step.pivot for step in self.steps)

    def phase(self, step: Step) -> Phase:
        """Where ``step`` stands relative to the pivot (before it when there is none)."""
        pivot = self.pivot
        if pivot is None:
            return Phase.BEFORE_PIVOT
        here, there = self.index(step.id), self.index(pivot.id)
        if here < there:
            return Phase.BEFORE_PIVOT
        return Phase.PIVOT if here == there else Phase.AFTER_PIVOT

    def step(self, step_id: str) -> Step:
        """The step with that id (KeyError when absent)."""
        if step_id not in self._positions:
            raise KeyError(step_id)
        return self.steps[self._positions[step_id]]

    def index(self, step_id: str) -> int:
        """Position of the step in the process (0-based; ValueError when absent)."""
        try:
            return self._positions[step_id]
        except KeyError:
            raise ValueError(f"{step_id!r} is not a step of {self.name!r}") from None

    @cached_property
    def _positions(self) -> dict[str, int]:
        # Computed once: a plan asks for positions (and phases) of every step many times.
        return {step.id: index for index, step in enumerate(self.steps)}

    def timeout_for(self, step: Step) -> float:
        """The step's timeout, or the process default."""
        return step.timeout if step.timeout is not None else self.defaults.timeout

    def max_attempts_for(self, step: Step) -> int:
        """The step's attempt bound, or the process default."""
        return step.max_attempts if step.max_attempts is not None else self.defaults.max_attempts

    def retry_for(self, step: Step) -> float:
        """The step's forward-recovery window, or the process default."""
        return step.retry_for if step.retry_for is not None else self.defaults.retry_for

    def verify_after_for(self, step: Step) -> float:
        """The step's settle delay before a "not found" from verify counts (0: none)."""
        if step.verify_after is not None:
            return step.verify_after
        return self.defaults.verify_after or 0.0

    def alert_route(self, step: Step | None) -> str | None:
        """Who is told about a step: its id's route, then its change kinds', then the default.

        Money goes to the payment route whenever the step moves money and one is given.
        """
        if step is not None:
            if step.id in self.alerts:
                return self.alerts[step.id]
            if ChangeKind.PAYMENT in step.changes and "payment" in self.alerts:
                return self.alerts["payment"]
            for kind in step.changes:
                if kind.value in self.alerts:
                    return self.alerts[kind.value]
        return self.alerts.get("default")


class DuplicateStepError(ValueError):
    """Raised inside validation; carries the position so the error can name ``steps[i].id``."""

    def __init__(self, index: int, step_id: str, first: int) -> None:
        super().__init__(f"duplicate step id {step_id!r} (first used at steps[{first}])")
        self.index = index
        self.step_id = step_id


class SecondPivotError(ValueError):
    """Raised inside validation when a second step declares ``pivot: true``."""

    def __init__(self, index: int, step_id: str, first: int) -> None:
        super().__init__(
            f"step {step_id!r} declares pivot: true, but steps[{first}] already does: "
            "a process has one point of no return"
        )
        self.index = index
        self.step_id = step_id


class UnknownAlertRouteError(ValueError):
    """Raised inside validation for an ``alerts`` key that names nothing."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"alert route {key!r} is not `default`, a change kind or a step id of this process"
        )
        self.key = key
