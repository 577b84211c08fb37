"""The product catalog: the store's products and variants as TikTok catalog items.

* ``model``: one :class:`~pixel_server.catalog.model.Item` per variant and the
  rules that build it (plain-text descriptions, prices, options);
* ``validate``: TikTok's rules, with a closed list of reasons;
* ``store``: catalog items and sync runs in ClickHouse (all of the catalog's SQL);
* ``sources``: one reader per store platform's admin API;
* ``sync``: full pulls and single-product updates into the store;
* ``feed``: ``GET /feeds/{pixel_id}/tiktok.csv``, TikTok's scheduled data feed;
* ``webhooks``: product webhooks from the platforms;
* ``push``: uploads to TikTok's Catalog API;
* ``match``: how many of the pixel's content ids are catalog items.
"""
