"""A store's catalog in one neutral shape, for the four catalog stand-ins.

:func:`seed` gives the seed's sweatshirt (red and blue, sizes S to XXL: 10
variants; blue XXL out of stock; red L without its own price), a mug without
variants, a hidden product, and ``fillers`` plain products so that a full pull
needs several pages. Each stand-in renders these in its platform's JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

SHOP = "https://shop.example.com"
CDN = "https://cdn.example.com"
SWEATSHIRT_ID = 101
MUG_ID = 102
HIDDEN_ID = 103
COLORS = ("Red", "Blue")
SIZES = ("S", "M", "L", "XL", "XXL")
OUT_OF_STOCK_SKU = "SWEAT-BLUE-XXL"
NO_PRICE_SKU = "SWEAT-RED-L"


@dataclass
class SeedVariant:
    id: int
    sku: str
    options: list[tuple[str, str]]
    price: Decimal | None  # None: the product's
    stock: int = 10
    image: str = ""


@dataclass
class SeedProduct:
    id: int
    name: str
    sku: str
    price: Decimal
    description: str = "<p>A fine product.</p>"
    brand: str = "Acme"
    compare_at: Decimal | None = None
    stock: int = 10
    visible: bool = True
    variants: list[SeedVariant] = field(default_factory=list)
    images: list[str] = field(default_factory=list)
    product_type: str = "Apparel"

    @property
    def slug(self) -> str:
        return self.name.lower().replace(" ", "-")

    @property
    def url(self) -> str:
        return f"{SHOP}/products/{self.slug}"

    def sku_ids(self) -> list[str]:
        return [v.sku for v in self.variants] if self.variants else [self.sku]


def sweatshirt() -> SeedProduct:
    variants = []
    for c, color in enumerate(COLORS):
        for s, size in enumerate(SIZES):
            sku = f"SWEAT-{color.upper()}-{size}"
            variants.append(
                SeedVariant(
                    id=1000 + c * 10 + s,
                    sku=sku,
                    options=[("Color", color), ("Size", size)],
                    price=None if sku == NO_PRICE_SKU else Decimal("49.90") + s,
                    stock=0 if sku == OUT_OF_STOCK_SKU else 5,
                    image=f"{CDN}/sweatshirt-{color.lower()}.jpg",
                )
            )
    return SeedProduct(
        id=SWEATSHIRT_ID,
        name="Cozy Sweatshirt",
        sku="SWEAT",
        price=Decimal("45.00"),
        description="<p>Warm <b>cotton</b> sweatshirt.</p><ul><li>Soft</li><li>Roomy</li></ul>",
        variants=variants,
        images=[f"{CDN}/sweatshirt.jpg", f"{CDN}/sweatshirt-back.jpg"],
    )


def seed(fillers: int = 60) -> list[SeedProduct]:
    products = [
        sweatshirt(),
        SeedProduct(
            MUG_ID,
            "Coffee Mug",
            "MUG-1",
            Decimal("12.00"),
            images=[f"{CDN}/mug.jpg"],
            compare_at=Decimal("15.00"),
            product_type="Kitchen",
        ),
        SeedProduct(
            HIDDEN_ID,
            "Secret Prototype",
            "PROTO-1",
            Decimal("99.00"),
            visible=False,
            images=[f"{CDN}/proto.jpg"],
        ),
    ]
    for i in range(fillers):
        products.append(
            SeedProduct(
                200 + i,
                f"Sticker {i:05d}",
                f"STICKER-{i:05d}",
                Decimal("3.50"),
                images=[f"{CDN}/sticker-{i}.jpg"],
                product_type="Stickers",
            )
        )
    return products


def bulk(products: int, variants_each: int) -> list[SeedProduct]:
    """A large catalog for the benchmark: ``products`` x ``variants_each`` items."""
    out = []
    for p in range(products):
        out.append(
            SeedProduct(
                10_000 + p,
                f"Product {p:06d}",
                f"P{p:06d}",
                Decimal("20.00"),
                description="<p>" + "Fine fabric, well made. " * 20 + "</p>",
                images=[f"{CDN}/p{p}.jpg"],
                variants=[
                    SeedVariant(
                        1_000_000 + p * variants_each + v,
                        f"P{p:06d}-{v:02d}",
                        [("Size", f"S{v}")],
                        None if v % 3 else Decimal("21.00"),
                    )
                    for v in range(variants_each)
                ],
            )
        )
    return out
