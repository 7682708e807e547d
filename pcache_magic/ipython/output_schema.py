"""`%%claude --schema NAME`: structured outputs from a notebook's dict, pydantic model or .json file.

NAME is looked up as a notebook variable first: a dict is a JSON schema, sent as written; a
pydantic model class becomes its schema through anthropic's own `transform_schema` (what
`client.messages.parse` sends: `additionalProperties: false` on every object, constraints the
API refuses, such as `minimum`, moved into descriptions; properties with defaults stay optional,
as the API allows up to 24).  Otherwise NAME is a path to a .json file, read through the cell's
bounded reader (`files.CellFiles`).  The format is checked with the emulator's own checker
(`core.output_format`) before anything is sent, so a schema the API would refuse is one line
naming the keyword.

With `-o`, the reply is parsed: a model instance (validated by pydantic, which also enforces the
constraints moved into descriptions) or the JSON value.  A reply that does not parse (cut by
max_tokens, a refusal, a tool call with no text) keeps its text in the variable, and the cell
then fails with one line saying why, so that "run all" stops before code that expects the object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic
from anthropic import transform_schema
from anthropic.types import JSONOutputFormatParam
from IPython.core.error import UsageError

from ..core import strict_json
from ..core.fmt import visible
from .files import CellFiles
from .formats import reply_text

if TYPE_CHECKING:
    from ..core.record import CallRecord

__all__ = ["OutputSchema", "parse_reply", "resolve_schema", "store_reply"]


@dataclass(frozen=True, slots=True)
class OutputSchema:
    """What `--schema NAME` asks for: the request's format, and the model that parses the reply."""

    name: str
    format: JSONOutputFormatParam
    model: type[pydantic.BaseModel] | None = None

    @property
    def output_config(self) -> dict[str, Any]:
        return {"format": dict(self.format)}


def _is_model(value: object) -> bool:
    return isinstance(value, type) and issubclass(value, pydantic.BaseModel)


def _one_line(error: BaseException) -> str:
    """`error` as its type and the start of its first line: a refusal stays one short line."""
    first = str(error).splitlines()[0] if str(error) else ""
    first = first if len(first) <= 60 else first[:59] + "…"
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _from_file(name: str) -> dict[str, Any]:
    files = CellFiles()
    try:
        paths = files.expand([name])
        if len(paths) != 1:
            raise ValueError(f"{name[:60]}: matches {len(paths)} files; give one")
        (path,) = paths
        data = files.read(path, files.limits.file_bytes)
    except ValueError as error:
        raise UsageError(f"--schema {error}") from None
    try:
        value = strict_json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise UsageError(f"--schema {path}: not valid JSON ({reason}); fix the file.") from None
    if not isinstance(value, dict):
        raise UsageError(
            f"--schema {path}: the file holds a JSON {type(value).__name__}, not a schema object."
        )
    return value


def resolve_schema(name: str, namespace: Mapping[str, Any], secrets: Iterable[str] = ()) -> OutputSchema:
    """The format `--schema NAME` asks for, or one UsageError before anything is sent."""
    from ..core.output_format import format_problem  # here: loading the extension does not import it

    model: type[pydantic.BaseModel] | None = None
    if name.isidentifier() and name in namespace:
        value = namespace[name]
        if _is_model(value):
            model = value
            try:
                schema = transform_schema(value)
            except Exception as error:  # a field type pydantic or the SDK cannot put in a schema
                raise UsageError(
                    f"--schema {name}: no JSON schema for this model ({_one_line(error)})."
                ) from None
        elif isinstance(value, Mapping):
            try:
                schema = dict(value)
            except Exception as error:  # a mapping whose keys() or items raise
                raise UsageError(
                    f"--schema {name}: the mapping cannot be read ({_one_line(error)})."
                ) from None
        else:
            raise UsageError(
                f"--schema {name}: a {type(value).__name__}, not a schema; give a dict (a JSON schema), "
                "a pydantic model class or a path to a .json file."
            )
    elif name.isidentifier() and not Path(name).exists():
        raise UsageError(
            f"--schema {name}: no such notebook variable; define it (a dict or a pydantic model class) "
            "or give a path to a .json file."
        )
    else:
        schema = _from_file(name)
    try:
        text = json.dumps(schema, allow_nan=False)
    except RecursionError:
        raise UsageError(f"--schema {name}: the schema nests too deeply to be JSON; flatten it.") from None
    except (TypeError, ValueError) as error:
        raise UsageError(f"--schema {name}: the schema is not JSON ({_one_line(error)}).") from None
    if any(s and len(s) >= 8 and s in text for s in secrets):
        raise UsageError(f"--schema {name}: the schema holds the API key; it is never sent.")
    fmt: JSONOutputFormatParam = {"type": "json_schema", "schema": json.loads(text)}
    problem = format_problem(fmt)
    if problem is not None:
        # what transform_schema rewrites: limits moved into descriptions, additionalProperties set
        limits = model is None and any(w in problem for w in ("not supported", "additionalProperties"))
        hint = ", or give a pydantic model (anthropic's transform_schema rewrites limits)" * limits
        refused = f"--schema {name}: the API refuses it: {problem.rstrip('.')}"
        raise UsageError(visible(f"Not sent: {refused}. Change that part{hint}."))
    return OutputSchema(name, fmt, model)


def parse_reply(text: str, schema: OutputSchema, stop_reason: str | None) -> Any:
    """The reply as the object `schema` describes; ValueError (one line) when it does not parse."""
    try:
        if schema.model is not None:
            return schema.model.model_validate_json(text)
        return json.loads(text)
    except (ValueError, pydantic.ValidationError) as error:
        if stop_reason == "max_tokens":
            why = "it was cut by max_tokens; raise --max-tokens"
        elif stop_reason == "refusal":
            why = "Claude refused (stop_reason refusal)"
        elif not text:
            why = f"it has no text (stop_reason {stop_reason})"
        else:
            first = str(error).splitlines()[0]
            why = f"{type(error).__name__}: {first}"
        raise ValueError(f"the reply does not parse as --schema {schema.name}: {why}") from None


def store_reply(
    namespace: dict[str, Any], name: str, records: Sequence[CallRecord], schema: OutputSchema | None
) -> None:
    """`-o NAME`: the reply's text, or with `--schema` its parsed object.  A reply that does not
    parse keeps its text in NAME and raises one UsageError saying why."""
    text = reply_text(records)
    if schema is None:
        namespace[name] = text
        return
    last = records[-1].response if records else None
    final = "".join(b.text for b in last.content if b.type == "text") if last is not None else ""
    try:
        namespace[name] = parse_reply(final, schema, last.stop_reason if last is not None else None)
    except ValueError as error:
        namespace[name] = text
        raise UsageError(f"{error}; its text is in {name}.") from None
