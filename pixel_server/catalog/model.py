"""The catalog model: one :class:`Item` per variant, as TikTok's catalog wants it.

* ``sku_id`` is the id the storefront snippet sends as ``content_id`` for that
  variant (its SKU, else the platform's variant id; a product without variants
  is one item: its SKU, else the product id), so Dynamic Showcase Ads can match
  pixel events to items. ``item_group_id`` is the platform's product id.
* Text is plain: :func:`plain_text` turns the store's HTML description into
  text (block elements become line breaks, entities decoded, whitespace
  collapsed, control characters and emoji dropped) cut to TikTok's limits on a
  word boundary.
* Prices are :class:`~decimal.Decimal` amounts in ``currency``. When a store
  shows a higher "compare at" price, ``price`` is that and ``sale_price`` the
  price the shopper pays (TikTok shows the saving).
* Options: the variant's option values by name (``color``, ``size``,
  ``material``, ``pattern``, ``gender`` when the store names them so, in a few
  languages and spellings), and ``options`` as shoppers read them (``Red / M``).

Sources build items with :func:`make_item`, which applies these rules once for
all four platforms.
"""

from __future__ import annotations

import functools
import hashlib
import html
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from html.parser import HTMLParser
from typing import Any, Final

TITLE_MAX: Final = 150
DESCRIPTION_MAX: Final = 5000
ADDITIONAL_IMAGES_MAX: Final = 10
AVAILABILITY: Final = ("in stock", "available for order", "preorder", "out of stock",
                       "discontinued")  # fmt: skip
CONDITIONS: Final = ("new", "refurbished", "used")
# Option names as stores spell them → TikTok's attribute.
OPTION_FIELDS: Final[dict[str, str]] = {
    "color": "color", "colour": "color", "farbe": "color", "couleur": "color",
    "size": "size", "größe": "size", "groesse": "size", "taille": "size",
    "material": "material", "fabric": "material",
    "pattern": "pattern", "print": "pattern",
    "gender": "gender", "sex": "gender",
}  # fmt: skip
_GENDERS: Final = {"male": "male", "men": "male", "man": "male", "female": "female",
                   "women": "female", "woman": "female", "unisex": "unisex"}  # fmt: skip
_BLOCKS: Final = frozenset({"p", "div", "br", "li", "ul", "ol", "tr", "h1", "h2", "h3", "h4",
                            "h5", "h6", "table", "section", "article", "blockquote"})  # fmt: skip
_SKIPPED: Final = frozenset({"script", "style", "template"})
_SPACES: Final = re.compile(r"[ \t\r\f\v\u00a0]+")
_LINES: Final = re.compile(r"\s*\n\s*")


@dataclass(frozen=True, slots=True)
class Item:
    sku_id: str
    item_group_id: str
    title: str
    description: str
    brand: str
    link: str
    image_link: str
    price: Decimal | None
    currency: str
    availability: str
    condition: str = "new"
    sale_price: Decimal | None = None
    additional_image_links: tuple[str, ...] = ()
    product_type: str = ""
    google_product_category: str = ""
    color: str = ""
    size: str = ""
    material: str = ""
    pattern: str = ""
    gender: str = ""
    options: str = ""  # "Red / M"
    gtin: str = ""
    mpn: str = ""

    def content_hash(self) -> str:
        """Changes exactly when a field TikTok sees changes."""
        digest = hashlib.sha256()
        for name in _FIELD_NAMES:
            value = getattr(self, name)
            digest.update(repr(value).encode())
            digest.update(b"\x1f")
        return digest.hexdigest()[:32]


_FIELD_NAMES: Final = tuple(f.name for f in fields(Item))


@dataclass(frozen=True, slots=True)
class Product:
    """One product as a source read it: its items, or none when it is hidden."""

    product_id: str
    items: tuple[Item, ...] = ()
    hidden: bool = False  # hidden, draft, disabled: not in the catalog


@dataclass(slots=True)
class Draft:
    """What a source knows about one variant, before the shared rules apply."""

    sku_id: str
    item_group_id: str
    title: str
    description_html: str
    brand: str
    link: str
    images: Sequence[str]
    price: Any
    currency: str
    availability: str
    compare_at: Any = None
    sale_price: Any = None
    options: Sequence[tuple[str, str]] = ()
    condition: str = "new"
    product_type: str = ""
    gtin: str = ""
    mpn: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def make_item(d: Draft) -> Item:
    price = amount(d.price)
    sale = amount(d.sale_price)
    compare = amount(d.compare_at)
    if compare is not None and price is not None and compare > price:
        price, sale = compare, price
    if sale is not None and (price is None or sale >= price or sale <= 0):
        sale = None
    images = [u for u in dict.fromkeys(i.strip() for i in d.images if i and i.strip())]
    attributes = option_fields(d.options)
    title = plain_text(d.title, TITLE_MAX, single_line=True)
    return Item(
        sku_id=clean_id(d.sku_id),
        item_group_id=clean_id(d.item_group_id),
        title=title,
        description=plain_text(d.description_html, DESCRIPTION_MAX) or title,
        brand=plain_text(d.brand, 100, single_line=True),
        link=d.link.strip(),
        image_link=images[0] if images else "",
        additional_image_links=tuple(images[1 : 1 + ADDITIONAL_IMAGES_MAX]),
        price=price,
        sale_price=sale,
        currency=d.currency.strip().upper(),
        availability=d.availability,
        condition=d.condition.strip().lower() or "new",
        product_type=plain_text(d.product_type, 750, single_line=True),
        options=" / ".join(v for _, v in d.options if v),
        gtin=d.gtin.strip(),
        mpn=d.mpn.strip(),
        **attributes,
    )


def amount(value: Any) -> Decimal | None:
    """A price as stores send it ("59.90", 59.9, {"amount": "59.90"}); None if absent."""
    if isinstance(value, dict):
        value = value.get("amount")
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d.quantize(Decimal("0.01")) if d.is_finite() else None


def option_fields(options: Iterable[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in options:
        key = OPTION_FIELDS.get(name.strip().lower())
        if key and value and key not in out:
            v = plain_text(value, 100, single_line=True)
            out[key] = _GENDERS.get(v.lower(), v.lower()) if key == "gender" else v
    return out


def clean_id(value: Any) -> str:
    text = "" if value is None or isinstance(value, bool) else str(value)
    return "".join(ch for ch in text.strip() if unicodedata.category(ch)[0] != "C")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skip += 1
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def _allowed(ch: str) -> bool:
    if ch == "\n":
        return True
    cat = unicodedata.category(ch)
    # Control/format/private characters and symbols outside the BMP (emoji) go.
    return cat[0] != "C" and not (cat == "So" and ord(ch) > 0x2000)


def plain_text(value: Any, limit: int, *, single_line: bool = False) -> str:
    """Plain text from HTML (or text), at most ``limit`` characters, cut at a word."""
    if not isinstance(value, str) or not value:
        return ""
    return _plain_text(value, limit, single_line)


# A product's variants share its description: parse it once, not once per variant.
@functools.lru_cache(maxsize=1024)
def _plain_text(value: str, limit: int, single_line: bool) -> str:
    if "<" in value:
        parser = _Text()
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    else:
        text = html.unescape(value)
    text = "".join(ch for ch in unicodedata.normalize("NFC", text) if _allowed(ch))
    text = _LINES.sub("\n", _SPACES.sub(" ", text)).strip()
    if single_line:
        text = text.replace("\n", " ")
    if len(text) > limit:
        cut = text[: limit - 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > limit // 2 else cut).rstrip() + "…"
    return text
