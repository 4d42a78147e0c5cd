"""Charts as inline SVG written on the server: no script, no chart library, nothing for the CSP to
allow. Colours come from classes in analyst.css (inline style attributes would be refused by the
CSP). Each chart has a <title> and <desc> (role="img", aria-labelledby) and every bar or point
its own <title> (the value on hover); the page puts a table with the same numbers beside it.
"""

from __future__ import annotations

from datetime import datetime
from itertools import count

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 12, 12, 40

_ids = count(1)


def period_label(start: datetime, end: datetime, granularity: str) -> str:
    text = _("%(start)s to %(end)s UTC, by hour") if granularity == "hour" else _("%(start)s to %(end)s UTC, by day")
    return text % {"start": f"{start:%Y-%m-%d %H:%M}", "end": f"{end:%Y-%m-%d %H:%M}"}


def bucket_label(at: datetime, granularity: str) -> str:
    return at.strftime("%m-%d %H:00") if granularity == "hour" else at.strftime("%Y-%m-%d")


def _short_label(at: datetime, granularity: str) -> str:
    return at.strftime("%d %Hh") if granularity == "hour" else at.strftime("%m-%d")


def _open(title: str, desc: str, css: str = "chart") -> tuple[str, str]:
    n = next(_ids)
    head = (
        f'<svg class="{css}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart{n}-t chart{n}-d" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart{n}-t">{escape(title)}</title>'
        f'<desc id="chart{n}-d">{escape(desc)}</desc>'
    )
    return head, "</svg>"


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:,.1f}"


def _axes(y_max: float, unit: str) -> list[str]:
    parts = []
    plot_h = HEIGHT - TOP - BOTTOM
    for i in range(5):
        v = y_max * i / 4
        y = TOP + plot_h - plot_h * i / 4
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(_fmt(v) + unit)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" y2="{TOP + plot_h}"/>')
    return parts


def _x_labels(buckets: list[datetime], granularity: str, slot: float) -> list[str]:
    every = max(1, round(len(buckets) / 12))
    parts = []
    for i, at in enumerate(buckets):
        if i % every:
            continue
        x = LEFT + slot * (i + 0.5)
        parts.append(f'<text class="tick" x="{x:.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">{escape(_short_label(at, granularity))}</text>')
    return parts


def stacked_bars(*, title: str, desc: str, buckets: list[datetime], granularity: str,
                 series: list[tuple[str, str, list[int]]]) -> SafeString:
    """Bars per bucket, one segment per series (name, css class, values)."""
    head, tail = _open(title, desc)
    totals = [sum(values[i] for _, _, values in series) for i in range(len(buckets))]
    y_max = max(_nice_max(max(totals, default=0)), 4)  # counts: whole-number ticks
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(buckets))
    bar_w = max(1.0, slot * 0.75)
    parts = [head, *_axes(y_max, "")]
    for i, at in enumerate(buckets):
        x = LEFT + slot * i + (slot - bar_w) / 2
        y = TOP + plot_h
        for name, css, values in series:
            v = values[i]
            if not v:
                continue
            h = plot_h * v / y_max
            y -= h
            parts.append(
                f'<rect class="{css}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
                f'<title>{escape(bucket_label(at, granularity))} — {escape(name)}: {v:,}</title></rect>'
            )
    parts += _x_labels(buckets, granularity, slot)
    parts.append(tail)
    return mark_safe("".join(parts))


def lines(*, title: str, desc: str, buckets: list[datetime], granularity: str,
          series: list[tuple[str, str, list[float | None]]], y_max: float = 100, unit: str = "%") -> SafeString:
    """One line per series over the buckets; a bucket without a value (no data) breaks the line."""
    head, tail = _open(title, desc)
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / max(1, len(buckets))
    parts = [head, *_axes(y_max, unit)]
    for name, css, values in series:
        path, pen_down = [], False
        for i, v in enumerate(values):
            if v is None:
                pen_down = False
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * min(v, y_max) / y_max
            path.append(f"{'L' if pen_down else 'M'}{x:.1f} {y:.1f}")
            pen_down = True
        if path:
            parts.append(f'<path class="line {css}" d="{" ".join(path)}"/>')
        for i, v in enumerate(values):
            if v is None:
                continue
            x, y = LEFT + slot * (i + 0.5), TOP + plot_h - plot_h * min(v, y_max) / y_max
            parts.append(
                f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f'<title>{escape(bucket_label(buckets[i], granularity))} — {escape(name)}: {v:.1f}{escape(unit)}</title></circle>'
            )
    parts += _x_labels(buckets, granularity, slot)
    parts.append(tail)
    return mark_safe("".join(parts))


def hbars(*, title: str, desc: str, items: list[tuple[str, float]], unit: str = "", css: str = "s0") -> SafeString:
    """Horizontal bars, one per labelled value."""
    n = next(_ids)
    row_h, label_w = 24, 200
    height = max(row_h * len(items) + 8, 40)
    parts = [
        f'<svg class="chart hbars" viewBox="0 0 {WIDTH} {height}" role="img" aria-labelledby="chart{n}-t chart{n}-d" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="chart{n}-t">{escape(title)}</title><desc id="chart{n}-d">{escape(desc)}</desc>'
    ]
    top = _nice_max(max((v for _, v in items), default=0))
    span = WIDTH - label_w - 80
    if not items:
        parts.append(f'<text class="tick" x="{WIDTH / 2}" y="24" text-anchor="middle">No data in this period</text>')
    for i, (label, value) in enumerate(items):
        y = 4 + i * row_h
        w = span * value / top if top else 0
        parts.append(f'<text class="tick" x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect class="{css}" x="{label_w}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}">'
                     f'<title>{escape(label)}: {escape(_fmt(value) + unit)}</title></rect>')
        parts.append(f'<text class="tick" x="{label_w + w + 6:.1f}" y="{y + 16}">{escape(_fmt(value) + unit)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
