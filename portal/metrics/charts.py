"""Charts drawn on the server as SVG: they show in a page and print in a PDF alike."""

from __future__ import annotations

from datetime import date

from markupsafe import Markup, escape


def _scale(values: list[float], height: float, pad: float) -> tuple[float, float, callable]:
    low, high = min(values), max(values)
    if high == low:
        high, low = high + 1, low - 1
    return low, high, lambda v: pad + (height - 2 * pad) * (1 - (v - low) / (high - low))


def sparkline(
    points: list[tuple[date, float | None]], label: str, width: int = 160, height: int = 36
) -> Markup:
    """A small daily trend line through the days that have a value (days without data are
    skipped, not drawn as zero)."""
    values = [v for _, v in points if v is not None]
    if len(values) < 2:
        return Markup("")
    _, _, y = _scale(values, height, 3)
    step = (width - 6) / max(1, len(points) - 1)
    coords = " ".join(
        f"{3 + i * step:.1f},{y(v):.1f}" for i, (_, v) in enumerate(points) if v is not None
    )
    return Markup(
        f'<svg class="portal-spark" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(label)}"><polyline points="{coords}" '
        'fill="none" stroke="currentColor" stroke-width="1.5" stroke-linejoin="round"/></svg>'
    )


def line_chart(
    series: dict[str, list[tuple[date, float | None]]],
    label: str,
    percent: bool = False,
    width: int = 640,
    height: int = 200,
) -> Markup:
    """A daily line chart with one line per series, y-axis bounds and first/last day."""
    values = [v for pts in series.values() for _, v in pts if v is not None]
    if not values:
        return Markup("")
    left, bottom = 48, 22
    plot_h = height - bottom
    low, high, y = _scale(values, plot_h, 6)
    days = sorted({d for pts in series.values() for d, _ in pts})
    position = {d: i for i, d in enumerate(days)}
    step = (width - left - 8) / max(1, len(days) - 1)

    def fmt(v: float) -> str:
        return f"{v * 100:.0f}%" if percent else f"{v:.0f}"

    parts = [
        f'<line x1="{left}" y1="{y(high):.1f}" x2="{width}" y2="{y(high):.1f}" class="grid"/>',
        f'<line x1="{left}" y1="{y(low):.1f}" x2="{width}" y2="{y(low):.1f}" class="grid"/>',
        f'<text x="{left - 6}" y="{y(high) + 4:.1f}" text-anchor="end">{fmt(high)}</text>',
        f'<text x="{left - 6}" y="{y(low) + 4:.1f}" text-anchor="end">{fmt(low)}</text>',
        f'<text x="{left}" y="{height - 4}">{days[0].strftime("%m-%d")}</text>',
        f'<text x="{width}" y="{height - 4}" text-anchor="end">{days[-1].strftime("%m-%d")}</text>',
    ]
    for index, (name, pts) in enumerate(series.items()):
        coords = " ".join(
            f"{left + position[d] * step:.1f},{y(v):.1f}" for d, v in pts if v is not None
        )
        parts.append(
            f'<polyline class="series-{index % 6}" points="{coords}" fill="none" '
            f'stroke-width="1.8"><title>{escape(name)}</title></polyline>'
        )
    return Markup(
        f'<svg class="portal-chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">{"".join(parts)}</svg>'
    )
