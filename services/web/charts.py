"""Server-side SVG charts for the staff console (no chart library, no script): grouped bars of shares with an
optional goal line. Every text is escaped; colours are presentation attributes (the CSP allows no inline style);
each chart has a title and a description for screen readers, and the pages show the same figures as a table."""

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

# Colours with at least 3:1 contrast against white (WCAG 1.4.11), one per series.
PALETTE = ("#0b4f9c", "#8b1a1a", "#14532d", "#6b3fa0")
WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 48, 16, 16, 56
CEILING = 1.2  # the scale's top when a share reaches 100%


@dataclass(frozen=True)
class Bar:
    """One bar: its value as a share (0.25 = 25%; None: no data) and the text shown on it."""

    value: float | None
    text: str = ""


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def bars(title: str, groups: Sequence[tuple[str, Sequence[Bar]]], series: Sequence[str],
         goal: float | None = None, goal_label: str = "") -> str:
    """Grouped vertical bars: ``groups`` are (label, one Bar per series); the scale is 0..100% (0..120% when a
    value or the goal reaches 100%: a bar beyond is cut there, its text says the real figure); ``goal`` draws a
    dashed line (e.g. 60% for the joint share)."""
    largest = max([goal or 0.0] + [b.value for _, bs in groups for b in bs if b.value is not None])
    top = CEILING if largest >= 1.0 else 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="chart">',
           f'<title>{escape(title)}</title>',
           f'<desc>{escape(_describe(groups, series))}</desc>']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                   f'stroke="#d0d0d0" stroke-width="1"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="12" '
                   f'fill="#1a1a1a">{percent(tick)}</text>')
    slot = plot_w / max(1, len(groups))
    width = min(48.0, (slot - 16) / max(1, len(series)))
    for i, (label, bs) in enumerate(groups):
        x0 = LEFT + i * slot + (slot - width * len(series)) / 2
        for j, b in enumerate(bs):
            x = x0 + j * width
            if b.value is None:
                out.append(f'<text x="{x + width / 2:.1f}" y="{y(0) - 4:.1f}" text-anchor="middle" font-size="12" '
                           f'fill="#4a4a4a">无</text>')
                continue
            top_y = y(min(b.value, top))
            out.append(f'<rect x="{x + 2:.1f}" y="{top_y:.1f}" width="{width - 4:.1f}" height="{y(0) - top_y:.1f}" '
                       f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(f"{label} {series[j]} {b.text}")}'
                       f'</title></rect>')
            out.append(f'<text x="{x + width / 2:.1f}" y="{top_y - 4:.1f}" text-anchor="middle" font-size="12" '
                       f'fill="#1a1a1a">{escape(b.text or percent(b.value))}</text>')
        out.append(f'<text x="{LEFT + i * slot + slot / 2:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="middle" '
                   f'font-size="13" fill="#1a1a1a">{escape(label)}</text>')
    if goal is not None:
        out.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(goal):.1f}" y2="{y(goal):.1f}" stroke="#b00020" '
                   f'stroke-width="2" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{WIDTH - RIGHT}" y="{y(goal) - 6:.1f}" text-anchor="end" font-size="12" '
                   f'fill="#b00020">{escape(goal_label or "目标 " + percent(goal))}</text>')
    for j, name in enumerate(series):  # the legend
        lx = LEFT + j * 150
        out.append(f'<rect x="{lx}" y="{HEIGHT - 22}" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>')
        out.append(f'<text x="{lx + 18}" y="{HEIGHT - 12}" font-size="12" fill="#1a1a1a">{escape(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _describe(groups: Sequence[tuple[str, Sequence[Bar]]], series: Sequence[str]) -> str:
    return "；".join(f"{label}：" + "，".join(f"{series[j]} {b.text or percent(b.value)}" for j, b in enumerate(bs))
                    for label, bs in groups)
