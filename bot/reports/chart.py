"""The report's picture: backlog trend against its weekday normal band, and open tickets by age.

Drawn with matplotlib's object API on the Agg canvas (no pyplot, no global
state, no display needed), to PNG bytes of an exact pixel size so Slack shows
it crisply.
"""

from __future__ import annotations

import io
import math

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from bot.reports.report import AGING_LABELS, ScopeReport

WIDTH, HEIGHT, DPI = 1200, 450, 100
_LINE = "#1f6feb"
_BAND = "#9ecbff"
_NORMAL = "#57606a"
_FLAG = "#cf222e"
_BARS = ("#2da44e", "#bf8700", "#e16f24", "#cf222e")


def render_chart(scope: ScopeReport, title: str, *, width: int = WIDTH, height: int = HEIGHT,
                 dpi: int = DPI) -> bytes:
    """A PNG of `width` x `height` pixels: backlog trend with the normal band (left), aging buckets (right)."""
    figure = Figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(figure)
    trend_axes, aging_axes = figure.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    _trend(trend_axes, scope)
    _aging(aging_axes, scope)
    figure.suptitle(title, fontsize=13, fontweight="bold")
    figure.subplots_adjust(left=0.06, right=0.98, top=0.84, bottom=0.2, wspace=0.25)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)  # no bbox_inches: keep the exact pixel size
    return buffer.getvalue()


def _trend(axes, scope: ScopeReport) -> None:
    points = scope.trend
    xs = list(range(len(points)))
    values = [math.nan if p.open is None else p.open for p in points]
    low = [math.nan if p.low is None else p.low for p in points]
    high = [math.nan if p.high is None else p.high for p in points]
    normal = [math.nan if p.normal is None else p.normal for p in points]
    if any(not math.isnan(v) for v in low):
        axes.fill_between(xs, low, high, color=_BAND, alpha=0.5, linewidth=0, label="normal range (4 wk)")
        axes.plot(xs, normal, color=_NORMAL, linestyle="--", linewidth=1, label="normal")
    axes.plot(xs, values, color=_LINE, marker="o", markersize=3, linewidth=2, label="open backlog")
    if points and scope.backlog.flagged:
        axes.plot([xs[-1]], [scope.backlog.open], marker="o", markersize=9, color=_FLAG, linestyle="none",
                  label="above normal")
    axes.set_xticks(xs)
    axes.set_xticklabels([p.at.strftime("%a %d") for p in points], rotation=45, ha="right", fontsize=8)
    axes.set_title("Open backlog, same time each day", fontsize=10)
    axes.set_ylim(bottom=0)
    axes.grid(axis="y", alpha=0.3)
    axes.legend(fontsize=8, loc="best", framealpha=0.8)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))


def _aging(axes, scope: ScopeReport) -> None:
    bars = axes.bar(range(len(AGING_LABELS)), scope.aging, color=_BARS)
    axes.bar_label(bars, fontsize=9)
    axes.set_xticks(range(len(AGING_LABELS)))
    axes.set_xticklabels(AGING_LABELS, fontsize=8)
    axes.set_title(f"Open tickets by age, in {scope.time_basis}", fontsize=10)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylim(bottom=0, top=max(1, *scope.aging) * 1.15)
    axes.grid(axis="y", alpha=0.3)


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a PNG, read from its IHDR header."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
