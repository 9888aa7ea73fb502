"""The report's charts as inline SVG, drawn here: nothing to bundle, nothing to fetch.

Every mark is an element a test (or a reader of the DOM) can count: a heat map cell is a
`rect.cell`, a bar a `rect.bar`, a point a `circle.point`, each carrying its figure in
`data-value` and a `<title>` tooltip. Every text is escaped: labels are user data.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# Colour-blind-safe pairs (Okabe-Ito), one per series name the page uses.
COLOURS = {"opened": "#E69F00", "closed": "#0072B2", "open": "#444444",
           "migrated": "#009E73", "rolled_back": "#D55E00", "escalated": "#CC79A7",
           "reverted": "#56B4E9"}
_HEAT_LOW, _HEAT_HIGH = (255, 245, 235), (166, 54, 3)  # white to dark orange


# A figure on a cell past half the heat scale: white (the page's style sheet says so; a
# fill attribute would lose to its `.figure` rule).
_on_dark = ' data-dark="1"'


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _heat(value: int, top: int) -> str:
    if value <= 0 or top <= 0:
        return "#f4f4f4"
    share = value / top
    r, g, b = (round(lo + (hi - lo) * share) for lo, hi in zip(_HEAT_LOW, _HEAT_HIGH,
                                                              strict=True))
    return f"#{r:02x}{g:02x}{b:02x}"


def _svg(width: int, height: int, label: str, body: list[str], cls: str) -> str:
    return (f'<svg class="chart {cls}" role="img" aria-label="{_attr(label)}" '
            f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
            f"<title>{escape(label)}</title>{''.join(body)}</svg>")


def _short(text: str, limit: int) -> str:
    # Long paths keep their end: the file name tells more than the first directories.
    return text if len(text) <= limit else "\u2026" + text[-(limit - 1):]


def heatmap(rows: Sequence[tuple[str, Sequence[int]]], columns: Sequence[str], *,
            label: str) -> str:
    """One row per label, one cell per column, shaded by its share of the largest cell."""
    cell_w, cell_h, left, top_margin = 70, 22, 330, 24
    width = left + cell_w * (len(columns) + 1) + 10
    height = top_margin + cell_h * len(rows) + 6
    biggest = max((v for _, values in rows for v in values), default=0)
    body = [f'<text class="col" x="{left + cell_w * i + cell_w // 2}" y="16" '
            f'text-anchor="middle">{escape(name)}</text>'
            for i, name in enumerate([*columns, "total"])]
    for r, (name, values) in enumerate(rows):
        y = top_margin + cell_h * r
        body.append(f'<text class="row" x="{left - 8}" y="{y + 15}" text-anchor="end">'
                    f"<title>{escape(name)}</title>{escape(_short(name, 48))}</text>")
        for c, value in enumerate(values):
            body.append(
                f'<rect class="cell" data-row="{_attr(name)}" data-column="{_attr(columns[c])}"'
                f' data-value="{value}" x="{left + cell_w * c}" y="{y}" width="{cell_w - 2}"'
                f' height="{cell_h - 2}" fill="{_heat(value, biggest)}">'
                f"<title>{escape(name)}: {value} {escape(columns[c])} line(s)</title></rect>"
                f'<text class="figure" x="{left + cell_w * c + cell_w // 2 - 1}" '
                f'y="{y + 15}" text-anchor="middle"'
                f'{_on_dark if biggest and value / biggest > 0.55 else ""}>{value}</text>')
        body.append(f'<text class="figure total" x="{left + cell_w * len(columns) + cell_w // 2}"'
                    f' y="{y + 15}" text-anchor="middle">{sum(values)}</text>')
    return _svg(width, height, label, body, "heatmap")


def bars(days: Sequence[dict[str, object]], series: Sequence[str], *, label: str,
         line: str | None = None, caption: str | None = None) -> str:
    """Grouped bars per day, one per series (`rect.bar`); optionally one point per day
    (`circle.point`) of the `line` figure, joined by a polyline, and the `caption` figure
    of each day written under its date."""
    bar_w, gap, base, left = 16, 14, 190, 40
    height = base + (46 if caption else 30)
    group = bar_w * len(series) + gap
    width = max(left + group * len(days) + 20, 320)
    figures = [int(str(d.get(s, 0))) for d in days for s in (*series, *([line] if line else []))]
    biggest = max([1, *figures])
    scale = (base - 20) / biggest

    def y_of(value: int) -> float:
        return base - value * scale

    body = [f'<line class="axis" x1="{left - 4}" y1="{base}" x2="{width - 10}" y2="{base}"/>',
            f'<text class="tick" x="{left - 8}" y="{y_of(biggest) + 4:.1f}" '
            f'text-anchor="end">{biggest}</text>',
            f'<text class="tick" x="{left - 8}" y="{base + 4}" text-anchor="end">0</text>']
    points = []
    for i, day in enumerate(days):
        x0 = left + i * group
        when = escape(str(day["day"]))
        for j, name in enumerate(series):
            value = int(str(day.get(name, 0)))
            y = y_of(value)
            body.append(
                f'<rect class="bar" data-series="{_attr(name)}" data-day="{when}" '
                f'data-value="{value}" x="{x0 + j * bar_w}" y="{y:.1f}" width="{bar_w - 2}" '
                f'height="{base - y:.1f}" fill="{COLOURS.get(name, "#888888")}">'
                f"<title>{when}: {value} {escape(name.replace('_', ' '))}</title></rect>")
            if value:
                body.append(f'<text class="figure" x="{x0 + j * bar_w + bar_w // 2 - 1}" '
                            f'y="{y - 3:.1f}" text-anchor="middle">{value}</text>')
        body.append(f'<text class="day" x="{x0 + (group - gap) // 2}" y="{base + 16}" '
                    f'text-anchor="middle">{escape(str(day["day"])[5:])}</text>')
        if caption:
            body.append(f'<text class="caption" x="{x0 + (group - gap) // 2}" '
                        f'y="{base + 31}" text-anchor="middle">'
                        f"{escape(str(day.get(caption, '')))}</text>")
        if line:
            value = int(str(day.get(line, 0)))
            points.append((x0 + (group - gap) / 2, y_of(value), value, when))
    if points:
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        body.append(f'<polyline class="trend" points="{path}" fill="none" '
                    f'stroke="{COLOURS["open"]}" stroke-width="1.5"/>')
        body += [f'<circle class="point" data-series="{_attr(line)}" data-day="{when}" '
                 f'data-value="{value}" cx="{x:.1f}" cy="{y:.1f}" r="4" '
                 f'fill="{COLOURS["open"]}"><title>{when}: {value} {escape(str(line))}</title>'
                 f"</circle>" for x, y, value, when in points]
    return _svg(width, height, label, body, "bars")


def legend(series: Sequence[str]) -> str:
    """The colour of each series, as HTML."""
    return "".join(f'<span class="key"><span class="swatch" style="background:'
                   f'{COLOURS.get(s, "#888888")}"></span>{escape(s.replace("_", " "))}</span>'
                   for s in series)
