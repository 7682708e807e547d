"""`%%claude_map ITEMS`: the cell is a template sent once per item over the session's cached prefix.

The magic's method in `magics.py` only parses its line; this module does the rest: the items
from the notebook, the template (`{item}`, `{item[key]}`, `{item.attr}` filled per item by
`Session.map`; `{name}` filled from the notebook once, as `%%claude` does), the prediction shown
before anything is sent, a progress bar (an ipywidgets `IntProgress`), the summary table after,
and the results kept in a notebook variable with `-o NAME` (a `MapResult`, partial on Ctrl-C).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument
from IPython.display import display

from ..core.fmt import html_table, money, plural, share, text_table, visible
from ..core.fmt import tokens as count
from ..session.session_settings import MAX_CONCURRENCY
from ..session.transport import secrets as api_keys
from . import expand
from .args import parse_argstring, without_comment
from .output import one_line, say, usage_errors

if TYPE_CHECKING:
    from argparse import Namespace

    from ..core.usage import Cost
    from ..session.fanout import ItemResult, MapPlan, MapResult
    from ..session.session import Session

__all__ = [
    "WRITTEN_OUT",
    "MapSummary",
    "PlanTable",
    "Progress",
    "map_arguments",
    "map_cell",
    "parse_line",
    "template",
]

_PATH = r"item(?:\[[^\[\]{}\n]+\]|\.[A-Za-z_]\w*)?"
_ITEM = re.compile(rf"\{{\{{{_PATH}\}}\}}|\{{{_PATH}\}}")
_ASIDE = re.compile("\ue000(\\d+)\ue001")


def map_arguments(func: Callable[..., Any]) -> Callable[..., Any]:
    """The flags of `%%claude_map`, kept here so that the magic's method stays a few lines."""
    for flag in reversed(
        [
            argument("items", help="The notebook variable holding the items (a list or any iterable)."),
            argument("-o", "--out", metavar="NAME", help="Keep the results (a MapResult) in NAME."),
            argument(
                "--concurrency",
                type=int,
                default=8,
                help=f"Calls at once (1 to {MAX_CONCURRENCY}).",
            ),
            argument("--batch", action="store_true", help="Send through the Message Batches API."),
            argument("--model", help="Model for these calls only."),
            argument("--max-tokens", type=int, help="max_tokens for each call."),
            argument(
                "--cache",
                choices=["5m", "1h", "none"],
                help="Marker on the prefix's last block if it has none (default: the session's default_ttl).",
            ),
            argument("--no-expand", action="store_true", help="Send {name} as written (only {item} filled)."),
        ]
    ):
        func = flag(func)
    return func


def template(
    cell: str, namespace: Mapping[str, Any], *, no_expand: bool = False, secrets: Sequence[str] = ()
) -> str:
    """The cell with `{name}` filled from the notebook and every `{item...}` (and `{{item}}`) kept
    for `Session.map`: each is set aside while the notebook's names are expanded, then put back."""
    if no_expand:
        return cell
    kept: list[str] = []

    def aside(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\ue000{len(kept) - 1}\ue001"

    expanded = expand.expand(_ITEM.sub(aside, cell), namespace, secrets)

    def back(match: re.Match[str]) -> str:
        at = int(match.group(1))
        return kept[at] if at < len(kept) else match.group(0)

    return _ASIDE.sub(back, expanded)


#: The most items one %%claude_map reads: beyond it, a slice says what the user means.
MAX_ITEMS = 100_000


#: A list, tuple or dict written out on the magic's line in place of a variable's name.
WRITTEN_OUT = (
    "%%claude_map takes the name of a variable that holds the items, not the items written out: "
    "items = ['a', 'b'] in a cell above, then %%claude_map items."
)


def parse_line(magic: Callable[..., Any], line: str) -> Namespace:
    """The magic's arguments; a list written out on the line (`['a', 'b']`) is refused as such,
    not as the "unrecognized arguments" its words after the first space make."""
    try:
        return parse_argstring(magic, line)
    except UsageError:
        if any(word[:1] in "[({" for word in without_comment(line).split()):
            raise UsageError(WRITTEN_OUT) from None
        raise


def _items(name: str, namespace: Mapping[str, Any]) -> list[Any]:
    if name not in namespace:
        if not name.isidentifier():  # `[1,2]`, `range(3)`: the items written out
            raise UsageError(WRITTEN_OUT)
        raise UsageError(f"No variable {name!r} in the notebook: %%claude_map NAME takes a list of items.")
    value = namespace[name]
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        hint = " (for a dict: list(d.items()) or list(d.values()))" if isinstance(value, Mapping) else ""
        kind = type(value).__name__
        raise UsageError(
            f"{name} holds {'an' if kind[:1] in 'aeiou' else 'a'} {kind}, not a list of items{hint}."
        )
    items = list(itertools.islice(value, MAX_ITEMS + 1))  # an endless iterator is read only so far
    if len(items) > MAX_ITEMS:
        raise UsageError(
            f"{name} has more than {MAX_ITEMS:,} items; map a slice of it (e.g. list(islice({name}, 1000)))."
        )
    if not items:
        raise UsageError(f"{name} is empty: there is nothing to map over.")
    return items


def _saving(base: float, cost: float) -> str:
    return f"{money(base - cost)} ({share((base - cost) / base) if base else 'none'})"


class PlanTable:
    """The prediction, shown before anything is sent: planned, naive parallel, no caching."""

    def __init__(self, plan: MapPlan) -> None:
        self.plan = plan

    def rows(self) -> list[list[str]]:
        plan, cost, naive = self.plan, self.plan.cost, self.plan.naive_cost
        t, n = plan.planned, plan.naive
        return [
            ["this map", count(t.written, True), count(t.read, True), money(cost.total)],
            ["naive parallel", count(n.written, True), count(n.read, True), money(naive.total)],
            ["no caching", "0", "0", money(cost.no_cache)],
        ]

    _HEAD = ("predicted", "cache write", "cache read", "cost")

    def _repr_html_(self) -> str:
        return html_table(self._HEAD, self.rows(), self.plan.line())

    def __repr__(self) -> str:
        return self.plan.line() + "\n" + text_table(self._HEAD, self.rows())


class Progress:
    """An `IntProgress` bar that counts finished items (updated on the notebook's thread)."""

    def __init__(self, total: int) -> None:
        import ipywidgets as widgets

        self.total, self.done, self.failed = total, 0, 0
        self.bar = widgets.IntProgress(value=0, min=0, max=total, description=f"0/{total}")

    def show(self) -> None:
        display(self.bar)

    def step(self, result: ItemResult) -> None:
        self.done += 1
        self.failed += not result.ok
        self.bar.value = self.done
        self.bar.description = f"{self.done}/{self.total}"
        if self.failed:
            self.bar.bar_style = "warning"

    def close(self) -> None:
        self.bar.close()

    def finish(self) -> None:
        self.bar.bar_style = "warning" if self.failed or self.done < self.total else "success"


class MapSummary:
    """What the map did: items, cache reads and writes, cost, and its saving against the two others."""

    def __init__(self, result: MapResult) -> None:
        self.result = result

    def caption(self) -> str:
        r = self.result
        failed = len(r) - r.ok
        head = f"{r.ok} of {plural(len(r), 'item')} answered"
        return (
            head
            + (f", {failed} failed (see .errors)" if failed else "")
            + (", interrupted" if r.interrupted else "")
        )

    def rows(self) -> list[list[str]]:
        r = self.result
        t, cost, naive = r.tokens, r.cost, r.naive_cost
        return [
            ["cache write", count(t.written, True)],
            ["cache read", count(t.read, True)],
            ["uncached input", count(t.uncached, True)],
            ["output", count(t.output, True)],
            ["cost", money(cost.total)],
            ["predicted", money(_predicted(r.plan, r.ok))],
            ["saving vs no caching", _saving(cost.no_cache, cost.total)],
            ["saving vs naive parallel", _saving(naive.total, cost.total)],
        ]

    def _repr_html_(self) -> str:
        return html_table(("map", ""), self.rows(), self.caption())

    def __repr__(self) -> str:
        return self.caption() + "\n" + text_table(("map", ""), self.rows())


def _predicted(plan: MapPlan, answered: int) -> float:
    """The plan's cost scaled to the items answered (the whole plan when all were)."""
    cost: Cost = plan.cost
    return cost.total if answered == plan.items else cost.total * answered / max(plan.items, 1)


def map_cell(session: Session, namespace: MutableMapping[str, Any], cell: str, args: Namespace) -> None:
    """Run `%%claude_map` (see the module's doc); every mistake is one UsageError, nothing sent."""
    from ..session.fanout import MapInterrupted  # here: loading the extension does not import it

    try:
        out = expand.out_name(args.out, namespace) if args.out is not None else None
        prompt = template(
            cell.strip("\n"), namespace, no_expand=args.no_expand, secrets=api_keys(session.client)
        )
    except expand.ExpandError as error:
        raise UsageError(f"Not sent: {visible(error)}") from None
    if not prompt.strip():
        raise UsageError("The cell is empty: write the template below %%claude_map, with {item} in it.")
    items = _items(args.items, namespace)
    progress = Progress(len(items))

    def planned(plan: MapPlan) -> None:
        display(PlanTable(plan))
        progress.show()

    cache: Any = {None: True, "none": False}.get(args.cache, args.cache)
    stopped = False
    try:
        with usage_errors(session):
            try:
                result = session.map(
                    items,
                    prompt,
                    concurrency=args.concurrency,
                    cache=cache,
                    batch=args.batch,
                    model=args.model,
                    max_tokens=args.max_tokens,
                    on_plan=planned,
                    on_progress=progress.step,
                )
            except MapInterrupted as stop:
                result, stopped = stop.result, True
    except UsageError:
        progress.close()  # refused (the budget, a template an item cannot fill): nothing was sent
        raise
    progress.finish()
    display(MapSummary(result))
    if out is not None:
        namespace[out] = result
    if stopped:
        kept = f"; the {result.ok} finished are in {out}" if out else ""
        raise UsageError(f"Interrupted after {result.ok} of {len(items)} items{kept}.")
    if result.errors:
        first = min(result.errors)
        say(f"item {first}: {one_line(result.errors[first], 200)}")
