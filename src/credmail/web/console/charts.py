"""Server-rendered SVG charts for the statistics page: no JavaScript, no inline style (the
CSP allows neither), colours by class from console.css. A chart is a picture of the table
printed under it: it is labelled as such, and the table carries the numbers. Every piece
is built with markupsafe, so a label (a campaign's name) is escaped."""

from __future__ import annotations

from markupsafe import Markup

from credmail.service.desks.stats import Chart

WIDTH = 720
PALETTE = 8  # classes s0..s7 in console.css


def _nice_top(value: int) -> int:
    """A round top for the scale, at least `value`: 4 for small counts, so that the
    four gridlines fall on whole numbers."""
    if value <= 4:
        return 4
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return value


def _n(value: float) -> str:
    return f"{value:.1f}"


def _text(x: float, y: float, text: str, anchor: str = "start") -> Markup:
    return Markup('<text x="{}" y="{}" text-anchor="{}">{}</text>').format(
        _n(x), _n(y), anchor, text
    )


def _rect(x: float, y: float, width: float, height: float, series: int) -> Markup:
    return Markup('<rect x="{}" y="{}" width="{}" height="{}" class="s{}"/>').format(
        _n(x), _n(y), _n(width), _n(height), series % PALETTE
    )


def _line(x1: float, x2: float, y1: float, y2: float, css: str) -> Markup:
    return Markup('<line x1="{}" x2="{}" y1="{}" y2="{}" class="{}"/>').format(
        _n(x1), _n(x2), _n(y1), _n(y2), css
    )


def _open(chart: Chart, height: int, ident: str) -> Markup:
    return Markup(
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {} {}" class="chart" '
        'role="img" aria-labelledby="{}-titolo {}-descr" focusable="false">'
        '<title id="{}-titolo">{}</title>'
        '<desc id="{}-descr">Grafico: i dati sono nella tabella che segue.</desc>'
    ).format(WIDTH, height, ident, ident, ident, chart.title, ident)


def _close(parts: list[Markup]) -> Markup:
    return Markup("").join([*parts, Markup("</svg>")])


def _tick(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}".replace(".", ",")


def columns(chart: Chart, ident: str) -> Markup:
    """Stacked columns, one per category (a week), the series stacked bottom to top."""
    height, left, bottom, top_pad = 300, 48, 40, 12
    plot_h = height - bottom - top_pad
    count = max(len(chart.categories), 1)
    slot = (WIDTH - left - 8) / count
    top = _nice_top(max((sum(v) for v in chart.values), default=0))
    parts = [_open(chart, height, ident)]
    for tick in range(5):
        y = top_pad + plot_h - plot_h * tick / 4
        parts.append(_line(left, WIDTH - 8, y, y, "grid"))
        parts.append(_text(left - 6, y + 4, _tick(top * tick / 4), "end"))
    every = max(1, round(count / 13))
    for i, values in enumerate(chart.values):
        x = left + i * slot + slot * 0.15
        y = float(top_pad + plot_h)
        for s, value in enumerate(values):
            if value:
                h = plot_h * value / top
                y -= h
                parts.append(_rect(x, y, slot * 0.7, h, s))
        if i % every == 0 or i == count - 1:
            parts.append(_text(x + slot * 0.35, height - bottom + 16, chart.axis[i], "middle"))
    return _close(parts)


def bars(chart: Chart, ident: str) -> Markup:
    """Stacked horizontal bars, one per category, the series left to right."""
    row, left, top_pad = 34, 150, 8
    count = max(len(chart.categories), 1)
    height = top_pad * 2 + row * count + 20
    plot_w = WIDTH - left - 56
    top = _nice_top(max((sum(v) for v in chart.values), default=0))
    parts = [_open(chart, height, ident)]
    for i, values in enumerate(chart.values):
        y = top_pad + i * row
        parts.append(_text(left - 8, y + row * 0.55, chart.axis[i], "end"))
        x = float(left)
        for s, value in enumerate(values):
            if value:
                w = plot_w * value / top
                parts.append(_rect(x, y + 4, w, row - 10, s))
                x += w
        parts.append(_text(x + 6, y + row * 0.55, str(sum(values))))
    base = top_pad + row * count
    parts.append(_line(left, left, top_pad, base, "axis"))
    parts.append(_text(left, base + 16, "0", "middle"))
    parts.append(_text(left + plot_w, base + 16, str(top), "middle"))
    return _close(parts)


def draw(chart: Chart) -> Markup:
    ident = f"grafico-{chart.slug}"
    return columns(chart, ident) if chart.shape == "columns" else bars(chart, ident)
