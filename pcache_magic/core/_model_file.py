"""The models.json format: what one model's entry holds, how strictly it is checked, how it is read.

The file is edited by hand (``$PCACHE_MODELS``), so a typo must be a readable error, never a
silent wrong price: fields are strict, dates are plain YYYY-MM-DD, and pydantic's errors
and JSON errors are reworded as 'where: what'.  `models` builds the lookup table on top.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = ["ModelInfo", "ObservedMinimum", "Prices", "TableFile", "Thinking", "describe_error", "read_json"]

_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")

# Strict so that a bool or a quoted number in a hand-edited file is an error, not a 1.
# At most a million dollars per million tokens: far above any price, and far below what breaks arithmetic.
_Usd = Annotated[float, Field(ge=0, le=1e6, allow_inf_nan=False, strict=True)]
_Tokens = Annotated[int, Field(gt=0, strict=True)]
_Name = Annotated[str, Field(min_length=1, pattern=r"^\S+$")]


def _check_date(value: str) -> str:
    """Dates are compared and shown to users, so only plain YYYY-MM-DD is accepted."""
    if not _DATE_RE.fullmatch(value):
        raise ValueError("must be a date written YYYY-MM-DD")
    date.fromisoformat(value)  # rejects 2026-02-30
    return value


class Prices(BaseModel):
    """USD per million tokens. All five rates are explicit because the cache
    multipliers are not uniform across models (e.g. cheaper reads on newer ones)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    input: _Usd
    cache_write_5m: _Usd
    cache_write_1h: _Usd
    cache_read: _Usd
    output: _Usd


class ObservedMinimum(BaseModel):
    """A minimum cacheable length that public reports put above the documented one.

    Kept beside the documented figure, never instead of it: the emulator follows the docs, and
    the pre-flight warns for a prefix between the two, naming where the report comes from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: _Tokens
    source: str = Field(min_length=1)
    as_of: str
    note: str = ""

    _as_of_is_date = field_validator("as_of")(_check_date)


class Thinking(BaseModel):
    """Which thinking modes a model takes, and whether it keeps earlier turns' thinking blocks.

    Both differ by model and both change what a request may send or what it costs: a mode the
    model does not take is a 400, and a model that strips earlier thinking bills (and caches)
    less once a new user turn follows."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    modes: tuple[Literal["enabled", "adaptive"], ...]
    """`enabled` (manual, with `budget_tokens`) and/or `adaptive`; empty: no extended thinking."""
    keeps_earlier: bool
    """True: earlier assistant turns' thinking stays in the prompt; False: it is stripped once a
    user turn that is not tool results follows (kept within a tool loop)."""
    source: str = Field(min_length=1)
    as_of: str
    note: str = ""

    _as_of_is_date = field_validator("as_of")(_check_date)


class ModelInfo(BaseModel):
    """One model's facts, with where and when they were read (figures go stale)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: _Name
    name: str = Field(min_length=1)
    aliases: tuple[_Name, ...] = ()
    min_cache_tokens: _Tokens
    observed_min_cache_tokens: ObservedMinimum | None = None
    """Where public reports disagree with `min_cache_tokens` (which stays the documented figure)."""
    context_window: _Tokens
    max_output_tokens: _Tokens
    prefill: bool = True
    """Whether a request may end with an assistant turn for the model to continue (Claude 4.6 and
    later answer 400)."""
    thinking: Thinking | None = None
    """Extended thinking as documented for the model; None (a user-added model): not checked."""
    prices: Prices
    source: str = Field(min_length=1)
    as_of: str
    note: str = ""

    _as_of_is_date = field_validator("as_of")(_check_date)


class TableFile(BaseModel):
    """The on-disk shape of models.json; versioned so the format can evolve."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal[1]
    as_of: str
    sources: dict[str, str]
    models: list[ModelInfo]

    _as_of_is_date = field_validator("as_of")(_check_date)


def describe_error(exc: ValidationError) -> str:
    """pydantic errors as short 'where: what' lines, for messages users read."""
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
