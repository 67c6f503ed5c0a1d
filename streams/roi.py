"""The ``/roi`` page: the program's totals, the leaderboard and net revenue per day as a
server-rendered SVG chart. Plain HTML and inline SVG: no build step, no script, no CDN; the
page reloads itself every few seconds while the stream runs.

Every number a reader (or the browser test) checks carries a ``data-*`` attribute naming it.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from html import escape
from typing import Any

from agents.advocates import leaderboard

__all__ = ["render_roi", "revenue_chart"]

REFRESH_SECONDS = 5
LEADERS = 10
COLOURS = ("#1b6ca8", "#d1495b", "#2e8b57", "#edae49", "#6a4c93", "#444444")
WIDTH, HEIGHT, PAD = 760, 260, 48
MAX_DAYS = 731


def _money(amounts: dict[str, str], name: str) -> str:
    if not amounts:
        return "—"
    return " · ".join(
        f'<span data-{name}="{escape(c)}">{escape(v)}</span> {escape(c)}'
        for c, v in amounts.items()
    )


def _calendar(days: list[str]) -> list[str]:
    """Every day from the first to the last (a day without orders is a zero), unless that
    spans more than :data:`MAX_DAYS`: then the days with orders."""
    if not days:
        return days
    first, last = date.fromisoformat(days[0]), date.fromisoformat(days[-1])
    span = (last - first).days
    if span > MAX_DAYS:
        return days
    return [(first + timedelta(days=n)).isoformat() for n in range(span + 1)]


def revenue_chart(per_day: dict[str, dict[str, str]]) -> str:
    """Net revenue per order day, one line per currency (no FX), as an SVG element."""
    days = _calendar(sorted(per_day))
    currencies = sorted({c for amounts in per_day.values() for c in amounts})
    if not days:
        return '<p class="empty">No attributed orders yet.</p>'
    values = [Decimal(v) for amounts in per_day.values() for v in amounts.values()]
    top = max([*values, Decimal(1)])
    step = (WIDTH - 2 * PAD) / max(len(days) - 1, 1)

    def point(i: int, value: Decimal) -> str:
        y = HEIGHT - PAD - float(value / top) * (HEIGHT - 2 * PAD)
        return f"{PAD + i * step:.1f},{y:.1f}"

    parts = [
        f'<svg id="revenue-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="Net revenue per day">',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" '
        'stroke="#999"/>',
        f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" stroke="#999"/>',
        f'<text x="{PAD - 6}" y="{PAD + 4}" text-anchor="end" font-size="11">{top:,.0f}</text>',
        f'<text x="{PAD - 6}" y="{HEIGHT - PAD + 4}" text-anchor="end" font-size="11">0</text>',
        f'<text x="{PAD}" y="{HEIGHT - PAD + 18}" font-size="11">{escape(days[0])}</text>',
        f'<text x="{WIDTH - PAD}" y="{HEIGHT - PAD + 18}" text-anchor="end" '
        f'font-size="11">{escape(days[-1])}</text>',
    ]  # fmt: skip
    for n, currency in enumerate(currencies):
        colour = COLOURS[n % len(COLOURS)]
        points = " ".join(
            point(i, Decimal(per_day.get(day, {}).get(currency, "0"))) for i, day in enumerate(days)
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" '
                     f'points="{points}" data-series="{escape(currency)}"/>')  # fmt: skip
        parts.append(f'<text x="{WIDTH - PAD + 4}" y="{PAD + 14 * n}" font-size="12" '
                     f'fill="{colour}">{escape(currency)}</text>')  # fmt: skip
    parts.append("</svg>")
    return "".join(parts)


def _leaders(program: dict[str, Any]) -> str:
    sections = []
    for currency in program["leaders"]:
        rows = "".join(
            f'<tr data-advocate="{escape(e["advocate_id"])}"><td>{e["rank"]}</td>'
            f"<td>{escape(e['advocate_id'])}</td><td>{escape(e['first_name'] or '')}</td>"
            f"<td>{e['converted']}</td><td class=num>{escape(e['revenue'])}</td>"
            f"<td class=num>{escape(e['refunds'])}</td>"
            f'<td class=num data-net="{escape(e["net_revenue"])}">{escape(e["net_revenue"])}</td>'
            "</tr>"
            for e in leaderboard(program, currency, LEADERS)
        )
        sections.append(
            f'<h3>{escape(currency)}</h3><table class="leaders" data-currency="{escape(currency)}">'
            "<tr><th>#</th><th>advocate</th><th>name</th><th>converted</th><th>revenue</th>"
            f"<th>refunds</th><th>net</th></tr>{rows}</table>"
        )
    return "".join(sections) or '<p class="empty">No converted referrals yet.</p>'


def render_roi(program: dict[str, Any]) -> str:
    """The page for the merged program summary (:func:`agents.advocates.merge`)."""
    signed_up, converted = program["signed_up"], program["converted"]
    rate = f"{100 * converted / signed_up:.1f}" if signed_up else "0.0"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>refstream — referral programme ROI</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; }}
td, th {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: left; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
.totals td:first-child {{ color: #555; }}
.empty {{ color: #777; }}
</style></head><body>
<h1>Referral programme ROI</h1>
<p>Attributed revenue net of refunds, per currency (no FX). Refreshes every
{REFRESH_SECONDS} s.</p>
<h2>Programme totals</h2>
<table class="totals">
<tr><td>advocates</td><td class=num data-total="advocates">{program["advocates"]}</td></tr>
<tr><td>referrals made</td><td class=num data-total="referrals">{program["referrals"]}</td></tr>
<tr><td>friends signed up</td><td class=num data-total="signed_up">{signed_up}</td></tr>
<tr><td>referrals converted</td><td class=num data-total="converted">{converted}</td></tr>
<tr><td>conversion rate (signed-up friends who bought)</td>
<td class=num data-total="conversion_rate">{rate} %</td></tr>
<tr><td>attributed orders</td><td class=num data-total="orders">{program["orders"]}</td></tr>
<tr><td>revenue</td><td>{_money(program["revenue"], "revenue")}</td></tr>
<tr><td>refunds</td><td>{_money(program["refunds"], "refunds")}</td></tr>
<tr><td>net revenue</td><td>{_money(program["net_revenue"], "net-revenue")}</td></tr>
</table>
<h2>Net revenue per day</h2>
{revenue_chart(program["per_day"])}
<h2>Top advocates by net revenue</h2>
{_leaders(program)}
</body></html>
"""
