"""Charts drawn on the server as SVG, each beside a table of the same figures.

SVG written here, not a vendored chart library: the figures are a few dozen numbers a month,
the pages need no JavaScript to show them (they work with it off, and inside a CSP that allows
no inline script), they print as crisp vectors on A4, and there are no megabytes of ECharts to
vendor, audit and keep in step. Colours are CSS classes (`s0`…`s11` in console.css), never
inline styles. Every bar carries its figure in `data-value` (and a `<title>` tooltip), so a test
reads the chart's figures as surely as the table's.

A `Chart` is plain data: the SVG, the HTML table and the xlsx export are all made from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from markupsafe import Markup, escape

#: Number of colour classes in console.css.
PALETTE = 12


@dataclass(frozen=True)
class Series:
    label: str
    values: list[int]


@dataclass(frozen=True)
class Chart:
    """Stacked bars: one bar per category (months, units, scores), one part per series."""

    key: str
    title: str
    categories: list[str]
    series: list[Series]
    #: "columns": vertical bars (months along the bottom); "rows": horizontal bars per unit.
    layout: Literal["columns", "rows"] = "columns"
    #: The table's rows: one per series (months as columns) or one per category.
    table_by: Literal["series", "category"] = "series"
    #: The table's first header cell.
    row_header: str = ""
    #: Further table columns (category tables only): (header, one cell per category).
    extra: list[tuple[str, list[str]]] = field(default_factory=list)
    note: str = ""

    @property
    def empty(self) -> bool:
        return not any(v for s in self.series for v in s.values)

    def totals(self) -> list[int]:
        return [sum(s.values[i] for s in self.series) for i in range(len(self.categories))]

    def table(self) -> tuple[list[str], list[list[object]]]:
        """The header and rows of the table beside the chart (and of its xlsx)."""
        if self.table_by == "series":
            header = [self.row_header, *self.categories, "合计"]
            rows: list[list[object]] = [[s.label, *s.values, sum(s.values)] for s in self.series]
            if len(self.series) > 1:
                totals = self.totals()
                rows.append(["合计", *totals, sum(totals)])
            return header, rows
        header = [self.row_header, *(s.label for s in self.series), *(h for h, _ in self.extra)]
        rows = [
            [
                category,
                *(s.values[i] for s in self.series),
                *(cells[i] for _, cells in self.extra),
            ]
            for i, category in enumerate(self.categories)
        ]
        return header, rows

    def svg(self) -> Markup:
        if self.empty:
            return Markup('<p class="chart-empty">本期暂无数据</p>')
        return _rows_svg(self) if self.layout == "rows" else _columns_svg(self)


def _nice_max(value: int) -> int:
    """A round axis maximum at or above `value` (1, 2, 5 × 10ⁿ)."""
    if value <= 5:
        return max(value, 1)
    step = 1
    while True:
        for m in (1, 2, 5):
            if value <= m * step * 5:
                return m * step * 5
        step *= 10


def _bar(
    chart: Chart, series_no: int, category_no: int, x: float, y: float, w: float, h: float
) -> str:
    s = chart.series[series_no]
    value = s.values[category_no]
    category = chart.categories[category_no]
    tip = f"{category} {s.label}：{value}" if len(chart.series) > 1 else f"{category}：{value}"
    return (
        f'<rect class="s{series_no % PALETTE}" x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" '
        f'height="{h:.1f}" data-series="{escape(s.label)}" data-category="{escape(category)}" '
        f'data-value="{value}"><title>{escape(tip)}</title></rect>'
    )


def _open(chart: Chart, width: int, height: int) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-labelledby="chart-{chart.key}-title" data-chart="{chart.key}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{chart.key}-title">{escape(chart.title)}</title>',
    ]


def _columns_svg(chart: Chart) -> Markup:
    width, height = 560, 250
    left, right, top, bottom = 44, 8, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = chart.totals()
    top_value = _nice_max(max(totals))
    parts = _open(chart, width, height)
    for tick in (0, top_value // 2, top_value) if top_value % 2 == 0 else (0, top_value):
        y = top + plot_h - plot_h * tick / top_value
        parts.append(
            f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    slot = plot_w / len(chart.categories)
    bar_w = min(56.0, slot * 0.62)
    for i, category in enumerate(chart.categories):
        x = left + slot * i + (slot - bar_w) / 2
        base = top + plot_h
        for n, s in enumerate(chart.series):
            if not s.values[i]:
                continue
            h = plot_h * s.values[i] / top_value
            base -= h
            parts.append(_bar(chart, n, i, x, base, bar_w, h))
        if totals[i]:
            parts.append(
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{base - 3:.1f}" '
                f'text-anchor="middle">{totals[i]}</text>'
            )
        parts.append(_axis_label(category, x + bar_w / 2, height - bottom + 16))
    parts.append("</svg>")
    return Markup("".join(parts))


def _axis_label(category: str, x: float, y: float) -> str:
    """A month as "11月" over "2026年"; anything else as it is."""
    year, sep, rest = category.partition("年")
    if not sep:
        return (
            f'<text class="axis" x="{x:.1f}" y="{y}" text-anchor="middle">{escape(category)}</text>'
        )
    return (
        f'<text class="axis" x="{x:.1f}" y="{y}" text-anchor="middle">{escape(rest)}'
        f'<tspan class="sub" x="{x:.1f}" dy="13">{escape(year)}年</tspan></text>'
    )


def _rows_svg(chart: Chart) -> Markup:
    row_h, label_w, width = 26, 150, 560
    plot_w = width - label_w - 48
    height = row_h * len(chart.categories) + 10
    totals = chart.totals()
    top_value = max(max(totals), 1)
    parts = _open(chart, width, height)
    for i, category in enumerate(chart.categories):
        y = 5 + row_h * i
        parts.append(
            f'<text class="axis" x="{label_w - 6}" y="{y + 16}" text-anchor="end">'
            f"{escape(category[:12])}</text>"
        )
        x = float(label_w)
        for n, s in enumerate(chart.series):
            if not s.values[i]:
                continue
            w = plot_w * s.values[i] / top_value
            parts.append(_bar(chart, n, i, x, y + 3, w, row_h - 8))
            x += w
        parts.append(f'<text class="value" x="{x + 4:.1f}" y="{y + 16}">{totals[i]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
