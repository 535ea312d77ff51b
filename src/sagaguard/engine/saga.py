"""Defining a saga in code: steps as decorated functions, bound to the one process model.

    saga = Saga("checkout", alerts={"default": "shop-oncall", "payment": "finance"})

    @saga.step(changes=["payment"], idempotent="unknown", external_id="payment_id")
    def charge_payment(ctx: StepContext) -> dict: ...

    @charge_payment.compensate
    def refund(ctx: StepContext) -> None: ...

    @charge_payment.verify
    def find_charge(ctx: StepContext) -> Applied | NotApplied: ...

``saga.process`` is a :class:`~sagaguard.model.Process`, so a coded saga is planned exactly
like a spec file; :meth:`Saga.from_process` binds a spec's ``handler``/``compensate``/``verify``
import paths, so a spec can be run.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sagaguard.exceptions import SagaDefinitionError
from sagaguard.model import Defaults, Process, StepClass
from sagaguard.spec import describe_validation_error

StepFunction = Callable[..., Any]
"""A step, compensation or verify function: ``def`` or ``async def``, taking a StepContext."""


@dataclass(frozen=True, slots=True)
class StepHandlers:
    """The code bound to one step."""

    call: StepFunction
    compensate: StepFunction | None = None
    verify: StepFunction | None = None


class StepDefinition:
    """A decorated step function; ``.compensate`` and ``.verify`` attach the other two."""

    def __init__(self, *, saga: Saga, fn: StepFunction, fields: dict[str, Any]) -> None:
        self._saga = saga
        self.fn = fn
        self.fields = fields
        self.compensate_fn: StepFunction | None = None
        self.verify_fn: StepFunction | None = None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", "step")

    @property
    def id(self) -> str:
        """The step id."""
        return str(self.fields["id"])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the undecorated function (handy in unit tests of the step itself)."""
        return self.fn(*args, **kwargs)

    def compensate(self, fn: StepFunction) -> StepFunction:
        """Attach the reverse action; its docstring's first line describes it in the plan."""
        self.compensate_fn = fn
        self._saga._invalidate()
        return fn

    def verify(self, fn: StepFunction) -> StepFunction:
        """Attach the outcome check; it returns ``Applied(result)`` or ``NotApplied(reason)``."""
        self.verify_fn = fn
        self._saga._invalidate()
        return fn


class Saga:
    """A process defined in code: its steps in declaration order and the code behind them."""

    def __init__(
        self,
        name: str,
        *,
        version: str = "1",
        description: str | None = None,
        state_store: str = "database",
        observability: Sequence[str] = ("logs",),
        alerts: Mapping[str, str] | None = None,
        defaults: Mapping[str, Any] | Defaults | None = None,
    ) -> None:
        self._header: dict[str, Any] = {
            "process": name,
            "version": version,
            "description": description,
            "state_store": state_store,
            "observability": list(observability),
            "alerts": dict(alerts or {}),
        }
        if defaults is not None:
            self._header["defaults"] = (
                defaults.model_dump() if isinstance(defaults, Defaults) else dict(defaults)
            )
        self._definitions: list[StepDefinition] = []
        self._bound: dict[str, StepHandlers] | None = None
        self._process: Process | None = None

    @property
    def name(self) -> str:
        """The process name."""
        return str(self._header["process"])

    def step(
        self,
        fn: StepFunction | None = None,
        *,
        id: str | None = None,
        changes: Iterable[str],
        idempotent: str | bool,
        action: str | None = None,
        compensation: str | None = None,
        verify: str | None = None,
        external_id: str | None = None,
        timeout: str | float | None = None,
        max_attempts: int | None = None,
        mitigation: str | None = None,
        pivot: bool | None = None,
        required: bool | None = None,
        retry_for: str | float | None = None,
        verify_after: str | float | None = None,
        rollback_condition: str | None = None,
    ) -> Callable[[StepFunction], StepDefinition]:
        """Declare a step; the decorated function is its forward action.

        ``compensation`` describes the reverse action in words; attaching one with
        ``@step.compensate`` fills it from the function's docstring. ``compensation="none"``
        declares the step irreversible. ``pivot=True`` marks the point of no return,
        ``required=False`` a best-effort step whose failure never rolls the run back;
        ``retry_for`` and ``verify_after`` are durations, as in a spec.
        """
        fields: dict[str, Any] = {
            "id": id,
            "action": action,
            "changes": list(changes),
            "idempotent": idempotent,
            "compensation": compensation,
            "verify": verify,
            "external_id": external_id,
            "timeout": timeout,
            "max_attempts": max_attempts,
            "mitigation": mitigation,
            "pivot": pivot,
            "required": required,
            "retry_for": retry_for,
            "verify_after": verify_after,
            "rollback_condition": rollback_condition,
        }

        def decorate(func: StepFunction) -> StepDefinition:
            fields["id"] = fields["id"] or func.__name__
            if fields["action"] is None:
                fields["action"] = _first_line(func)
            definition = StepDefinition(saga=self, fn=func, fields=fields)
            if any(d.id == definition.id for d in self._definitions):
                raise SagaDefinitionError(f"saga {self.name!r}: step {definition.id!r} twice")
            self._definitions.append(definition)
            self._invalidate()
            return definition

        if fn is not None:
            raise SagaDefinitionError("use @saga.step(changes=..., idempotent=...) with arguments")
        return decorate

    @property
    def process(self) -> Process:
        """The model of this saga (validated; ``SagaDefinitionError`` names the bad field)."""
        if self._process is None:
            self._process, self._bound = self._build()
        return self._process

    def handlers(self, step_id: str) -> StepHandlers:
        """The code bound to a step."""
        if self._bound is None:
            self._process, self._bound = self._build()
        return self._bound[step_id]

    def check_runnable(self) -> None:
        """Raise ``SagaDefinitionError`` when the saga cannot be executed as declared."""
        process = self.process
        for step in process.steps:
            handlers = self.handlers(step.id)
            if step.step_class is StepClass.COMPENSATABLE and handlers.compensate is None:
                raise SagaDefinitionError(
                    f"saga {process.name!r}: step {step.id!r} declares a compensation "
                    f"({step.compensation!r}) but no compensation code is bound"
                )

    def has_async_code(self) -> bool:
        """True when any step, compensation or verify bound to the saga is a coroutine function."""
        self.process  # noqa: B018 - builds the bindings
        assert self._bound is not None
        return any(
            _is_async(fn)
            for handlers in self._bound.values()
            for fn in (handlers.call, handlers.compensate, handlers.verify)
            if fn is not None
        )

    def _invalidate(self) -> None:
        self._process = None
        self._bound = None

    def _build(self) -> tuple[Process, dict[str, StepHandlers]]:
        steps = []
        bound: dict[str, StepHandlers] = {}
        for definition in self._definitions:
            fields = {k: v for k, v in definition.fields.items() if v is not None}
            if definition.compensate_fn is not None and "compensation" not in fields:
                fields["compensation"] = _first_line(definition.compensate_fn)
            if definition.verify_fn is not None and "verify" not in fields:
                fields["verify"] = _first_line(definition.verify_fn)
            steps.append(fields)
            bound[definition.id] = StepHandlers(
                call=definition.fn,
                compensate=definition.compensate_fn,
                verify=definition.verify_fn,
            )
        if not steps:
            raise SagaDefinitionError(f"saga {self.name!r} has no steps")
        data = {k: v for k, v in self._header.items() if v is not None} | {"steps": steps}
        try:
            process = Process.model_validate(data)
        except ValidationError as exc:
            raise SagaDefinitionError(
                f"saga {self.name!r}: {describe_validation_error(exc, data)}"
            ) from None
        return process, bound

    @classmethod
    def from_process(cls, process: Process, *, base_dir: Path | None = None) -> Saga:
        """A runnable saga from a spec whose steps bind code by import path.

        ``handler`` is required on every step; ``compensate`` on every compensatable step;
        ``verify`` binds code when it reads ``module:function``. ``base_dir`` (the spec's
        folder) is put on ``sys.path`` so the spec's own modules import.
        """
        bound: dict[str, StepHandlers] = {}
        for index, step in enumerate(process.steps):
            if step.handler is None:
                raise SagaDefinitionError(
                    f"steps[{index}].handler: step {step.id!r} binds no code; this spec can be "
                    "planned but not run (add handler: module:function)"
                )
            bound[step.id] = StepHandlers(
                call=import_callable(step.handler, f"steps[{index}].handler", base_dir),
                compensate=(
                    import_callable(step.compensate, f"steps[{index}].compensate", base_dir)
                    if step.compensate
                    else None
                ),
                verify=(
                    import_callable(step.verify, f"steps[{index}].verify", base_dir)
                    if step.verify is not None and step.verify_is_code
                    else None
                ),
            )
        return cls.binding(process, bound)

    @classmethod
    def binding(cls, process: Process, handlers: Mapping[str, StepHandlers]) -> Saga:
        """A runnable saga of ``process`` whose steps run the code ``handlers`` gives them.

        How a spec's import paths are bound, and how the fault harness binds simulated
        providers to a spec that has no code yet. ``SagaDefinitionError`` when a step has no
        handlers or a compensatable step no compensation.
        """
        missing = [step.id for step in process.steps if step.id not in handlers]
        if missing:
            raise SagaDefinitionError(f"saga {process.name!r}: no code bound to {missing}")
        saga = cls.__new__(cls)
        saga._header = {}
        saga._definitions = []
        saga._process = process
        saga._bound = {step.id: handlers[step.id] for step in process.steps}
        saga.check_runnable()
        return saga


def import_callable(path: str, field: str, base_dir: Path | None = None) -> StepFunction:
    """Import ``module:function``; ``SagaDefinitionError`` names the field when it fails."""
    module_name, _, attr = path.partition(":")
    if base_dir is not None and str(base_dir) not in sys.path:
        sys.path.insert(0, str(base_dir))
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise SagaDefinitionError(
            f"{field}: cannot import module {module_name!r} ({exc})"
        ) from None
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise SagaDefinitionError(f"{field}: {module_name!r} has no {attr!r}") from None
    if isinstance(target, StepDefinition):
        target = target.fn
    if not callable(target):
        raise SagaDefinitionError(f"{field}: {path!r} is not callable")
    return target  # type: ignore[no-any-return]


def _is_async(fn: StepFunction) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - an async callable object
    )


def _first_line(fn: StepFunction) -> str:
    doc = inspect.getdoc(fn)
    if doc and doc.strip():
        return doc.strip().splitlines()[0].rstrip(".")
    return f"Run {getattr(fn, '__qualname__', repr(fn))}"
