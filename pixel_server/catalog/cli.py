"""``pixel-server catalog ...``: the catalog's commands (parsers and output).

The work is done by the ``catalog.*`` management operations
(:mod:`pixel_server.catalog.operations`), directly or through the running
server, like every management command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

import orjson

from pixel_server.config import Settings

RunOperation = Callable[[Settings, str, dict[str, Any]], Any]
EXIT_OK, EXIT_FAILED = 0, 1


def add_parser(sub: Any, func: Callable[[Settings, argparse.Namespace], int]) -> None:
    catalog = sub.add_parser(
        "catalog", help="the product catalog: sync from the store, feed URL, match rate"
    ).add_subparsers(dest="catalog_command", required=True)
    sync = catalog.add_parser("sync", help="pull the store's whole catalog now")
    sync.add_argument("--full", action="store_true", help="write every item again")
    catalog.add_parser("push", help="upload what changed to TikTok's Catalog API now")
    catalog.add_parser("status", help="last syncs, counts, invalid items, match rate")
    catalog.add_parser("feed-url", help="the URL to register in TikTok's catalog manager")
    catalog.add_parser("rotate-feed-token", help="a new feed URL (the old one stops working)")
    for p in catalog.choices.values():
        p.add_argument("--pixel", required=True)
        p.add_argument("--json", action="store_true", help="print JSON")
        p.set_defaults(func=func)


def _json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def run(settings: Settings, ns: argparse.Namespace, run_operation: RunOperation) -> int:
    op = "catalog." + ns.catalog_command.replace("-", "_")
    args: dict[str, Any] = {"pixel": ns.pixel}
    if ns.catalog_command == "sync":
        args["full"] = ns.full
    result = run_operation(settings, op, args)
    if "path" in result:
        result["url"] = settings.base_url + result["path"]
    if ns.json:
        _json(result)
    elif ns.catalog_command in ("sync", "push"):
        _print_run(result)
    elif ns.catalog_command == "status":
        _print_status(result)
    else:
        _print_feed(result)
    if ns.catalog_command in ("sync", "push") and result["status"] != "ok":
        return EXIT_FAILED
    return EXIT_OK


def _print_run(r: dict[str, Any]) -> None:
    if r["kind"] == "push":
        print(f"push {r['status']}: {r['changed']} uploaded, {r['deleted']} deleted, "
              f"{r['invalid']} rejected by TikTok")  # fmt: skip
    else:
        print(f"sync {r['status']}: {r['products']} products, {r['variants']} variants, "
              f"{r['changed']} changed, {r['deleted']} deleted, "
              f"{r['invalid']} invalid")  # fmt: skip
    if r["error"] and r["kind"] == "push":
        print(f"error: {r['error']} (what was not sent goes with the next push)")
    elif r["error"]:
        print(f"error: {r['error']} (the catalog was left as it was)")


def _print_status(s: dict[str, Any]) -> None:
    c = s["counts"]
    print(f"items {c['items']} ({c['valid']} valid, {c['invalid']} invalid) "
          f"in {c['products']} products")  # fmt: skip
    for r in s["last_runs"][:1]:
        print(f"last sync  {r['kind']} {r['status']} at {r['started_at']}: {r['changed']} "
              f"changed, {r['deleted']} deleted {r['error']}".rstrip())  # fmt: skip
    m = s["match_rate"]
    if m["rate"] is None:
        print("match rate: no ViewContent/AddToCart/Purchase content ids in the last 7 days")
    else:
        print(f"match rate {m['rate']:.1%} of {m['content_ids']} content ids "
              f"({m['event_rate']:.1%} of {m['events']} events), last 7 days")  # fmt: skip
        for u in m["top_unmatched"]:
            print(f"  not in the catalog: {u['content_id']} ({u['events']} events)")
    for i in s["invalid_items"]:
        print(f"invalid {i['sku_id']}: {', '.join(i['problems'])}")
    for r in s["rejected_by_tiktok"]:
        print(f"rejected by TikTok {r['sku_id']}: {r['tiktok_code']} {r['tiktok_message']}")


def _print_feed(f: dict[str, Any]) -> None:
    if f["token"]:
        print(f["url"])
        print("(shown once; only the token's hash is kept. Register this URL in TikTok's "
              "catalog manager as a scheduled data feed.)")  # fmt: skip
    else:
        print(f"{f['url']}?token=...")
        print(
            "the feed token was shown when it was created and only its hash is kept; "
            "`pixel-server catalog rotate-feed-token` issues a new URL (the old one stops)"
        )
