"""Pre-flight cache checks, before a request costs anything.

`preflight()` lists findings (errors the API would answer with a 400, and silent misses it
would not tell you about), each naming the block and the fix.  Pure.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .fmt import labelled
from .models import ModelInfo
from .prefix import Layout
from .rules import MAX_BREAKPOINTS, Breakpoint, CacheRuleError, resolve_breakpoints

__all__ = ["Finding", "PreflightError", "block_name", "preflight"]

Level = Literal["error", "warning", "info"]


#: Findings whose message names every block it concerns: a `[block]` ahead of it says it twice.
_NAMES_ITS_BLOCKS = frozenset({"ttl-order", "duplicate-tool"})


class Finding(BaseModel):
    """One problem found before sending: what, where, and what to do about it."""

    model_config = ConfigDict(frozen=True)

    level: Level
    code: str
    block: str | None
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.level}: {self.where()}{self.message} Fix: {self.fix}"

    def where(self) -> str:
        """`[block] ` ahead of the message, unless the message names its blocks itself."""
        return f"[{self.block}] " if self.block and self.code not in _NAMES_ITS_BLOCKS else ""


class PreflightError(ValueError):
    """The request would be rejected (or is wrong); nothing was sent. `.findings` says why."""

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = list(findings)
        super().__init__("; ".join(f"{f.message} {f.fix}" for f in self.findings))


def block_name(names: Mapping[str, str], path: str) -> str:
    return names.get(path, path)


#: The most blocks a finding names one by one (a hostile tools cell may repeat a name 100,000 times).
_LISTED = 12


def _listed(names: Mapping[str, str], paths: Sequence[str]) -> str:
    """The blocks at `paths` by name (a request path says little to a notebook's user): the path
    for one without a name, and beside a name the list holds twice (two tools of one cell)."""
    shown = [block_name(names, path) for path in paths]
    twice = {name for name, n in Counter(shown).items() if n > 1}
    listed = ", ".join(
        f"{name} ({path})" if name in twice and name != path else name
        for name, path in zip(shown[:_LISTED], paths[:_LISTED], strict=True)
    )
    return listed + (f", and {len(paths) - _LISTED:,} more" if len(paths) > _LISTED else "")


def _repeated_tools(params: Mapping[str, Any], names: Mapping[str, str]) -> list[Finding]:
    """A tool name given twice (the API answers 400 "tools: Tool names must be unique.")."""
    paths: dict[str, list[str]] = {}
    for i, tool in enumerate(params.get("tools") or ()):
        paths.setdefault(str(tool.get("name")), []).append(f"tools.{i}")
    return [
        Finding(
            level="error",
            code="duplicate-tool",
            block=block_name(names, where[-1]),
            message=f"Tool names must be unique; {tool!r} is defined in blocks {_listed(names, where)}.",
            fix="Rename one of the tools, or drop one block (%claude_session drop NAME).",
        )
        for tool, where in paths.items()
        if len(where) > 1
    ]


def preflight(
    params: Mapping[str, Any],
    lay: Layout,
    info: ModelInfo,
    names: Mapping[str, str] | None = None,
    *,
    points: Sequence[Breakpoint] | None = None,
    counts: Mapping[int, int] | None = None,
) -> list[Finding]:
    """Findings for one request; errors first.  `names` maps request paths to block names.

    `points` are the request's breakpoints when the caller has resolved them already
    (`rules.resolve_breakpoints`); without them, they are resolved here and a broken
    cache rule is a finding.  `counts`: the API's counted prefix tokens by position index
    (`session.counts`), used instead of the estimate where given, and said to be counted.
    """
    names = names or {}
    found = _repeated_tools(params, names)
    for p in map(lay.positions.__getitem__, lay.markers()):
        if p.marker and not p.cacheable:
            what = "an empty text block" if p.kind == "text" else f"a {p.kind} block"
            found.append(
                Finding(
                    level="error",
                    code="uncacheable",
                    block=block_name(names, p.path),
                    message=f"{labelled(names, p.path)} carries cache_control but is {what}; the API "
                    "answers 400.",
                    fix="Put the marker on a non-empty text, image, document or tool block.",
                )
            )
    if points is None:
        points = _resolve(params, lay, names, found, info.min_cache_tokens)
    if lay.total_tokens > info.context_window:
        found.append(
            Finding(
                level="error",
                code="context-window",
                block=None,
                message=f"The prompt is an estimated {lay.total_tokens:,} tokens; {info.id} takes "
                f"{info.context_window:,}.",
                fix="Drop or shorten context blocks (%claude_session drop NAME).",
            )
        )
    found += _short_prefixes(lay, info, names, points, counts or {})
    return sorted(found, key=lambda f: ("error", "warning", "info").index(f.level))


def _size(tokens: int, counted: bool) -> str:
    """A prefix's size as a finding says it: counted by the API, or an offline estimate."""
    return f"counted {tokens:,} tokens" if counted else f"is an estimated {tokens:,} tokens"


def _short_prefixes(
    lay: Layout,
    info: ModelInfo,
    names: Mapping[str, str],
    points: Sequence[Breakpoint],
    counts: Mapping[int, int],
) -> list[Finding]:
    """Markers whose prefix is below the documented minimum, or between it and an observed one.

    Token figures are the API's counts where `counts` has them, offline estimates otherwise, and
    say which; the observed minimum is a public report (with its source), so a prefix in that
    band is a warning the API may disagree with.
    """
    found = []
    observed = info.observed_min_cache_tokens
    for point in points:
        p = lay.positions[point.position]
        tokens = counts.get(point.position, p.cumulative)
        size = _size(tokens, point.position in counts)
        if tokens < info.min_cache_tokens:
            found.append(
                Finding(
                    level="warning",
                    code="below-minimum",
                    block=block_name(names, p.path),
                    message=f"The prefix up to {labelled(names, p.path)} {size}; {info.id} "
                    f"caches from {info.min_cache_tokens:,}, so this marker is silently ignored.",
                    fix="Mark a later block so the prefix reaches the minimum, or remove the marker.",
                )
            )
        elif observed is not None and tokens < observed.tokens:
            found.append(
                Finding(
                    level="warning",
                    code="below-observed-minimum",
                    block=block_name(names, p.path),
                    message=f"The prefix up to {labelled(names, p.path)} {size}: documented "
                    f"{info.min_cache_tokens:,}; reports say caching starts near {observed.tokens:,} on "
                    f"{info.id} ({observed.source}), so this marker may be ignored.",
                    fix=f"Mark a later block so the prefix passes {observed.tokens:,} tokens, or check "
                    "cache_creation_input_tokens on the first live call.",
                )
            )
    return found


def _idle_first(names: Mapping[str, str], idle: Sequence[str], minimum: int) -> str:
    """The markers to take off first: their prefixes are under the minimum, so they cache nothing."""
    if not idle:
        return ""
    what = "it caches" if len(idle) == 1 else "they cache"
    return f"Start with {_listed(names, idle)}: under the {minimum:,}-token minimum, {what} nothing. "


def _resolve(
    params: Mapping[str, Any], lay: Layout, names: Mapping[str, str], found: list[Finding], minimum: int
) -> Sequence[Breakpoint]:
    """The request's breakpoints; a broken cache rule is added to `found` (and there are none).
    Its fix names first a marker whose prefix is under the model's `minimum`: it caches nothing."""
    automatic = params.get("cache_control")
    try:
        return resolve_breakpoints(lay, automatic)
    except CacheRuleError as error:
        text = str(error)
        if "maximum" in text:
            # automatic caching takes a slot only when its target block has no marker of its own
            last = next((p for p in reversed(lay.positions) if p.cacheable), None)
            adds = automatic is not None and last is not None and last.marker is None
            marked = [p.path for p in lay.positions if p.marker]
            idle = [p.path for p in lay.positions if p.marker and p.cumulative < minimum]
            count = len(marked) + (1 if adds else 0)
            listed = _listed(names, marked) + (", automatic caching" if adds else "")
            found.append(
                Finding(
                    level="error",
                    code="too-many-breakpoints",
                    block=None,
                    message=f"{count} cache markers, at most {MAX_BREAKPOINTS}: {listed}.",
                    fix=_idle_first(names, idle, minimum)
                    + "Take markers off the smaller blocks (add such a block again without one); "
                    "a marker caches everything before it.",
                )
            )
        elif "must not come after" in text:  # the conflict message mentions ttl too
            ttls = [(p.path, p.marker) for p in lay.positions if p.marker]
            final = max((i for i, (_, ttl) in enumerate(ttls) if ttl == "1h"), default=0)
            fives = [block_name(names, path) for path, ttl in ttls[:final] if ttl == "5m"]  # all to fix
            early = fives[0] if fives else None
            late = block_name(names, ttls[final][0]) if ttls else None
            named = early is not None and late is not None
            them = f"the markers on {', '.join(fives)}, or mark them" if len(fives) > 1 else ""
            found.append(
                Finding(
                    level="error",
                    code="ttl-order",
                    block=early,
                    message=(
                        f"A 1h marker comes after a 5m one: {late} (1h) after {early} (5m); "
                        "the order is tools, system, messages."
                        if named
                        else "A 1h marker comes after a 5m one (order: tools, system, messages)."
                    ),
                    fix=f"Drop {them or f'the marker on {early}, or mark it'} 1h too (a block's marker "
                    "comes off when it is added again without one)."
                    if named
                    else "Use 1h on the earlier, longer-lived blocks and 5m after them.",
                )
            )
        else:
            found.append(
                Finding(
                    level="error",
                    code="automatic-conflict",
                    block=None,
                    message=text,
                    fix="Use the same TTL, or drop one marker.",
                )
            )
        return []
