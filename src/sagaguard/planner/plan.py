"""The recovery plan as data: the public contract every renderer (and `--format json`) reads.

``Plan.model_dump(mode="json")`` IS the JSON document of ``sagaguard plan --format json``
(format ``sagaguard.plan/v1``, documented key by key in ``docs/plan-json.md``). The models
are frozen and refuse unknown keys, so a renderer cannot invent a field and a consumer can
validate a stored plan with ``Plan.model_validate``. Everything a renderer shows is already
here, worded for this process: renderers format, they never re-derive.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from sagaguard._legacy_rules import Decision, Situation
from sagaguard.model import ChangeKind, Idempotency, Observability, StateStore, StepClass
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus

__all__ = [
    "PLAN_FORMAT",
    "AlertKind",
    "Area",
    "Backoff",
    "ChecklistItem",
    "DecisionEntry",
    "ExampleStates",
    "ExpectedAlert",
    "ExpectedState",
    "FailedStepHandling",
    "FaultKind",
    "FaultPoint",
    "Finding",
    "Flow",
    "FlowEdge",
    "FlowEdgeKind",
    "FlowNode",
    "FlowNodeKind",
    "Injection",
    "IrreversibleOnTheWay",
    "JournalRow",
    "PartialFailureTest",
    "Plan",
    "ProcessSummary",
    "RollbackFailurePolicy",
    "RollbackSequence",
    "RunStatus",
    "Severity",
    "StepAction",
    "StepEntry",
    "StepStatus",
    "TestCategory",
]

PLAN_FORMAT = "sagaguard.plan/v1"


class _Part(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


# --- enumerations ------------------------------------------------------------------------


class Severity(StrEnum):
    """How bad a finding is; an ``error`` makes ``sagaguard check`` exit 1."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Area(StrEnum):
    """Who owns a checklist item."""

    ENGINEERING = "engineering"
    OPERATIONS = "operations"


class TestCategory(StrEnum):
    """The partial-failure tests the guide asks for."""

    __test__ = False  # not a pytest test class despite its name

    FAILURE_AFTER_STEP = "failure_after_step"
    CRASH_BEFORE_PERSIST = "crash_before_persist"
    TIMEOUT = "timeout"
    RETRY_AFTER_PARTIAL_SUCCESS = "retry_after_partial_success"
    PARALLEL_SAME_OPERATION_ID = "parallel_same_operation_id"
    COMPENSATION_FAILURE = "compensation_failure"


class FaultKind(StrEnum):
    """What the injected fault does at its point."""

    FAIL = "fail"
    """A definite failure: the call (or compensation) is answered "no", nothing changed."""
    CRASH = "crash"
    """The worker process dies; a restarted worker resumes from the journal."""
    TIMEOUT = "timeout"
    """The call took effect but its answer never arrives within the step's timeout."""
    CONCURRENT_START = "concurrent_start"
    """A second worker starts the same operation_id while the first is paused here."""
    RESUBMIT = "resubmit"
    """The client sends the same operation_id again (after a crash or lost answer)."""


class FlowNodeKind(StrEnum):
    """Kinds of node in the flow diagram."""

    START = "start"
    STEP = "step"
    COMPENSATION = "compensation"
    MITIGATION = "mitigation"
    END = "end"
    MANUAL_REVIEW = "manual_review"


class FlowEdgeKind(StrEnum):
    """Kinds of edge in the flow diagram."""

    FORWARD = "forward"
    FAILURE = "failure"
    COMPENSATION = "compensation"
    UNKNOWN_OUTCOME = "unknown_outcome"
    COMPENSATION_FAILED = "compensation_failed"


# --- process and step table ----------------------------------------------------------------


class ProcessSummary(_Part):
    """What was planned: the process header as the spec gave it."""

    name: str
    version: str
    description: str | None
    state_store: StateStore
    observability: tuple[Observability, ...]
    alerts: dict[str, str]


class StepEntry(_Part):
    """One row of the step table."""

    id: str
    position: int = Field(description="1-based place in the process")
    action: str = Field(description="forward action")
    changes: tuple[ChangeKind, ...]
    idempotent: Idempotency
    step_class: StepClass = Field(alias="class")
    compensation: str | None = Field(description="compensating action; null when none runs")
    mitigation: str | None = Field(description="what to do instead of undoing (irreversible)")
    rollback_condition: str = Field(description="when compensation must NOT run")
    persist: tuple[str, ...] = Field(description="journal fields to persist for this step")
    success_signals: tuple[str, ...]
    failure_signals: tuple[str, ...]
    verify: str | None
    external_id: str | None
    timeout_s: float
    max_attempts: int
    alert_route: str | None


# --- rollback ------------------------------------------------------------------------------


class IrreversibleOnTheWay(_Part):
    """An irreversible step passed while rolling back, and what to do instead of undoing it."""

    step: str
    mitigation: str


class StepAction(_Part):
    """A decision about one step and the concrete instruction that carries it out."""

    decision: Decision
    instruction: str


class FailedStepHandling(_Part):
    """What to do with the step that failed, by how it failed."""

    definite_failure: StepAction
    unknown_outcome: StepAction


class RollbackSequence(_Part):
    """The backward recovery when ``failed_step`` fails for good."""

    failed_step: str
    failed_step_handling: FailedStepHandling
    compensate: tuple[str, ...] = Field(description="step ids to undo, latest first")
    irreversible: tuple[IrreversibleOnTheWay, ...] = Field(
        description="irreversible steps met on the way back, latest first"
    )
    procedure: tuple[str, ...] = Field(description="the rollback as ordered instructions")
    final_status: RunStatus = Field(description="run status once every compensation succeeded")


class Backoff(_Part):
    """Exponential backoff with jitter between attempts."""

    base_s: float
    max_s: float
    jitter: bool = True


class RollbackFailurePolicy(_Part):
    """What happens when undoing one compensatable step fails."""

    step: str
    compensation: str
    attempts: int = Field(description="compensation attempts before manual review")
    backoff: Backoff
    retry_when: str = Field(description="which compensation failures are retried")
    manual_review_when: str
    halted_steps: tuple[str, ...] = Field(
        description="earlier compensatable steps left completed while the run waits"
    )
    alert_kind: AlertKind
    alert_route: str | None = Field(description="route from `alerts`; null when none")
    alert_to: str = Field(description="the route, or the instruction to add one")


# --- decision matrix -------------------------------------------------------------------------


class DecisionEntry(_Part):
    """One cell of the decision matrix, straight from :func:`sagaguard._legacy_rules.decide`."""

    step: str
    situation: Situation
    decision: Decision
    reason: str
    then: Decision | None = Field(description="what follows once a bounded decision is spent")
    alert: bool


# --- partial-failure tests -----------------------------------------------------------------


class Injection(_Part):
    """One fault to inject: where, on which step, what it does, how many times."""

    step: str
    point: FaultPoint
    fault: FaultKind
    times: int | None = Field(description="attempts it fires on; null = every attempt")


class ExpectedAlert(_Part):
    """The alert a test expects, and where it goes."""

    kind: AlertKind
    route: str | None
    step: str


class ExpectedState(_Part):
    """The final state a partial-failure test asserts."""

    run_status: RunStatus
    active: tuple[str, ...] = Field(description="side-effecting steps completed and not undone")
    compensated: tuple[str, ...] = Field(description="steps undone, in the order undone")
    manual_review: tuple[str, ...] = Field(description="steps waiting for a person")
    alert: ExpectedAlert | None
    checks: tuple[str, ...] = Field(description="further assertions, in words")


class PartialFailureTest(_Part):
    """One partial-failure test: scenario, injected faults, expected final state."""

    id: str
    category: TestCategory
    step: str = Field(description="the step the test is about")
    scenario: str
    injection: tuple[Injection, ...]
    expected: ExpectedState


# --- checklist and findings ---------------------------------------------------------------


class ChecklistItem(_Part):
    """One production-readiness item."""

    id: str
    area: Area
    title: str
    detail: str
    steps: tuple[str, ...] = Field(description="steps the item is about (may be empty)")


class Finding(_Part):
    """A problem (or a note) about the process design."""

    severity: Severity
    step: str | None
    code: str
    message: str


# --- example states and flow ---------------------------------------------------------------


class JournalRow(_Part):
    """One step row of the journal as it would look."""

    operation_id: str
    step_id: str
    status: StepStatus
    external_id: str | None
    attempts: int
    reason: str | None


class ExampleStates(_Part):
    """The most dangerous failure of the process, shown as journal rows."""

    scenario: str
    step: str = Field(description="the step whose failure is shown")
    before: tuple[JournalRow, ...]
    recovery: str = Field(description="what recovery does between `before` and `after`")
    after: tuple[JournalRow, ...]
    run_status_before: RunStatus
    run_status_after: RunStatus


class FlowNode(_Part):
    """A node of the flow diagram."""

    id: str
    label: str
    kind: FlowNodeKind
    step: str | None
    step_class: StepClass | None = Field(alias="class")


class FlowEdge(_Part):
    """A directed edge of the flow diagram."""

    source: str
    target: str
    kind: FlowEdgeKind
    label: str | None


class Flow(_Part):
    """The forward and compensation paths, ready to draw."""

    nodes: tuple[FlowNode, ...]
    edges: tuple[FlowEdge, ...]


# --- the plan ------------------------------------------------------------------------------


class Plan(_Part):
    """The complete recovery plan of one process (format ``sagaguard.plan/v1``)."""

    format: str = PLAN_FORMAT
    process: ProcessSummary
    steps: tuple[StepEntry, ...]
    rollback_sequences: tuple[RollbackSequence, ...]
    rollback_failure_policy: tuple[RollbackFailurePolicy, ...]
    decision_matrix: tuple[DecisionEntry, ...]
    tests: tuple[PartialFailureTest, ...]
    checklist: tuple[ChecklistItem, ...]
    findings: tuple[Finding, ...]
    example_states: ExampleStates
    flow: Flow

    @property
    def has_errors(self) -> bool:
        """True when a finding is an error (``sagaguard check`` then exits 1)."""
        return any(f.severity is Severity.ERROR for f in self.findings)

    def step(self, step_id: str) -> StepEntry:
        """The step table row of ``step_id`` (KeyError when absent)."""
        for entry in self.steps:
            if entry.id == step_id:
                return entry
        raise KeyError(step_id)
