"""Model facts (cache minimums, limits, prices) kept as data, not code.

Prices and minimum cacheable lengths change more often than the logic that uses
them, so they live in ``data/models.json`` with their date and source, and a
user can correct or extend them without a release: point ``$PCACHE_MODELS`` at
a JSON file, or call :meth:`ModelTable.with_overrides`.

The file's format and how strictly it is checked are `_model_file`; this module is
the table built on it: lookup with suggestions, overrides, and the default table.
It is pure (pydantic, json, importlib.resources, difflib): the emulator, the
pre-flight checks and the panel all build on it.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._model_file import ModelInfo, ObservedMinimum, Prices, TableFile, Thinking, describe_error, read_json
from .env import getenv, without_api_key

__all__ = [
    "MODELS_ENV",
    "ModelInfo",
    "ModelTable",
    "ObservedMinimum",
    "Prices",
    "Thinking",
    "UnknownModelError",
    "default_models",
    "keeps_thinking",
    "thinking_refusal",
]

MODELS_ENV = "PCACHE_MODELS"
"""Environment variable naming a JSON file of model overrides/additions."""

_SUGGEST_CUTOFF = 0.7  # difflib ratio; below this a "did you mean" is more noise than help


class UnknownModelError(KeyError):
    """A model id the table does not know; carries the nearest known name so a
    typo is a one-line fix instead of a silent fallback to wrong prices."""

    def __init__(self, model: str, suggestion: str | None = None) -> None:
        if isinstance(model, str):  # a key typed as the name, whole or in pieces
            model = without_api_key(model, pieces=True)
        super().__init__(model)
        self.model = model
        self.suggestion = suggestion

    def __str__(self) -> str:  # KeyError's default str() is the repr of the key
        message = f"Unknown model {self.model!r}."
        if self.suggestion:
            message += f" Did you mean {self.suggestion!r}?"
        return message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.model, self.suggestion))


def thinking_refusal(info: ModelInfo, mode: object) -> str | None:
    """The API's 400 message for a thinking mode `info` does not take; None when it takes it.

    Only `enabled` and `adaptive` are checked (`disabled` is the same as no thinking), and a model
    whose entry says nothing about thinking (a user-added one) is not second-guessed."""
    if info.thinking is None or mode not in ("enabled", "adaptive") or mode in info.thinking.modes:
        return None
    message = f'"thinking.type.{mode}" is not supported for this model.'
    if mode == "enabled" and "adaptive" in info.thinking.modes:
        message += ' Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
    return message


def keeps_thinking(info: ModelInfo | str | None) -> bool:
    """Whether earlier assistant turns' thinking blocks stay in the prompt for this model (an id is
    looked up in `default_models`).

    Unknown models and entries without thinking facts keep them: the prompt is then taken as sent."""
    if isinstance(info, str):
        try:
            info = default_models().get(info)
        except (KeyError, ValueError):  # unknown, or a broken $PCACHE_MODELS (reported where it is used)
            return True
    return info is None or info.thinking is None or info.thinking.keeps_earlier


def _merge(base: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge, so an override can change one price and keep the rest."""
    merged = dict(base)
    for key, value in patch.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = _merge(current, value)
        else:
            merged[key] = value
    return merged


class ModelTable:
    """An immutable, validated set of models, looked up by id or alias.

    Immutable so the cached default table can be shared safely; changes go
    through :meth:`with_overrides`, which returns a new table.
    """

    __slots__ = ("_as_of", "_index", "_models", "_sources")

    _as_of: str
    _index: dict[str, ModelInfo]
    _models: tuple[ModelInfo, ...]
    _sources: dict[str, str]

    def __init__(self, models: Iterable[ModelInfo], *, as_of: str, sources: Mapping[str, str]) -> None:
        models = tuple(models)
        index: dict[str, ModelInfo] = {}
        owners: dict[str, list[str]] = {}
        for info in models:
            for name in (info.id, *info.aliases):
                owners.setdefault(name, []).append(info.id)
                index[name] = info
        clashes = {name: ids for name, ids in owners.items() if len(ids) > 1}
        if clashes:
            detail = ", ".join(
                f"{name!r} (used by {', '.join(ids)})" for name, ids in sorted(clashes.items())
            )
            raise ValueError(f"duplicate model ids/aliases: {detail}")
        object.__setattr__(self, "_models", models)
        object.__setattr__(self, "_index", index)
        object.__setattr__(self, "_as_of", as_of)
        object.__setattr__(self, "_sources", dict(sources))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use with_overrides()")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    # -- construction -----------------------------------------------------

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelTable:
        """Build from the parsed models.json shape; ValueError says what is wrong."""
        try:
            parsed = TableFile.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"invalid model table: {describe_error(exc)}") from exc
        return cls(parsed.models, as_of=parsed.as_of, sources=parsed.sources)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> ModelTable:
        """Load a models.json file; every failure names the file, since the
        usual cause is a hand-edited file the user must go and fix."""
        data = read_json(Path(path))
        try:
            return cls.from_json(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc

    # -- lookup -----------------------------------------------------------

    @property
    def as_of(self) -> str:
        """Date the packaged figures were read."""
        return self._as_of

    @property
    def sources(self) -> dict[str, str]:
        """Where the figures come from (a copy: the table stays immutable)."""
        return dict(self._sources)

    def get(self, model: str) -> ModelInfo:
        """The model with this id or alias; UnknownModelError (with a suggestion) otherwise."""
        try:
            return self._index[model]
        except (KeyError, TypeError):
            raise UnknownModelError(model, self.suggest(model)) from None

    def __contains__(self, model: object) -> bool:
        return isinstance(model, str) and model in self._index

    def __iter__(self) -> Iterator[ModelInfo]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"<ModelTable {len(self)} models as of {self._as_of}>"

    def ids(self) -> list[str]:
        """Canonical ids in file order (aliases excluded)."""
        return [info.id for info in self._models]

    def suggest(self, model: str) -> str | None:
        """Nearest known id or alias, or None when nothing is plausibly meant."""
        if not isinstance(model, str) or not model:
            return None
        by_lower: dict[str, str] = {}
        for name in self._index:
            by_lower.setdefault(name.lower(), name)
        matches = difflib.get_close_matches(model.lower(), list(by_lower), n=1, cutoff=_SUGGEST_CUTOFF)
        return by_lower[matches[0]] if matches else None

    # -- overrides --------------------------------------------------------

    def with_overrides(self, overrides: Mapping[str, Mapping[str, Any]] | Iterable[ModelInfo]) -> ModelTable:
        """A new table with corrections applied (this one is unchanged).

        A mapping is ``{model id or alias: fields}``: fields for a known model
        are merged into it (nested ``prices`` too), so ``{"claude-opus-5":
        {"prices": {"input": 4}}}`` changes one rate. An unknown id adds a
        model and must give every required field. ``ModelInfo`` objects
        replace (or add) whole entries; an iterable may also hold dicts with
        an ``"id"`` key, the shape of the ``$PCACHE_MODELS`` file.
        """
        models = list(self._models)
        position = {info.id: i for i, info in enumerate(models)}
        seen: set[str] = set()
        for key, entry in _normalise_overrides(overrides):
            if isinstance(entry, ModelInfo):
                # Whole entries match canonical ids only; one named like an alias
                # is a new model and the duplicate check reports the clash.
                known = self._index.get(key) if key in position else None
            else:
                known = self._index.get(key)
            model_id = known.id if known is not None else key
            if model_id in seen:
                raise ValueError(f"override for {model_id!r} given more than once")
            seen.add(model_id)
            info = entry if isinstance(entry, ModelInfo) else self._patched(known, key, entry)
            if known is not None and info.id != known.id:
                raise ValueError(f"override for {key!r} may not change its id to {info.id!r}")
            if known is not None:
                models[position[known.id]] = info
            else:
                position[info.id] = len(models)
                models.append(info)
        return type(self)(models, as_of=self._as_of, sources=self._sources)

    @staticmethod
    def _patched(known: ModelInfo | None, key: str, patch: Mapping[str, Any]) -> ModelInfo:
        if "id" in patch and patch["id"] != (known.id if known else key):
            raise ValueError(f"override for {key!r} has a different id {patch['id']!r}")
        if known is not None:
            data = _merge(known.model_dump(), patch)
            what = f"override for {known.id!r}"
        else:
            data = {"id": key, **patch}
            what = f"new model {key!r} (unknown ids must give every field)"
        try:
            return ModelInfo.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"invalid {what}: {describe_error(exc)}") from exc


def _normalise_overrides(
    overrides: Mapping[str, Mapping[str, Any]] | Iterable[ModelInfo] | Iterable[Mapping[str, Any]],
) -> Iterator[tuple[str, ModelInfo | Mapping[str, Any]]]:
    """(key, entry) pairs from either accepted shape, rejecting anything else early."""
    if isinstance(overrides, Mapping):
        for key, entry in overrides.items():
            if not isinstance(key, str) or not isinstance(entry, Mapping):
                raise ValueError(
                    f"override for {key!r} must map a model id to an object of fields, "
                    f"not {type(entry).__name__}"
                )
            yield key, entry
        return
    if isinstance(overrides, str | bytes):
        raise ValueError("overrides must be a mapping or a list of models, not a string")
    for i, entry in enumerate(overrides):
        if isinstance(entry, ModelInfo):
            yield entry.id, entry
        elif isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            yield entry["id"], entry
        else:
            raise ValueError(
                f"override #{i} must be a ModelInfo or an object with a string 'id', "
                f"not {type(entry).__name__}"
            )


@functools.lru_cache(maxsize=1)
def _packaged() -> ModelTable:
    """The table shipped in the wheel; parsed once per process."""
    text = (resources.files(__package__ or "pcache_magic.core") / "data" / "models.json").read_text(
        encoding="utf-8"
    )
    return ModelTable.from_json(json.loads(text))


@functools.lru_cache(maxsize=8)
def _load(path: str | None, mtime_ns: int | None, size: int | None) -> ModelTable:
    """Packaged table plus the overrides file; keyed by the file's mtime and size
    so an edited file is picked up without a restart, and an unchanged one is free."""
    table = _packaged()
    if path is None:
        return table
    data = read_json(Path(path))
    if isinstance(data, Mapping) and "models" in data:
        data = data["models"]  # a whole models.json-shaped file is fine too
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of model entries (or {{'models': [...]}})")
    try:
        return table.with_overrides(data)
    except ValueError as exc:
        raise ValueError(f"{path} (from ${MODELS_ENV}): {exc}") from exc


def default_models() -> ModelTable:
    """The packaged models, with the ``$PCACHE_MODELS`` file applied if set.

    Entries in that file are partial for known ids (e.g. only ``prices.input``)
    and complete for new ones. A set-but-unreadable file is an error rather
    than silently ignored: the user asked for those figures.
    """
    raw = (getenv(MODELS_ENV) or "").strip()
    if not raw:
        return _load(None, None, None)
    path = Path(raw).expanduser()
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise ValueError(f"{path} (from ${MODELS_ENV}): file not found") from None
    except OSError as exc:
        raise ValueError(f"{path} (from ${MODELS_ENV}): cannot read: {exc.strerror}") from None
    return _load(str(path), stat.st_mtime_ns, stat.st_size)
