"""The recovery plan as data: the public contract every renderer (and `--format json`) reads.

``Plan.model_dump(mode="json")`` IS the JSON document of ``sagaguard plan --format json``
(format ``sagaguard.plan/v2``, documented key by key in ``docs/plan-json.md``). The models
are frozen and refuse unknown keys, so a renderer cannot invent a field and a consumer can
validate a stored plan with ``Plan.model_validate``. Everything a renderer shows is already
here, worded for this process: renderers format, they never re-derive. Decisions,
situations and step kinds are those of :mod:`sagaguard.rules`; statuses, alert kinds and
fault points those of :mod:`sagaguard.vocabulary`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from sagaguard.model import ChangeKind, Idempotency, Observability, Phase, StateStore, StepClass
from sagaguard.planner.part import Part
from sagaguard.planner.testplan import (
    Count,
    ExpectedAlert,
    ExpectedState,
    FaultKind,
    Injection,
    PartialFailureTest,
    StepExpectation,
    TestCategory,
)
from sagaguard.rules import Decision, Situation, StepKind
from sagaguard.vocabulary import AlertKind, FaultPoint, RunStatus, StepStatus

__all__ = [
    "PLAN_FORMAT",
    "AlertKind",
    "Answer",
    "Area",
    "Backoff",
    "BoundSpec",
    "ChainLink",
    "ChecklistItem",
    "Count",
    "DecisionEntry",
    "ExampleStates",
    "ExpectedAlert",
    "ExpectedState",
    "FaultKind",
    "FaultPoint",
    "Finding",
    "Flow",
    "FlowEdge",
    "FlowEdgeKind",
    "FlowNode",
    "FlowNodeKind",
    "Injection",
    "JournalRow",
    "PartialFailureTest",
    "Pivot",
    "Plan",
    "ProcessSummary",
    "RollbackFailurePolicy",
    "RollbackSequence",
    "RunStatus",
    "Severity",
    "Signal",
    "StepAction",
    "StepEntry",
    "StepExpectation",
    "StepStatus",
    "TestCategory",
]

PLAN_FORMAT = "sagaguard.plan/v2"


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


class Answer(StrEnum):
    """What the other side's answer to a step's call means."""

    SUCCESS = "success"
    """The call took effect."""
    FAILURE = "failure"
    """Answered, nothing changed, and a repeat may succeed (``StepFailed``)."""
    REFUSED = "refused"
    """Answered, nothing changed, and a repeat gets the same answer (``retry=False``)."""
    IN_PROGRESS = "in_progress"
    """The other side still works on it: an unknown outcome to verify later, never a refusal."""
    UNKNOWN = "unknown"
    """No telling whether it took effect (a timeout, a reset connection, a 5xx)."""


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
    """A failure for good that starts a rollback (or ends the run with nothing to undo)."""
    FORWARD_RECOVERY = "forward_recovery"
    """A failure for good after the pivot: retried within its window, then a person."""
    SKIPPED = "skipped"
    """A best-effort step failed for good: the run goes on without it."""
    COMPENSATION = "compensation"
    UNKNOWN_OUTCOME = "unknown_outcome"
    COMPENSATION_FAILED = "compensation_failed"


# --- process and step table ----------------------------------------------------------------


class Pivot(Part):
    """The point of no return: the go/no-go step, and how the plan knows it."""

    step: str
    declared: bool = Field(description="true: `pivot: true` in the spec; false: derived")
    reason: str = Field(description="why this step is the pivot, in words")


class ProcessSummary(Part):
    """What was planned: the process header as the spec gave it."""

    name: str
    version: str
    description: str | None
    state_store: StateStore
    observability: tuple[Observability, ...]
    alerts: dict[str, str]
    resubmission_window_s: float = Field(
        description="how long a client may resend an operation_id (`resubmission_window`)"
    )


class Signal(Part):
    """One kind of answer a step's call can get, what it looks like, and what follows."""

    answer: Answer
    looks_like: str
    then: str = Field(description="what the engine does with it, for this step")
    from_spec: bool = Field(description="true: the spec's `signals` gave it")


class StepEntry(Part):
    """One row of the step table."""

    id: str
    position: int = Field(description="1-based place in the process")
    action: str = Field(description="forward action")
    changes: tuple[ChangeKind, ...]
    idempotent: Idempotency
    step_class: StepClass = Field(alias="class")
    kind: StepKind = Field(description="the decision matrix row: what settles a lost answer")
    phase: Phase
    pivot: bool = Field(description="true for the point of no return")
    required: bool = Field(description="false: best-effort, its failure never rolls back")
    compensation: str | None = Field(description="compensating action; null when none declared")
    compensation_runs: bool = Field(
        description="true when a rollback of the engine can run the compensation"
    )
    mitigation: str | None = Field(description="what to do instead of undoing (irreversible)")
    rollback_conditions: tuple[str, ...] = Field(description="when compensation must NOT run")
    persist: tuple[str, ...] = Field(description="journal fields to persist for this step")
    signals: tuple[Signal, ...]
    verify: str | None
    verify_bound: bool = Field(description="true when code is bound to verify the step")
    external_id: str | None
    timeout_s: float
    max_attempts: int
    retry_for_s: float | None = Field(
        description="forward-recovery window (required steps after the pivot); else null"
    )
    verify_after_s: float = Field(description="settle delay before a 'not found' counts")
    alert_route: str | None
    alert_to: str = Field(description="who works a case of this step: the route, or the queue")


# --- rollback ------------------------------------------------------------------------------


class StepAction(Part):
    """What the engine does with a step that failed one way, and the instruction that says so."""

    decision: Decision
    then: Decision | None
    instruction: str


class ChainLink(Part):
    """One step of the rollback chain: what a rollback that reaches it does."""

    step: str
    decision: Decision = Field(description="`compensate`, or `keep` (it cannot be undone)")
    instruction: str = Field(description="the compensation, or the mitigation of a kept step")


class RollbackSequence(Part):
    """What happens when ``failed_step`` fails for good."""

    failed_step: str
    recovery: Decision = Field(
        description="`rollback` (undo before it), `manual_review` (forward recovery ends with "
        "a person) or `continue` (best-effort: the run goes on)"
    )
    summary: str = Field(description="the recovery in one line")
    definite_failure: StepAction
    refused: StepAction
    unknown_outcome: StepAction
    rollback_from: str | None = Field(
        description="the first link of `rollback_chain` the rollback visits; it then visits "
        "every later link, to the end of the chain (null: nothing to undo, or no rollback)"
    )
    compensate_count: int = Field(description="how many of those links are compensated")
    keep_count: int = Field(description="how many of those links are kept")
    final_status: RunStatus = Field(description="run status once recovery is done")


class Backoff(Part):
    """Exponential backoff with jitter between attempts."""

    base_s: float
    max_s: float
    jitter: bool = True


class BoundSpec(Part):
    """How long a decision is repeated: at least ``attempts``, and for ``window_s``."""

    attempts: int | None
    window_s: float | None


class RollbackFailurePolicy(Part):
    """What happens when undoing one compensatable step fails."""

    step: str
    compensation: str
    bound: BoundSpec = Field(description="compensation attempts and time window")
    backoff: Backoff
    retry_when: str = Field(description="which compensation failures are retried, and how long")
    manual_review_when: str
    halted_count: int = Field(
        description="how many earlier steps the rollback would still have compensated: the "
        "`compensate` links after this step in `rollback_chain`, left completed"
    )
    alert_kind: AlertKind
    alert_route: str | None = Field(description="route from `alerts`; null when none")
    alert_to: str = Field(description="who works the case: the route, or the review queue")


# --- decision matrix -------------------------------------------------------------------------


class DecisionEntry(Part):
    """One cell of the decision matrix: :func:`sagaguard.rules.decide`, in words."""

    step: str
    situation: Situation
    decision: Decision
    then: Decision | None = Field(description="what follows once the bound is spent")
    bound: BoundSpec | None
    alert: AlertKind | None = Field(description="the alert raised when it ends with a person")
    reason: str


# --- checklist and findings ---------------------------------------------------------------


class ChecklistItem(Part):
    """One production-readiness item."""

    id: str
    area: Area
    title: str
    detail: str
    commands: tuple[str, ...] = Field(description="shell commands the item asks to run")
    steps: tuple[str, ...] = Field(description="steps the item is about (may be empty)")


class Finding(Part):
    """A problem (or a note) about the process design."""

    severity: Severity
    step: str | None
    code: str
    message: str


# --- example states and flow ---------------------------------------------------------------


class JournalRow(Part):
    """One step row of the journal as it would look."""

    operation_id: str
    step_id: str
    status: StepStatus
    external_id: str | None
    attempts: int
    reason: str | None


class ExampleStates(Part):
    """The most dangerous failure of the process, shown as journal rows."""

    scenario: str
    impact: str = Field(description="why this failure is the most dangerous one")
    step: str = Field(description="the step whose failure is shown")
    before: tuple[JournalRow, ...]
    recovery: str = Field(description="what recovery does between `before` and `after`")
    after: tuple[JournalRow, ...]
    run_status_before: RunStatus
    run_status_after: RunStatus


class FlowNode(Part):
    """A node of the flow diagram."""

    id: str
    label: str
    kind: FlowNodeKind
    step: str | None
    step_class: StepClass | None = Field(alias="class")
    pivot: bool = False
    required: bool = True


class FlowEdge(Part):
    """A directed edge of the flow diagram."""

    source: str
    target: str
    kind: FlowEdgeKind
    label: str | None


class Flow(Part):
    """The forward and compensation paths, ready to draw."""

    nodes: tuple[FlowNode, ...]
    edges: tuple[FlowEdge, ...]


# --- the plan ------------------------------------------------------------------------------


class Plan(Part):
    """The complete recovery plan of one process (format ``sagaguard.plan/v2``)."""

    format: str = PLAN_FORMAT
    ready: bool = Field(description="false when a finding is an error: not for production")
    process: ProcessSummary
    pivot: Pivot | None
    steps: tuple[StepEntry, ...]
    rollback_chain: tuple[ChainLink, ...] = Field(
        description="every step a rollback can reach, latest first: the compensation path"
    )
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

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The error findings, in plan order."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)

    def step(self, step_id: str) -> StepEntry:
        """The step table row of ``step_id`` (KeyError when absent)."""
        for entry in self.steps:
            if entry.id == step_id:
                return entry
        raise KeyError(step_id)

    def rollback_of(self, sequence: RollbackSequence) -> tuple[ChainLink, ...]:
        """The links of the rollback chain ``sequence``'s rollback visits, latest first."""
        if sequence.rollback_from is None:
            return ()
        for index, link in enumerate(self.rollback_chain):
            if link.step == sequence.rollback_from:
                return self.rollback_chain[index:]
        raise KeyError(sequence.rollback_from)
