#!/usr/bin/env python3
"""Draws the chunk-size results of scripts/bench.sh as an SVG (standard library only).

    python3 scripts/plot_chunk_sizes.py [target/bench/chunk_sizes.csv] [docs/chunk-sizes.svg]

The CSV has the columns chunk_size,metric,run,value. Each metric becomes one panel:
the median over the runs as a line, the min-max spread as a bar, chunk sizes on a
logarithmic axis.
"""

import csv
import math
import statistics
import sys
from collections import defaultdict
from html import escape
from pathlib import Path

TITLES = {
    "single_mb_s": ("One GET of 1 GiB", "MB/s", True),
    "cpu_s_per_gib": ("Server CPU per GiB (one GET)", "s", False),
    "wrk64_mb_s": ("64 connections, 1 MiB file", "MB/s", True),
    "wrk64_cpu_s_per_gib": ("Server CPU per GiB (64 connections)", "s", False),
}
PANEL_W, PANEL_H = 360, 260
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 62, 16, 34, 46
COLOR = "#1f6feb"


def human_size(n):
    for unit, size in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def nice_ticks(lo, hi, count=5):
    """Round tick values covering lo..hi."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    value = start
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < hi:
        ticks.append(ticks[-1] + step)
    return ticks


def fmt(value):
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{value:.3g}"


def panel(x0, y0, metric, series):
    title, unit, higher_is_better = TITLES.get(metric, (metric, "", True))
    sizes = sorted(series)
    stats = {
        size: (statistics.median(vals), min(vals), max(vals), len(vals))
        for size, vals in series.items()
    }
    lo = 0.0
    hi = max(s[2] for s in stats.values())
    ticks = nice_ticks(lo, hi)
    lo, hi = ticks[0], ticks[-1]
    plot_w = PANEL_W - MARGIN_L - MARGIN_R
    plot_h = PANEL_H - MARGIN_T - MARGIN_B
    log_lo = math.log2(sizes[0]) - 0.5
    log_hi = math.log2(sizes[-1]) + 0.5

    def px(size):
        return x0 + MARGIN_L + (math.log2(size) - log_lo) / (log_hi - log_lo) * plot_w

    def py(value):
        return y0 + MARGIN_T + plot_h - (value - lo) / (hi - lo) * plot_h

    out = []
    better = "higher is better" if higher_is_better else "lower is better"
    out.append(
        f'<text x="{x0 + PANEL_W / 2:.1f}" y="{y0 + 20}" text-anchor="middle" '
        f'font-weight="bold">{escape(title)}</text>'
    )
    for tick in ticks:
        y = py(tick)
        out.append(
            f'<line x1="{x0 + MARGIN_L}" x2="{x0 + MARGIN_L + plot_w}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{x0 + MARGIN_L - 6}" y="{y + 4:.1f}" text-anchor="end">{fmt(tick)}</text>'
        )
    out.append(
        f'<text transform="translate({x0 + 14},{y0 + MARGIN_T + plot_h / 2:.1f}) rotate(-90)" '
        f'text-anchor="middle">{escape(unit)} ({better})</text>'
    )
    for size in sizes:
        x = px(size)
        out.append(
            f'<text x="{x:.1f}" y="{y0 + MARGIN_T + plot_h + 18}" '
            f'text-anchor="middle">{human_size(size)}</text>'
        )
    out.append(
        f'<text x="{x0 + MARGIN_L + plot_w / 2:.1f}" y="{y0 + PANEL_H - 6}" '
        f'text-anchor="middle">chunk size (bytes)</text>'
    )
    out.append(
        f'<rect x="{x0 + MARGIN_L}" y="{y0 + MARGIN_T}" width="{plot_w}" height="{plot_h}" '
        f'fill="none" stroke="#888"/>'
    )
    points = " ".join(f"{px(s):.1f},{py(stats[s][0]):.1f}" for s in sizes)
    out.append(f'<polyline points="{points}" fill="none" stroke="{COLOR}" stroke-width="2"/>')
    for size in sizes:
        median, low, high, n = stats[size]
        x = px(size)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" '
            f'stroke="{COLOR}" stroke-width="1.5"/>'
        )
        for v in (low, high):
            out.append(
                f'<line x1="{x - 4:.1f}" x2="{x + 4:.1f}" y1="{py(v):.1f}" y2="{py(v):.1f}" '
                f'stroke="{COLOR}"/>'
            )
        out.append(
            f'<circle cx="{x:.1f}" cy="{py(median):.1f}" r="3.5" fill="{COLOR}">'
            f"<title>{human_size(size)}: median {fmt(median)} {escape(unit)}, "
            f"{fmt(low)}–{fmt(high)} over {n} runs</title></circle>"
        )
        last = size == sizes[-1]
        out.append(
            f'<text x="{x + (-6 if last else 6):.1f}" y="{py(median) - 6:.1f}" font-size="10" '
            f'text-anchor="{"end" if last else "start"}">{fmt(median)}</text>'
        )
    return out


def main():
    source = Path(sys.argv[1] if len(sys.argv) > 1 else "target/bench/chunk_sizes.csv")
    target = Path(sys.argv[2] if len(sys.argv) > 2 else "docs/chunk-sizes.svg")
    data = defaultdict(lambda: defaultdict(list))
    with source.open(newline="") as f:
        for row in csv.DictReader(f):
            data[row["metric"]][int(row["chunk_size"])].append(float(row["value"]))
    if not data:
        sys.exit(f"no rows in {source}")
    metrics = [m for m in TITLES if m in data] + sorted(m for m in data if m not in TITLES)
    width = PANEL_W * len(metrics)
    height = PANEL_H + 30
    body = []
    for i, metric in enumerate(metrics):
        body += panel(i * PANEL_W, 0, metric, data[metric])
    body.append(
        f'<text x="{width / 2:.1f}" y="{height - 8}" text-anchor="middle" fill="#555">'
        "tower-range-serve chunk size: median (dot) and min–max (bar) over the runs"
        "</text>"
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">\n'
        f'<rect width="100%" height="100%" fill="white"/>\n' + "\n".join(body) + "\n</svg>\n"
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(svg, encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
