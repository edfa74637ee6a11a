"""Line charts as inline SVG: no plotting library, no script, no network; every point carries its value."""

from __future__ import annotations

import math
from html import escape

COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd")


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    out, v = [], start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            out.append(round(v, 12))
        v += step
    return out


def _num(v: float) -> str:
    return f"{v:.4g}"


def _tick(v: float, step: float) -> str:
    """A tick label with as many decimals as the spacing needs; large values with thousands separators."""
    decimals = next((d for d in range(9) if abs(round(step, d) - step) <= step * 1e-9), 8) if step > 0 else 0
    if abs(v) >= 1e4 or decimals == 0:
        return f"{v:,.0f}"
    return f"{v:.{min(decimals, 8)}f}"


def line_chart(
    series: list[dict],
    *,
    chart_id: str,
    x_label: str,
    y_label: str,
    marker: tuple[float, str] | None = None,
    width: int = 680,
    height: int = 300,
) -> str:
    """`series`: [{"name", "points": [(x, y)], "dots": bool}]; `marker`: (x, label), a dashed vertical line
    (the kept checkpoint). Non-finite values are left out. Returns an <svg> element."""
    clean = []
    for s in series:
        pts = [(float(x), float(y)) for x, y in s["points"] if y is not None and math.isfinite(y) and math.isfinite(x)]
        if pts:
            clean.append({**s, "points": pts})
    if not clean:
        return ""
    xs = [x for s in clean for x, _ in s["points"]] + ([marker[0]] if marker else [])
    ys = [y for s in clean for _, y in s["points"]]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    if y1 == y0:
        pad = abs(y0) * 0.05 or 1.0
        y0, y1 = y0 - pad, y1 + pad
    else:
        pad = (y1 - y0) * 0.05
        y0, y1 = y0 - pad, y1 + pad
    left, right, top, bottom = 72, 16, 30, 44
    pw, ph = width - left - right, height - top - bottom

    def px(x):
        return left + (x - x0) / (x1 - x0) * pw

    def py(y):
        return top + (1 - (y - y0) / (y1 - y0)) * ph

    title = f"{y_label} against {x_label}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{escape(chart_id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#bbb"/>',
    ]
    yt = _ticks(y0, y1)
    for t in yt:
        y = py(t)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="tick">{_tick(t, yt[1] - yt[0] if len(yt) > 1 else 0)}</text>'
        )
    xt = _ticks(x0, x1, 6)
    for t in xt:
        x = px(t)
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#f3f3f3"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">{_tick(t, xt[1] - xt[0] if len(xt) > 1 else 0)}</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" class="axis">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {top + ph / 2:.1f}) rotate(-90)" text-anchor="middle" class="axis">'
        f"{escape(y_label)}</text>"
    )
    if marker is not None:
        mx = px(marker[0])
        right_half = mx > left + pw / 2
        parts.append(
            f'<g class="marker" data-marker-x="{marker[0]:g}"><line x1="{mx:.1f}" x2="{mx:.1f}" y1="{top}" '
            f'y2="{top + ph}" stroke="#2ca02c" stroke-width="1.5" stroke-dasharray="5 4"/>'
            f'<text x="{mx + (-4 if right_half else 4):.1f}" y="{top + ph - 6}" text-anchor="{"end" if right_half else "start"}" '
            f'class="marker-label">{escape(marker[1])}</text></g>'
        )
    lx = left
    for i, s in enumerate(clean):
        color = s.get("color") or COLORS[i % len(COLORS)]
        pts = s["points"]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        g = [f'<g class="series" data-series="{escape(s["name"])}">']
        g.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.6"/>')
        if s.get("dots"):
            for x, y in pts:
                g.append(
                    f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}" data-x="{x:g}" data-y="{y!r}">'
                    f"<title>{escape(s['name'])} at {x:g}: {_num(y)}</title></circle>"
                )
        g.append("</g>")
        parts.append("".join(g))
        name = escape(s["name"])
        parts.append(
            f'<line x1="{lx}" x2="{lx + 18}" y1="{top - 14}" y2="{top - 14}" stroke="{color}" stroke-width="2"/>'
            f'<text x="{lx + 24}" y="{top - 10}" class="legend">{name}</text>'
        )
        lx += 24 + 7 * len(s["name"]) + 24
    parts.append("</svg>")
    return "\n".join(parts)
