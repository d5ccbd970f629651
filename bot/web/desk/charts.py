"""Server-rendered SVG bar charts for the numbers page: horizontal bars, a label and the value
on each, a <title> for screen readers; the table beside each chart carries the same figures."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from markupsafe import Markup

ROW = 22
LABEL_WIDTH = 150
BAR_WIDTH = 220
VALUE_WIDTH = 50


def bar_chart(rows: Sequence[tuple[str, int]], title: str) -> Markup:
    """An SVG with one bar per (label, value); empty rows give an empty chart."""
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = max(1, len(rows)) * ROW + 4
    top = max((v for _l, v in rows), default=0) or 1
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = i * ROW + 2
        length = round(BAR_WIDTH * value / top)
        short = label if len(label) <= 22 else label[:21] + "…"
        parts.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 15}" text-anchor="end">{escape(short)}</text>'
            f'<rect x="{LABEL_WIDTH}" y="{y + 3}" width="{length}" height="{ROW - 6}"'
            f' class="bar"><title>{escape(label)}: {value}</title></rect>'
            f'<text x="{LABEL_WIDTH + length + 4}" y="{y + 15}" class="value">{value}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece of text above is escaped
