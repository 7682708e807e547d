"""`python -m benchmarks.plot`: the growth curves of results.json as docs/growth.svg.

Three small charts (panel open time by calls, the session's own work per ask by messages,
memory growth by calls) on a log scale of 10, 100 and 1,000, each with its goal as a dashed
line (the 10 figure times the goal's ratio, or the MB budget), so a reader sees the curve,
not one point.  Plain SVG written here: no plotting library is needed.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["chart", "main", "svg"]

ROOT = Path(__file__).resolve().parent.parent
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 300, 220, 52, 14, 34, 40
_CHARTS = (  # figure, details key, title, unit, goal as a ratio of the first point (else absolute)
    ("growth.panel_open_1000_vs_10_calls", "median_ms_by_calls", "Panel open", "ms", "ratio"),
    ("growth.panel_first_open_1000_vs_10_calls", "median_ms_by_calls", "Panel, first open", "ms", "ratio"),
    (
        "growth.session_work_1000_vs_10_messages",
        "own_ms_by_messages",
        "Session's own work per ask",
        "ms",
        "ratio",
    ),
    ("memory.growth_after_1000_calls_mb", "growth_mb_by_calls", "Memory growth", "MB", "absolute"),
)
_XLABEL = {"median_ms_by_calls": "calls", "own_ms_by_messages": "messages", "growth_mb_by_calls": "calls"}


def chart(title: str, unit: str, xlabel: str, points: Mapping[int, float], goal: Sequence[float]) -> str:
    """One chart as an SVG group: the measured curve (solid) and the goal (dashed)."""
    xs = sorted(points)
    top = max([*points.values(), *goal]) * 1.15 or 1.0
    lo, hi = math.log10(xs[0]), math.log10(xs[-1])

    def x(n: float) -> float:
        return PAD_L + (math.log10(n) - lo) / ((hi - lo) or 1) * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return PAD_T + (1 - v / top) * (H - PAD_T - PAD_B)

    out = [f'<text x="{W / 2}" y="18" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    out.append(f'<line x1="{PAD_L}" y1="{y(0)}" x2="{W - PAD_R}" y2="{y(0)}" stroke="#888"/>')
    out.append(f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{y(0)}" stroke="#888"/>')
    for tick in (0, top / 2, top):
        out.append(f'<text x="{PAD_L - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:.3g}</text>')
    out.append(f'<text x="12" y="{PAD_T - 10}">{escape(unit)}</text>')
    for n in xs:
        out.append(f'<text x="{x(n):.1f}" y="{y(0) + 16:.1f}" text-anchor="middle">{n:,}</text>')
    out.append(f'<text x="{W / 2}" y="{H - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    goal_path = " ".join(f"{x(n):.1f},{y(v):.1f}" for n, v in zip(xs, goal, strict=True))
    out.append(f'<polyline points="{goal_path}" fill="none" stroke="#d62728" stroke-dasharray="5,4"/>')
    path = " ".join(f"{x(n):.1f},{y(points[n]):.1f}" for n in xs)
    out.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for n in xs:
        v = points[n]
        out.append(f'<circle cx="{x(n):.1f}" cy="{y(v):.1f}" r="3" fill="#1f77b4"/>')
        out.append(f'<text x="{x(n):.1f}" y="{y(v) - 7:.1f}" text-anchor="middle">{v:.3g}</text>')
    return "\n".join(out)


def svg(results: Mapping[str, Any]) -> str:
    """The three charts side by side, from a results.json document (missing figures are skipped)."""
    figures = {f["name"]: f for f in results.get("figures", [])}
    groups = []
    for name, key, title, unit, kind in _CHARTS:
        if name not in figures or key not in figures[name]["details"]:
            continue
        figure = figures[name]
        points = {int(k): float(v) for k, v in figure["details"][key].items()}
        xs = sorted(points)
        threshold = float(figure["goal"]["threshold"])
        if kind == "ratio":  # flat would be the first point; the goal allows `threshold` times it
            goal = [points[xs[0]] * (1 + (threshold - 1) * i / (len(xs) - 1)) for i in range(len(xs))]
        else:
            goal = [threshold] * len(xs)
        body = chart(title, unit, _XLABEL[key], points, goal)
        groups.append(f'<g transform="translate({len(groups) * W},0)">{body}</g>')
    created = escape(str(results.get("created", "")))
    legend = (
        f'<text x="8" y="{H + 14}">measured (blue), goal (dashed red); python -m benchmarks, {created}</text>'
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{max(1, len(groups)) * W}" height="{H + 22}" '
        'font-family="sans-serif" font-size="11">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n{"".join(groups)}\n{legend}\n</svg>\n'
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    source = Path(args[0]) if args else ROOT / "benchmarks" / "results.json"
    target = Path(args[1]) if len(args) > 1 else ROOT / "docs" / "growth.svg"
    target.write_text(svg(json.loads(source.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
