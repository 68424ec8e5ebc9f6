"""Report charts drawn on the server as SVG: bars or lines, no script, readable without
JavaScript, with the data table printed beside them by the page (docs/decisions.md says
why this is written here rather than taken from a chart library).

Every text in the drawing is escaped; the SVG carries a ``<title>`` and a ``<desc>`` and
each bar or point a ``<title>`` with its label and value (a tooltip, and what a screen
reader says).
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from gatherly.report import definition as rd
from gatherly.report.engine import Result

MAX_POINTS = 60  # the first rows a chart draws (the table holds them all)
MAX_SERIES = 6
COLORS = ("#2f6fb3", "#e07b39", "#3a9a5b", "#b5485d", "#7a5fb0", "#3d8f94")
WIDTH, HEIGHT = 820, 360
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 96  # margins: axis labels, legend


def _scale(measure: str) -> str:
    if measure in rd.RATES:
        return "rate"
    return "minutes" if measure.endswith("minutes") else "count"


def _show(value: float | None, scale: str) -> str:
    if value is None:
        return "—"
    if scale == "rate":
        return f"{value:.0%}"
    return f"{value:,.1f}" if value % 1 else f"{int(value):,}"


def _ticks(top: float) -> list[float]:
    """Round steps from 0 to at least ``top`` (about five of them)."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def _series(result: Result) -> tuple[list[str], list[tuple[str, list[float | None]]], str]:
    """The x labels, the series (name, values) to draw, and their scale."""
    rows = result.rows[:MAX_POINTS]
    first = _scale(result.measures[0])
    if len(result.dims) == 2:
        # x: the first grouping; one series per value of the second, for the first measure.
        xs = list(dict.fromkeys(keys[0].label for keys, _v in rows))
        by_name: dict[str, dict[str, Any]] = {}
        for keys, values in rows:
            by_name.setdefault(keys[1].label, {})[keys[0].label] = values[0]
        series = [
            (name, [points.get(x) for x in xs])
            for name, points in list(by_name.items())[:MAX_SERIES]
        ]
        return xs, series, first
    xs = [keys[0].label if keys else "All" for keys, _v in rows]
    index = {m: i for i, m in enumerate(result.measures)}
    plotted = [m for m in result.measures if _scale(m) == first][:MAX_SERIES]
    series = [(rd.MEASURE_LABELS[m], [values[index[m]] for _k, values in rows]) for m in plotted]
    return xs, series, first


def svg(result: Result, chart: str, *, title: str = "") -> str | None:
    """The chart as an inline SVG element (None for a table-only report, or no rows)."""
    if chart == "table" or not result.rows or not result.measures:
        return None
    xs, series, scale = _series(result)
    values = [v for _n, vs in series for v in vs if v is not None]
    ticks = _ticks(max([*values, 0.0]))
    top = ticks[-1] or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(xs), 1)

    def y(value: float) -> float:
        return TOP + plot_h - (value / top) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" class="chart" font-family="system-ui, sans-serif" font-size="11">',
        f"<title>{escape(title or 'Chart')}</title>",
        f"<desc>{escape(', '.join(name for name, _v in series))} by "
        f"{escape(', '.join(rd.DIM_LABELS[d] for d in result.dims) or 'total')}</desc>",
    ]
    for t in ticks:
        out.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(t):.1f}" y2="{y(t):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{LEFT - 6}" y="{y(t) + 4:.1f}" text-anchor="end" fill="#555">'
            f"{escape(_show(t, scale))}</text>"
        )
    rotate = len(xs) > 8
    for i, label in enumerate(xs):
        cx = LEFT + slot * (i + 0.5)
        short = label if len(label) <= 22 else label[:21] + "…"
        transform = f' transform="rotate(-35 {cx:.1f} {TOP + plot_h + 14})"' if rotate else ""
        anchor = "end" if rotate else "middle"
        out.append(
            f'<text x="{cx:.1f}" y="{TOP + plot_h + 14}" text-anchor="{anchor}" fill="#333"'
            f"{transform}><title>{escape(label)}</title>{escape(short)}</text>"
        )
    for s, (name, vs) in enumerate(series):
        color = COLORS[s % len(COLORS)]
        if chart == "line":
            known = [(i, v) for i, v in enumerate(vs) if v is not None]
            path = " ".join(f"{LEFT + slot * (i + 0.5):.1f},{y(v):.1f}" for i, v in known)
            out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
            for i, v in known:
                out.append(
                    f'<circle cx="{LEFT + slot * (i + 0.5):.1f}" cy="{y(v):.1f}" r="3" '
                    f'fill="{color}"><title>{escape(name)}, {escape(xs[i])}: '
                    f"{escape(_show(v, scale))}</title></circle>"
                )
            continue
        width = slot * 0.8 / len(series)
        for i, bar in enumerate(vs):
            if bar is None:
                continue
            x0 = LEFT + slot * i + slot * 0.1 + width * s
            out.append(
                f'<rect x="{x0:.1f}" y="{y(bar):.1f}" width="{max(width - 1, 1):.1f}" '
                f'height="{max(TOP + plot_h - y(bar), 0):.1f}" fill="{color}"><title>'
                f"{escape(name)}, {escape(xs[i])}: {escape(_show(bar, scale))}</title></rect>"
            )
    for s, (name, _vs) in enumerate(series):
        lx = LEFT + 150 * s
        out.append(
            f'<rect x="{lx}" y="{HEIGHT - 18}" width="10" height="10" '
            f'fill="{COLORS[s % len(COLORS)]}"/>'
            f'<text x="{lx + 14}" y="{HEIGHT - 9}" fill="#333">{escape(name[:22])}</text>'
        )
    out.append("</svg>")
    return "".join(out)
