"""Report rendering snapshots (text, Markdown, CSV, JSON); run with UPDATE_SNAPSHOTS=1 to accept a change."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from bot.reports.render import RENDERERS, render_markdown, render_text

from .sample import sample_report

SNAPSHOTS = Path(__file__).parent / "snapshots"
SUFFIX = {"text": "txt", "markdown": "md", "csv": "csv", "json": "json"}


@pytest.mark.parametrize("fmt", list(RENDERERS))
@pytest.mark.parametrize("team", [None, "billing"])
def test_rendering_matches_the_checked_in_snapshot(fmt: str, team: str | None) -> None:
    rendered = RENDERERS[fmt](sample_report("daily", team))
    path = SNAPSHOTS / f"daily-{team or 'all'}.{SUFFIX[fmt]}"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8"), f"{path.name} changed; UPDATE_SNAPSHOTS=1 to accept"


def test_untrusted_subjects_cannot_break_a_markdown_table_or_inject_html() -> None:
    markdown = render_markdown(sample_report())
    row = next(line for line in markdown.splitlines() if line.startswith("| zendesk:197 "))
    assert row.count(" | ") == 2, "the pipe in the subject is escaped, so the row keeps three cells"
    assert "&lt;!channel&gt;" in row and "<!channel>" not in markdown


def test_rich_markup_in_a_subject_is_shown_literally_in_the_terminal() -> None:
    assert "[bold]x[/bold]" in render_text(sample_report())


def test_csv_is_long_format_with_one_number_per_row() -> None:
    rows = list(csv.DictReader(io.StringIO(RENDERERS["csv"](sample_report()))))
    assert set(rows[0]) == {"scope", "section", "item", "metric", "value"}
    created = {row["scope"]: row["value"] for row in rows if row["metric"] == "created"}
    assert created == {"all teams": "7", "billing": "5", "tech": "1"}


def test_json_carries_durations_in_seconds_and_times_in_iso() -> None:
    data = json.loads(RENDERERS["json"](sample_report("weekly")))
    assert data["kind"] == "weekly" and data["period"]["end"] == "2026-03-02T10:00:00+00:00"
    resolution = next(t for t in data["scopes"][0]["sla"] if t["target"] == "resolution")
    assert isinstance(resolution["median_seconds"], float)
