"""Small readers of store JSON shared by the platform sources."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pixel_server.catalog.model import Product
from pixel_server.catalog.sources.http import SourceError
from pixel_server.ingest.webhooks.common import items, obj, text

__all__ = ["items", "num", "obj", "or_gone", "stock", "text"]


def or_gone(product_id: str, read: Callable[[], Product]) -> Product:
    """The product ``read`` returns, or a hidden one when the store says 404 (deleted)."""
    try:
        return read()
    except SourceError as exc:
        if exc.reason == "not_found":
            return Product(product_id, hidden=True)
        raise


def num(value: Any) -> float | None:
    """A number as stores send it (5, "5", 5.0); None otherwise."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def stock(in_stock: bool) -> str:
    return "in stock" if in_stock else "out of stock"
