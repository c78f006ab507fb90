"""The chart: a real PNG of the promised pixel size, for a full report, a team and an empty queue."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.reports.chart import HEIGHT, WIDTH, png_size, render_chart
from bot.reports.metrics import Scope, build_report
from bot.reports.report import Period

from .helpers import NOW
from .sample import sample_report


@pytest.mark.parametrize("team", [None, "billing"])
def test_the_chart_is_a_png_of_the_expected_size(team, tmp_path) -> None:
    report = sample_report("weekly", team)
    data = render_chart(report.main, report.title)
    path = tmp_path / "chart.png"
    path.write_bytes(data)
    assert path.stat().st_size > 10_000, "a chart with two panels is not a few bytes"
    assert png_size(data) == (WIDTH, HEIGHT)
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (WIDTH, HEIGHT)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50, "something was drawn, not a blank canvas"


def test_a_custom_size_is_honoured_exactly() -> None:
    report = sample_report()
    assert png_size(render_chart(report.main, report.title, width=800, height=300, dpi=80)) == (800, 300)


def test_an_empty_queue_without_history_still_draws() -> None:
    empty = build_report([], [], Period.ending("daily", NOW), [Scope("all teams")], history_since=NOW)
    assert png_size(render_chart(empty.main, empty.title)) == (WIDTH, HEIGHT)


def test_png_size_refuses_other_files() -> None:
    with pytest.raises(ValueError, match="not a PNG"):
        png_size(b"GIF89a" + bytes(30))
