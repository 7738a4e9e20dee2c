"""The statistics' pure parts: the weeks (Monday midnight in Rome, across the change of
time), the median's bucket, and the SVG charts (labels escaped, bars to scale)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from credmail.service.desks.stats import Chart
from credmail.service.stats import HALF_WITHIN, half_within, weeks_until
from credmail.web.console.charts import draw

ROME = ZoneInfo("Europe/Rome")


def test_weeks_start_on_monday_midnight_in_rome_across_the_change_of_time() -> None:
    now = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)  # a Wednesday; summer time ended 25 Oct
    weeks = weeks_until(now, ROME, 3)
    assert [w.monday.isoformat() for w in weeks] == ["2026-10-19", "2026-10-26", "2026-11-02"]
    assert weeks[0].begins.astimezone(UTC) == datetime(2026, 10, 18, 22, 0, tzinfo=UTC)  # CEST
    assert weeks[1].begins.astimezone(UTC) == datetime(2026, 10, 25, 23, 0, tzinfo=UTC)  # CET
    assert weeks[0].ends == weeks[1].begins and weeks[1].ends == weeks[2].begins
    span = weeks[0].ends.astimezone(UTC) - weeks[0].begins.astimezone(UTC)
    assert span == timedelta(days=7, hours=1)  # the night the clocks go back
    assert weeks[-1].begins <= now < weeks[-1].ends
    assert weeks[-1].sunday.isoformat() == "2026-11-08"


def test_half_within_names_the_bucket_holding_the_median() -> None:
    assert half_within([0] * 7) == ""
    assert half_within([1, 0, 1, 0, 0, 0, 0]) == HALF_WITHIN[0]
    assert half_within([1, 0, 0, 0, 0, 0, 2]) == HALF_WITHIN[6]
    assert half_within([0, 3, 0, 0, 0, 0, 2]) == "1 ora"


def _chart(shape: str) -> Chart:
    return Chart(
        slug="prova",
        title="Invii <b>& co</b>",
        corner="invio",
        categories=("<script>alert(1)</script>", "due"),
        axis=("<script>alert(1)</script>", "due"),
        series=("uno", "due"),
        values=((3, 1), (0, 8)),
        shape="columns" if shape == "columns" else "bars",
    )


def test_charts_escape_their_labels_and_draw_to_scale() -> None:
    for shape in ("columns", "bars"):
        svg = str(draw(_chart(shape)))
        assert "<script>" not in svg and "&lt;script&gt;" in svg
        assert '<title id="grafico-prova-titolo">Invii &lt;b&gt;&amp; co&lt;/b&gt;</title>' in svg
        assert 'role="img"' in svg and "style=" not in svg
        sizes = [float(h) for h in re.findall(r'<rect [^>]*(?:height|width)="([\d.]+)"', svg)]
        assert len(sizes) == 3  # no rectangle for a zero
    bars = str(draw(_chart("bars")))
    widths = [float(w) for w in re.findall(r'width="([\d.]+)" height', bars)]
    assert abs(widths[0] / widths[2] - 3 / 8) < 0.01  # 3 against 8 on one scale
