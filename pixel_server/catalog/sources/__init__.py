"""One catalog source per store platform, each reading the store's admin API.

A source has two operations (:class:`Source`):

* ``pages()``: a full pull, one API page of :class:`~pixel_server.catalog.model.Product`
  at a time (hidden, draft and disabled products come back ``hidden``, so the
  sync knows they are not to be listed);
* ``product(product_id)``: one product, for a webhook (a product the store no
  longer has comes back hidden).

Each platform module's docstring says how its fields become items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from pixel_server.catalog.model import Product
from pixel_server.catalog.sources.http import Pacing, SourceError
from pixel_server.pixel import Pixel


class Source(Protocol):
    def pages(self) -> Iterator[list[Product]]: ...
    def product(self, product_id: str) -> Product: ...
    def close(self) -> None: ...


SourceFactory = Callable[[Pixel, Pacing | None], Source]


def for_pixel(pixel: Pixel, pacing: Pacing | None = None) -> Source:
    """The source for the pixel's platform, configured from its store settings."""
    from pixel_server.catalog.sources import bigcommerce, ecwid, shopify, woocommerce

    factories: dict[str, SourceFactory] = {
        "ecwid": ecwid.EcwidSource,
        "bigcommerce": bigcommerce.BigCommerceSource,
        "shopify": shopify.ShopifySource,
        "woocommerce": woocommerce.WooCommerceSource,
    }
    factory = factories.get(pixel.platform)
    if factory is None:
        raise SourceError("not_configured", f"platform {pixel.platform} has no catalog API to read")
    if not pixel.store_id or not pixel.store_api_token:
        raise SourceError(
            "not_configured",
            "the catalog needs the pixel's store: set --store-id and --store-api-token "
            "with `pixel-server pixel update`",
        )
    return factory(pixel, pacing)


__all__ = ["Pacing", "Source", "SourceError", "for_pixel"]
