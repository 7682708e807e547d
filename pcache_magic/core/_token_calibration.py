"""The estimator's calibration: per-kind factors fitted to real token counts, read from data.

The factors change whenever new reference points are collected (tests/data/token_references.json
holds the points, their sources and how each count was derived), so they live in
``data/token_calibration.json`` with their date and fitting method, not in code.  A text's
*kind* is not a label but a blend: how code-like it is (braces and semicolons per 1,000
characters) moves its factor from the prose factor towards the code factor, and how JSON-like it
is (`":`, a quoted key before its colon, per 1,000 characters) moves it on towards the JSON factor:
JSON's quotes, brackets and short keys are pieces the regex counts nearly one for one, where code
and prose run a little over.  Repetition needs
no factor of its own (a tokenizer does not merge across repeats: 'Ab' * 4000 is 4,001 tokens);
what made repeated filler cost more is its vocabulary, so lorem-ipsum words the tokenizer
splits get their measured extra pieces (`filler_extra`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

__all__ = ["Calibration", "default_calibration"]


@dataclass(frozen=True, slots=True)
class Calibration:
    """Factors that turn the estimator's raw piece count into an estimated token count."""

    prose: float
    """Factor for Latin-script prose (and Markdown)."""
    code: float
    """Factor for source code (reached at `code_density_full` braces and semicolons per 1,000 chars)."""
    code_density_none: float
    code_density_full: float
    json: float
    """Factor for JSON (tool definitions, JSON documents), reached at `json_density_full`."""
    json_density_none: float
    json_density_full: float
    filler_extra: tuple[tuple[str, int], ...]
    """Extra pieces per occurrence of filler words the tokenizer splits (lorem ipsum)."""
    as_of: str
    source: str

    def factor(self, text: str) -> float:
        """The factor for this text: the prose factor blended towards the code factor, then the JSON one."""
        density = 1000 * (text.count(";") + text.count("{") + text.count("}")) / len(text)
        share = _ramp(density, self.code_density_none, self.code_density_full)
        base = self.prose + (self.code - self.prose) * share
        keys = _ramp(1000 * text.count('":') / len(text), self.json_density_none, self.json_density_full)
        return base + (self.json - base) * keys

    def extra_pieces(self, text: str) -> int:
        """Pieces the regex misses: filler words split into more tokens than one."""
        return sum(text.count(word) * extra for word, extra in self.filler_extra)


def _ramp(value: float, none: float, full: float) -> float:
    """0 at or below `none`, 1 at or above `full`, linear between."""
    if value <= none:
        return 0.0
    if value >= full:
        return 1.0
    return (value - none) / (full - none)


@functools.cache
def default_calibration() -> Calibration:
    """The packaged calibration (parsed once per process; immutable)."""
    text = (
        resources.files(__package__ or "pcache_magic.core") / "data" / "token_calibration.json"
    ).read_text(encoding="utf-8")
    data = json.loads(text)
    factors = data["factors"]
    return Calibration(
        prose=float(factors["prose"]),
        code=float(factors["code"]),
        code_density_none=float(factors["code_density_none"]),
        code_density_full=float(factors["code_density_full"]),
        json=float(factors["json"]),
        json_density_none=float(factors["json_density_none"]),
        json_density_full=float(factors["json_density_full"]),
        filler_extra=tuple((str(word), int(extra)) for word, extra in factors["filler_extra"].items()),
        as_of=str(data["as_of"]),
        source=str(data["source"]),
    )
