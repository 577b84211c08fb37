"""Order webhooks from Ecwid, BigCommerce, Shopify and WooCommerce → server-side
purchases and refunds (source ``webhook``).

* ``endpoint``: ``POST /webhooks/{platform}/{pixel_id}`` — checks, authentication,
  idempotency, answers.
* one module per platform (``shopify``, ``woocommerce``, ``ecwid``,
  ``bigcommerce``): how it signs, what a delivery holds, which orders count, how
  an order becomes events (each module's docstring states its rules);
* ``common``: the shared order model and the Purchase/Refund builders;
* ``ledger``: deliveries already handled (repeats are acknowledged, ignored);
* ``fetcher``: the durable queue and background fetch for platforms whose
  webhooks carry ids only (Ecwid, BigCommerce), and for WooCommerce refund lines;
* ``service``: the runtime part (:class:`Webhooks`) the server starts and stops.
"""

from __future__ import annotations

from pixel_server.ingest.webhooks.endpoint import WebhookIntake
from pixel_server.ingest.webhooks.fetcher import FetchPolicy
from pixel_server.ingest.webhooks.service import Webhooks

__all__ = ["FetchPolicy", "WebhookIntake", "Webhooks"]
