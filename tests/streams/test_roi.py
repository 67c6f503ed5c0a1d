"""The ROI page's renderer: numbers carried where the browser test finds them, and a chart
that spans the calendar (a day without orders is a zero, not skipped)."""

from __future__ import annotations

from agents.advocates import merge
from streams.roi import render_roi, revenue_chart


def test_the_chart_spans_every_day_and_draws_a_line_per_currency():
    chart = revenue_chart({"2026-11-01": {"EUR": "10"}, "2026-11-04": {"EUR": "5", "GBP": "2"}})
    assert chart.count("<polyline") == 2
    eur = chart.split('data-series="EUR"')[0].rsplit('points="', 1)[1].split('"')[0]
    assert len(eur.split()) == 4  # 1, 2, 3 and 4 November
    assert revenue_chart({}) == '<p class="empty">No attributed orders yet.</p>'


def test_an_empty_programme_renders_and_escapes_what_it_shows():
    page = render_roi(merge([], 10))
    assert 'data-total="referrals">0<' in page and "0.0 %" in page
    leaders = {"EUR": [{"advocate_id": "<b>", "first_name": "<i>", "net_revenue": "1",
                        "revenue": "1", "refunds": "0", "converted": 1}]}  # fmt: skip
    program = {**merge([], 10), "leaders": leaders, "signed_up": 4, "converted": 1}
    page = render_roi(program)
    assert "<b>" not in page and "&lt;b&gt;" in page and "25.0 %" in page
