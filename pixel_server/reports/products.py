"""Per product and per variant: views, add-to-carts, orders, units, revenue, conversion.

A row of an event's ``contents`` names a variant (``content_id``) and its
product (``item_group_id``; a line without one is its own product). Product
rows roll their variants up, and ``variants`` lists each product's rows for
the drill-down.

* views / add_to_carts / orders: events (ViewContent / AddToCart / Purchase)
  containing the product or variant, each event once however many lines it has;
* units: quantities in purchases; refunded_units: quantities in refunds
  (units returned; an amount-only refund returns none);
* per currency (maps currency → amount; never summed across currencies):
  ``gross_revenue``, ``price × quantity`` of purchase lines;
  ``refunded_by_line``, money refunds returned for the line as the store
  assigned it (a cancellation returns what was left of every line);
  ``refunded_without_lines``, the line's share of money refunds returned
  without lines (amount-only refunds, or lines that do not add up to the
  money), spread over the order's lines in proportion to what was left of
  their value (shipping, tax and order-level discounts stay at order level and
  are in no product's numbers); ``refunded``, the two together; ``revenue``,
  net: gross less refunded. Refunds count on the day they happen, like the
  purchases report's;
* view_to_purchase: orders / views — how many purchases containing it there
  were per view of it (events, like GA4's item view-to-purchase rate). Counting
  distinct visitors instead would cost three exact distinct counts per row and
  triple the query (docs/benchmarks.md).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from pixel_server.catalog.match import lookup_titles
from pixel_server.reports.base import Report, ReportParams, Table, money, ratio, rollup, rows


@functools.cache
def sql(cached: bool) -> str:
    """Counts per product (level 1) and per variant (level 0), from the rollup's
    lines (``*_v``/``*_p``: the event's first line of the variant/product)."""
    return f"""
SELECT grouping(product, variant) AS level, product, variant,
       sum(views_v), sum(views_p), sum(carts_v), sum(carts_p), sum(orders_v), sum(orders_p),
       sum(units)
FROM ({rollup("report_products", cached=cached)})
GROUP BY GROUPING SETS ((product), (product, variant))
ORDER BY level DESC, product, variant
"""


@functools.cache
def revenue_sql(cached: bool) -> str:
    """Net line revenue per product and variant, per currency of purchase and
    refund lines."""
    return f"""
SELECT grouping(product, variant) AS level, product, variant, currency, sum(revenue),
       sum(refunded), sum(refunded_share), sum(refunded_units)
FROM ({rollup("report_products", cached=cached)})
GROUP BY GROUPING SETS ((product, currency), (product, variant, currency))
HAVING sum(money_lines) > 0
"""


COLUMNS = [
    "product",
    "variant",
    "views",
    "add_to_carts",
    "orders",
    "units",
    "refunded_units",
    "view_to_purchase",
]
# Per currency, in this order: revenue_<C> is net revenue.
MONEY = ("gross_revenue", "refunded_by_line", "refunded_without_lines", "refunded", "revenue")


def run(client: Client, params: ReportParams, cached: bool = False) -> Report:
    products: dict[str, dict[str, Any]] = {}
    variants: dict[str, list[dict[str, Any]]] = defaultdict(list)
    currencies: set[str] = set()
    qp = params.query_parameters()
    amounts: dict[tuple[int, str, str], dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: {name: {} for name in MONEY}
    )
    refunded_units: dict[tuple[int, str, str], int] = defaultdict(int)
    for level, product, variant, currency, net, by_line, share, returned in rows(
        client, revenue_sql(cached), qp
    ):
        key = (int(level), product, variant)
        row = amounts[key]
        row["revenue"][currency] = money(net)
        row["refunded_by_line"][currency] = money(by_line)
        row["refunded_without_lines"][currency] = money(share)
        row["refunded"][currency] = money(by_line + share)
        row["gross_revenue"][currency] = money(net + by_line + share)
        refunded_units[key] += int(returned)
        currencies.add(currency)
    for row_values in rows(client, sql(cached), qp):
        level, product, variant = row_values[:3]
        vc_v, vc_p, atc_v, atc_p, buy_v, buy_p = (int(n) for n in row_values[3:9])
        units = int(row_values[9])
        views, atc, orders = (vc_p, atc_p, buy_p) if level == 1 else (vc_v, atc_v, buy_v)
        key = (int(level), product, variant if level == 0 else "")
        found = amounts.get(key, {name: {} for name in MONEY})
        row = {
            "product": product,
            "variant": variant if level == 0 else "",
            "views": int(views),
            "add_to_carts": int(atc),
            "orders": int(orders),
            "units": int(units),
            "refunded_units": refunded_units.get(key, 0),
            "view_to_purchase": ratio(orders, views),
            **{name: dict(sorted(found[name].items())) for name in MONEY},
        }
        if level == 1:  # grouped by product only
            products[product] = row
        else:
            variants[product].append(row)
    order = sorted(products, key=lambda p: (-products[p]["orders"], -products[p]["views"], p))
    money_columns = [f"{name}_{c or 'none'}" for c in sorted(currencies) for name in MONEY]
    product_table = Table([c for c in COLUMNS if c != "variant"] + money_columns)
    variant_table = Table(COLUMNS + money_columns)
    out = []
    for p in order:
        row = products[p]
        row["variants"] = variants[p]
        out.append(row)
        product_table.rows.append(_cells(row, product_table.columns))
        for v in variants[p]:
            variant_table.rows.append(_cells(v, variant_table.columns))
    _name_from_catalog(client, params.pixel_id, out)
    return Report(
        "products",
        params,
        {"currencies": sorted(currencies), "products": out},
        {"products": product_table, "variants": variant_table},
    )


def _name_from_catalog(client: Client, pixel_id: str, products: list[dict[str, Any]]) -> None:
    """Titles, option names (Red / M) and thumbnails from the catalog, for the
    variants whose content id is a catalog sku_id (and their products); ids
    the catalog does not know keep only their id."""
    ids = [v["variant"] for p in products for v in p["variants"]]
    found = lookup_titles(client, pixel_id, ids) if ids else {}
    for product in products:
        for variant in product["variants"]:
            known = found.get(variant["variant"])
            if known is not None:
                variant.update(known)
                product.setdefault("title", known["title"])
                if known["image_link"]:
                    product.setdefault("image_link", known["image_link"])


def _cells(row: dict[str, Any], columns: list[str]) -> list[Any]:
    out: list[Any] = []
    for c in columns:
        if c in row:
            out.append(row[c])
            continue
        name, code = c.rsplit("_", 1)
        out.append(row[name].get("" if code == "none" else code, Decimal("0.0000")))
    return out
