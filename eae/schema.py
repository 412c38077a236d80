"""The pydantic base of every parameter model: the objectives' weights (``eae.models.objectives``)
and the pipeline's params.yaml sections (``pipelines.config``).

A ``StrictModel`` refuses unknown keys and what pydantic's lax mode would silently convert: a
boolean where a number is expected (``epochs: true`` would train 1 epoch) and a number where a
boolean is expected (``compile: 2``). Strings pass: environment overrides arrive as text.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


def _leaf_types(annotation: Any) -> set:
    """The scalar types a field accepts: int | None -> {int, NoneType}, list[int] -> {int}."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, tuple):
        return set().union(*(_leaf_types(a) for a in typing.get_args(annotation)))
    return {annotation}


def strict_scalars(model: type[BaseModel], value: Any, field: str) -> Any:
    """``value`` unchanged, or ValueError when its type would be silently converted (see the module)."""
    leaves = _leaf_types(model.model_fields[field].annotation)
    items = value if isinstance(value, list) else [value]
    if leaves & {int, float} and bool not in leaves and any(isinstance(v, bool) for v in items):
        raise ValueError("expected a number, got a boolean")
    if leaves == {bool} and not isinstance(value, (bool, str)):
        raise ValueError("expected true or false")
    return value


class StrictModel(BaseModel):
    """Unknown keys, silently converted scalars (see the module) and infinite or NaN floats are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict(cls, value: Any, info: ValidationInfo) -> Any:
        return strict_scalars(cls, value, info.field_name)
