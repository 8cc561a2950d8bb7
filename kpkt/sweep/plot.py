"""The sweep's plots, as SVG that kpkt writes itself: for each swept parameter whose values are
all numbers, `plot-<parameter>.svg` shows the summary column the sweep file names (`plot:`)
against it, a dot per run that has a value there and a line through the mean at each value."""

from __future__ import annotations

import math
import re
from html import escape
from statistics import fmean
from typing import Any

WIDTH, HEIGHT = 640, 400
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 40, 50
TICKS = 5


def plot_files(parameters: tuple[str, ...], rows: list[dict], column: str) -> dict[str, str]:
    """Each plot's file name and SVG text."""
    plots = {}
    for parameter in parameters:
        given = [row for row in rows if row.get(parameter) is not None]
        if not given or not all(_is_number(row[parameter]) for row in given):
            continue
        points = [(row[parameter], row[column]) for row in given if _is_number(row.get(column))]
        name = "plot-" + re.sub(r"[^A-Za-z0-9._-]+", "_", parameter) + ".svg"
        plots[name] = svg(parameter, column, points)
    return plots


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def svg(x_name: str, y_name: str, points: list[tuple[float, float]]) -> str:
    xs = _ticks([x for x, _ in points] or [0, 1])
    ys = _ticks([y for _, y in points] or [0, 1], zero=True)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        return LEFT + (x - xs[0]) / (xs[-1] - xs[0]) * inner_w

    def py(y: float) -> float:
        return TOP + inner_h - (y - ys[0]) / (ys[-1] - ys[0]) * inner_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">'
        f"{escape(y_name)} by {escape(x_name)} ({len(points)} runs)</text>",
        f'<rect x="{LEFT}" y="{TOP}" width="{inner_w}" height="{inner_h}" fill="none" '
        'stroke="#444"/>',
    ]
    for x in xs:
        out.append(
            f'<line x1="{px(x):.1f}" y1="{TOP + inner_h}" x2="{px(x):.1f}" '
            f'y2="{TOP + inner_h + 5}" stroke="#444"/><text x="{px(x):.1f}" '
            f'y="{TOP + inner_h + 18}" text-anchor="middle">{_number(x)}</text>'
        )
    for y in ys:
        out.append(
            f'<line x1="{LEFT - 5}" y1="{py(y):.1f}" x2="{LEFT + inner_w}" y2="{py(y):.1f}" '
            f'stroke="#ddd"/><text x="{LEFT - 8}" y="{py(y) + 4:.1f}" '
            f'text-anchor="end">{_number(y)}</text>'
        )
    out.append(
        f'<text x="{LEFT + inner_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">'
        f"{escape(x_name)}</text>"
    )
    out.append(
        f'<text x="16" y="{TOP + inner_h / 2}" text-anchor="middle" '
        f'transform="rotate(-90 16 {TOP + inner_h / 2})">{escape(y_name)}</text>'
    )
    means = sorted(
        (x, fmean(y for other, y in points if other == x)) for x in {x for x, _ in points}
    )
    if len(means) > 1:
        line = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in means)
        out.append(f'<polyline points="{line}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for x, y in points:
        out.append(
            f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="#1f77b4" fill-opacity="0.6"/>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _ticks(values: list[float], zero: bool = False) -> list[float]:
    """About TICKS round numbers covering `values` (and 0, with `zero`)."""
    low, high = min(values), max(values)
    if zero:
        low, high = min(low, 0), max(high, 0)
    if low == high:
        low, high = (0, 1) if low == 0 else (low - 1, high + 1)
    raw = (high - low) / (TICKS - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    count = math.ceil((high - first) / step - 1e-9)
    return [round(first + index * step, 12) for index in range(count + 1)]


def _number(value: float) -> str:
    return f"{value:g}"
