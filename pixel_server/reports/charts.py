"""Charts for the dashboard, rendered on the server as inline SVG with pygal.

pygal is a dependency (see pyproject.toml): charts come out as SVG in the
page, so nothing is fetched from a CDN, the page works offline, and charts
show even with JavaScript off. pygal's optional tooltip script (hosted on a
CDN) is switched off with ``js=[]``; values are printed in the tables.
"""

from __future__ import annotations

import html
import re
from decimal import Decimal
from typing import Any, Final

import pygal
from pygal.style import Style

_STYLE: Final = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#334155",
    foreground_strong="#0f172a",
    foreground_subtle="#cbd5e1",
    opacity=".85",
    opacity_hover=".95",
    colors=("#2563eb", "#db2777", "#16a34a", "#f59e0b", "#7c3aed", "#0891b2", "#64748b"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    label_font_size=11,
    major_label_font_size=11,
    legend_font_size=12,
    value_font_size=11,
    title_font_size=14,
)
_COMMON: Final[dict[str, Any]] = {
    "style": _STYLE,
    "js": [],  # no CDN script
    "disable_xml_declaration": True,
    "explicit_size": False,
    "legend_at_bottom": True,
    "legend_box_size": 10,
    "margin": 8,
    "show_y_guides": True,
    "print_values": False,
    "no_data_text": "No data in this range",
    "truncate_label": -1,  # never cut a label to "11..."
}
_KEY_EVENTS: Final = ("PageView", "ViewContent", "AddToCart", "Purchase")
_MONTHS: Final = (
    "Jan",
    "Feb",
    "Mar",
    "Apr",
    "May",
    "Jun",
    "Jul",
    "Aug",
    "Sep",
    "Oct",
    "Nov",
    "Dec",
)


# pygal always writes its config as an inline <script>, used only by its
# (switched off) tooltip script: dropped, so the page's CSP needs no exception.
_SCRIPT: Final = re.compile(r"<script\b[^>]*>.*?</script>", re.DOTALL | re.IGNORECASE)


def _render(chart: Any) -> str:
    return _SCRIPT.sub("", str(chart.render(is_unicode=True)))


def empty(message: str) -> str:
    """A small note in place of an empty chart (not a chart-sized "No data")."""
    return f'<p class="empty">{html.escape(message)}</p>'


def _day_labels(days: list[str]) -> tuple[list[str], int]:
    """'Mar 2' for each day; about eight of them shown whatever the range's length."""
    labels = [f"{_MONTHS[int(d[5:7]) - 1]} {int(d[8:10])}" for d in days]
    return labels, max(1, len(days) // 8)


def overview_chart(overview: dict[str, Any]) -> str:
    if not any(d["visitors"] or d["events"] for d in overview["days"]):
        return empty("No visitors in this range yet.")
    days = [d["date"] for d in overview["days"]]
    labels, every = _day_labels(days)
    chart = pygal.Line(
        width=760,
        height=300,
        x_label_rotation=0,
        show_minor_x_labels=False,
        x_labels_major_every=every,
        dots_size=2,
        fill=False,
        **_COMMON,
    )
    chart.x_labels = labels
    chart.add("Visitors", [d["visitors"] for d in overview["days"]])
    for name in _KEY_EVENTS:
        if name in overview["totals"]["by_event"]:
            chart.add(name, [d["by_event"].get(name, 0) for d in overview["days"]])
    return _render(chart)


def revenue_chart(purchases: dict[str, Any], days: list[str]) -> str:
    """Net revenue per day, one series per currency (never added together)."""
    if not purchases["days"]:
        return empty("No purchases in this range yet.")
    labels, every = _day_labels(days)
    chart = pygal.Bar(
        width=760,
        height=300,
        show_minor_x_labels=False,
        x_labels_major_every=every,
        **_COMMON,
    )
    chart.x_labels = labels
    series: dict[str, dict[str, float]] = {}
    for row in purchases["days"]:
        series.setdefault(row["currency"] or "none", {})[row["date"]] = float(row["revenue"])
    for currency, by_day in sorted(series.items()):
        chart.add(f"Revenue {currency}", [by_day.get(d, 0.0) for d in days])
    return _render(chart)


def funnel_chart(funnel: dict[str, Any]) -> str:
    if not any(s["visitors"] for s in funnel["steps"]):
        return empty("Nobody reached the first step of the funnel in this range.")
    chart = pygal.HorizontalBar(
        width=760, height=260, show_legend=False, **{**_COMMON, "print_values": True}
    )
    steps = list(reversed(funnel["steps"]))  # pygal draws the first bar at the bottom
    chart.x_labels = [s["event"] for s in steps]
    chart.add("Visitors", [s["visitors"] for s in steps])
    return _render(chart)


def channel_chart(attribution: dict[str, Any]) -> str:
    """Attributed net revenue by channel, one series per currency."""
    if not attribution["channels"]:
        return empty("No purchases to attribute in this range.")
    chart = pygal.Bar(width=760, height=280, **_COMMON)
    channels = ["tiktok_paid", "tiktok_organic", "other_paid", "referral", "direct"]
    chart.x_labels = [c.replace("_", " ") for c in channels]
    by_currency: dict[str, dict[str, Decimal]] = {}
    for row in attribution["channels"]:
        by_currency.setdefault(row["currency"] or "none", {})[row["channel"]] = row["revenue"]
    for currency, values in sorted(by_currency.items()):
        chart.add(f"Revenue {currency}", [float(values.get(c, 0)) for c in channels])
    return _render(chart)
