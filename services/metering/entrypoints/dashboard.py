"""The tenant dashboard: one server-rendered HTML page, charts as inline SVG (no external assets)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from html import escape
from urllib.parse import quote
from typing import Sequence

from clonedesk.metering.domain.billing import Invoice, usd

WIDTH, HEIGHT, PAD = 640, 220, 36


def line_chart(chart_id: str, title: str, points: Sequence[tuple[str, float | None]], y_max: float,
               fmt: str = "{:.0%}") -> str:
    """A line chart of (label, value) points; missing values break nothing, they are just not drawn."""
    known = [(i, label, value) for i, (label, value) in enumerate(points) if value is not None]
    step = (WIDTH - 2 * PAD) / max(len(points) - 1, 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        return PAD + i * step, HEIGHT - PAD - (value / y_max) * (HEIGHT - 2 * PAD)

    coords = [xy(i, value) for i, _, value in known]
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3">'
        f'<title>{escape(label)}: {escape(fmt.format(value))}</title></circle>'
        for (x, y), (_, label, value) in zip(coords, known))
    axis = (f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
            f'<line x1="{PAD}" y1="{PAD}" x2="{PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
            f'<text x="4" y="{PAD + 4}">{escape(fmt.format(y_max))}</text>'
            f'<text x="4" y="{HEIGHT - PAD}">{escape(fmt.format(0))}</text>')
    if points:
        axis += (f'<text x="{PAD}" y="{HEIGHT - 8}">{escape(points[0][0])}</text>'
                 f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" text-anchor="end">{escape(points[-1][0])}</text>')
    line = ('<polyline fill="none" stroke="#2563eb" stroke-width="2" points="'
            + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>') if coords else \
        f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle">no data yet</text>'
    return (f'<figure id="{chart_id}"><figcaption>{escape(title)}</figcaption>'
            f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" '
            f'aria-label="{escape(title)}">{axis}{line}{dots}</svg></figure>')


STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#111}
.tiles{display:flex;gap:1rem;flex-wrap:wrap}
.tile{border:1px solid #ddd;border-radius:8px;padding:1rem 1.5rem;min-width:10rem}
.tile .label{color:#555;font-size:.85rem}.tile .value{font-size:1.6rem;font-weight:600}
svg text{font-size:11px;fill:#555}.axis{stroke:#999}circle{fill:#2563eb}
table{border-collapse:collapse}td,th{padding:.25rem .75rem;border-bottom:1px solid #eee;text-align:right}
"""


def action_table(series: list[dict]) -> str:
    """Back-office calls by day: carried out, failed (or refused) and the failure rate; nothing when none."""
    days = [p for p in series if (p.get("actions") or {}).get("total")]
    if not days:
        return ""
    rows = "".join(f"<tr><th>{escape(p['period'])}</th><td>{p['actions']['ok']}</td><td>{p['actions']['failed']}</td>"
                   f"<td>{p['actions']['failure_rate']:.1%}</td></tr>" for p in days)
    return ('<h2>Actions by day</h2><table id="actions"><tr><th>day</th><th>done</th><th>failed</th>'
            f"<th>failure rate</th></tr>{rows}</table>")


def resolution_table(tenant_id: str, items: list[dict], key: str | None) -> str:
    """The month's latest resolutions, each linked to its evidence (with the page's key, if it had one)."""
    if not items:
        return ""
    suffix = f"?key={quote(key, safe='')}" if key else ""
    rows = "".join(
        f"<tr><td>{escape(item['created_at'] or '')}</td><td>{escape(item['state'])}</td>"
        f"<td>{escape(item['decision'])}</td><td>{escape(item['category'] or '')}</td>"
        f'<td><a href="/v1/tenants/{quote(tenant_id)}/resolutions/{quote(item["resolution_id"])}{suffix}">'
        f"{escape(item['resolution_id'][:8])}…</a></td></tr>" for item in items)
    return ('<h2>Resolutions this month (latest first)</h2><table id="resolutions"><tr><th>created</th>'
            f"<th>state</th><th>decision</th><th>category</th><th>evidence</th></tr>{rows}</table>")


def _share(value) -> str:
    return "–" if value is None else f"{value:.1%}"


def category_table(categories: list[dict]) -> str:
    if not categories:
        return ""
    rows = "".join(f"<tr><th>{escape(c['category'] or '(none)')}</th><td>{c['total']}</td>"
                   f"<td>{_share(c['resolution_rate'])}</td><td>{_share(c['escalation_rate'])}</td>"
                   f"<td>{'–' if c['csat_average'] is None else format(c['csat_average'], '.2f')}</td></tr>"
                   for c in categories)
    return ('<h2>Resolution rate by category</h2><table id="by-category"><tr><th>category</th><th>AI replies</th>'
            f"<th>resolution rate</th><th>escalation rate</th><th>CSAT</th></tr>{rows}</table>")


def escalation_table(escalations: Sequence[tuple[str, int]]) -> str:
    if not escalations:
        return ""
    rows = "".join(f"<tr><th>{escape(kind)}</th><td>{n}</td></tr>" for kind, n in escalations)
    return f'<h2>Escalations by reason</h2><table id="escalations"><tr><th>reason</th><th>count</th></tr>{rows}</table>'


def _when(epoch) -> str:
    if not isinstance(epoch, (int, float)):
        return ""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M")


def version_table(versions: Sequence[dict]) -> str:
    """The adapter versions over time: when each was trained and why, whether it went live, its scores on
    the held-out tickets, and a chart of its decision accuracy."""
    if not versions:
        return ""
    rows = "".join(
        f"<tr><th>v{v['version']}{' (current)' if v['current'] else ''}</th><td>{escape(_when(v['created_at']))}</td>"
        f"<td>{escape(str(v['trigger']))}</td><td>{escape(str(v['status']))}</td>"
        f"<td>{_share(v['decision_accuracy'])}</td>"
        f"<td>{'–' if v['reply_chrf'] is None else format(v['reply_chrf'], '.1f')}</td>"
        f"<td>{_share(v['answered_share'])}</td><td>{_share(v.get('preview_decision_accuracy'))}</td></tr>"
        for v in versions)
    chart = line_chart("versions-chart", "Holdout decision accuracy by adapter version",
                       [(f"v{v['version']}", v["decision_accuracy"]) for v in versions], 1.0)
    return ('<h2>Adapter versions</h2><table id="adapter-versions"><tr><th>version</th><th>trained (UTC)</th>'
            "<th>trigger</th><th>status</th><th>decision accuracy</th><th>reply chrF</th><th>answered</th>"
            "<th>preview decision accuracy</th></tr>"
            f"{rows}</table>{chart}")


def render_dashboard(invoice: Invoice, usage: dict, resolutions: list[dict] | None = None,
                     key: str | None = None, *, escalations: Sequence[tuple[str, int]] = (),
                     versions: Sequence[dict] = (), forecast: Decimal | None = None,
                     granularity: str = "day") -> str:
    """`usage` is the API's usage body for the invoice's month, by `granularity` (day, or hour when the
    month's activity spans under three days); `resolutions` the month's latest (the API's listing items),
    linked to their evidence; `escalations` (kind, count); `versions` the tenant's adapter versions
    (core.adapters.version_history); `forecast` the month's projected total."""
    tenant, month = escape(invoice.tenant_id), escape(str(invoice.month))
    series = usage["series"]
    rate_points = [(p["period"], p["resolution_rate"]) for p in series]
    csat_points = [(p["period"], p["csat_average"]) for p in series]
    rate = usage["resolution_rate"]
    csat = usage["csat"]["average"]
    tiles = [
        ("spend", "Spend this month", usd(invoice.total)),
        ("forecast", "Forecast to month end", "–" if forecast is None else usd(forecast)),
        ("free-units-left", "Free units left", f"{invoice.free_units_left} of {invoice.free_allowance}"),
        ("billable-units", "Billable resolutions", str(invoice.billable_units)),
        ("resolution-rate", "Resolution rate", "–" if rate is None else f"{rate:.1%}"),
        ("csat-average", "CSAT average", "–" if csat is None else f"{csat:.2f} / 5"),
    ]
    actions = usage.get("actions") or {"total": 0, "failure_rate": None}
    if actions["total"]:
        tiles.append(("actions", "Back-office actions", f"{actions['ok']} done, {actions['failed']} failed"))
        tiles.append(("action-failure-rate", "Action failure rate", f"{actions['failure_rate']:.1%}"))
    tiles_html = "".join(f'<div class="tile"><div class="label">{escape(label)}</div>'
                         f'<div class="value" id="{key}">{escape(value)}</div></div>'
                         for key, label, value in tiles)
    states = "".join(f"<tr><th>{escape(state)}</th><td>{n}</td></tr>"
                     for state, n in invoice.to_json()["resolutions"].items())
    body = invoice.to_json()
    bill = "".join(f"<tr><th>{escape(label)}</th><td>{escape(str(body[key]))}</td></tr>" for label, key in (
        ("billable units", "billable_units"), ("free units", "free_units"),
        ("charged units", "charged_units"),
        ("unit price (USD)", "unit_price_usd"), ("credits (units)", "credit_units"),
        ("credits (USD)", "credits_usd"), ("of them, accepted disputes (USD)", "dispute_credits_usd"),
        ("total (USD)", "total_usd")))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>CloneDesk · {tenant} · {month}</title>
<style>{STYLE}</style></head>
<body>
<h1>{tenant}</h1><p>Month <strong id="month">{month}</strong> (UTC)</p>
<section class="tiles">{tiles_html}</section>
<section>{line_chart("resolution-rate-chart", f"Resolution rate by {granularity}", rate_points, 1.0)}
{line_chart("csat-chart", f"CSAT average by {granularity}", csat_points, 5.0, "{:.1f}")}</section>
<section><h2>Resolutions this month</h2><table id="states">{states}</table>
{category_table(usage.get("by_category") or [])}
{escalation_table(escalations)}
{action_table(series)}
{version_table(versions)}
<h2>Invoice</h2><table id="invoice">{bill}</table>
{resolution_table(invoice.tenant_id, resolutions or [], key)}</section>
</body></html>"""
