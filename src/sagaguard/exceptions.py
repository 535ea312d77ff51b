"""Every error sagaguard raises on purpose.

One root, one class per thing a caller can act on. Driver errors are wrapped
(``raise StoreError(...) from exc``) so callers never import a database driver to
catch a failure. Each class's docstring is its default message.

    SagaGuardError
    ├── SpecError                  a process spec is missing, unreadable or invalid
    ├── PlanError                  a process cannot be planned (a coded saga fails to import)
    ├── StoreError                 the journal store failed (driver error wrapped)
    │   ├── UnsupportedStoreError  no store for that URL scheme
    │   ├── SchemaVersionError     the journal was written by a newer sagaguard
    │   └── PayloadError           an input, result or event payload is not storable JSON
    ├── InvalidOperationIdError    an operation_id is empty, too long or holds unprintable text
    ├── RunNotFoundError           no run under that operation_id
    ├── OperationConflictError     the operation_id exists with a different input or process
    ├── StaleOwnerError            this owner lost the run's lease: its write was rejected (fencing)
    ├── RunBusyError               another live owner holds the run
    ├── ResolutionError            a manual-review resolution does not fit the run's state
    ├── SagaDefinitionError        a coded saga is wired wrong (missing handler, duplicate step)
    └── EngineUsageError           the engine was called where it cannot serve the call

``StepFailed`` is not an error of sagaguard: step code raises it to say "definite failure,
nothing changed", which makes a retry safe.
"""

from __future__ import annotations

from typing import Any


class SagaGuardError(Exception):
    """sagaguard failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (type(self).__doc__ or type(self).__name__).strip())


class SpecError(SagaGuardError):
    """The process spec is invalid."""


class PlanError(SagaGuardError):
    """The process cannot be planned."""


class StoreError(SagaGuardError):
    """The journal store failed."""


class UnsupportedStoreError(StoreError):
    """No journal store handles that URL."""


class SchemaVersionError(StoreError):
    """The journal was written by a newer version of sagaguard."""


class PayloadError(StoreError):
    """A payload is not JSON the journal can store."""


class InvalidOperationIdError(SagaGuardError):
    """The operation_id is not one the journal accepts."""


class RunNotFoundError(SagaGuardError):
    """No run has that operation_id."""


class OperationConflictError(SagaGuardError):
    """The operation_id already names a run with a different input or process."""


class StaleOwnerError(SagaGuardError):
    """This owner no longer holds the run: its write was rejected."""


class RunBusyError(SagaGuardError):
    """Another owner holds a live lease on the run."""


class ResolutionError(SagaGuardError):
    """The resolution does not fit the run's current state."""


class SagaDefinitionError(SagaGuardError):
    """The saga definition is incomplete or inconsistent."""


class EngineUsageError(SagaGuardError):
    """The engine cannot serve this call here (e.g. ``run()`` of async steps inside a loop)."""


class StepFailed(Exception):  # noqa: N818 - the name reads as the fact step code states
    """A step failed definitely and changed nothing, so retrying it is safe.

    Raise it from step or compensation code when the other side answered "no" (a card
    declined, a 4xx that rejected the request before any effect). Any other exception,
    and a timeout, means the outcome is unknown and is handled by the recovery rules.

    ``retry=False`` says a repeat would get the same answer (a decline, a validation error):
    the engine stops retrying at once instead of spending the step's attempts on it.
    """

    def __init__(
        self, reason: str = "step failed", *, retry: bool = True, details: Any = None
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry = retry
        self.details = details
