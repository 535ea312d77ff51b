"""The base of every model of a plan: frozen, strict, and serialized by its aliases."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Part"]


class Part(BaseModel):
    """A piece of the plan: immutable, refusing unknown keys, read back from its own JSON."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )
