"""Event names: TikTok's standard web events, our store events, legacy and custom names.

An event name arriving from a browser, a store back end or a webhook is turned
into its *canonical* name by :func:`canonical_event_name`:

1. A known name (TikTok standard, one of our store events, ``PageView``,
   ``Refund``, or a legacy name) is matched **case-insensitively** and returned
   in its canonical spelling, so ``purchase`` and ``Pageview`` (the name TikTok's
   own pixel uses) count where a merchant expects them to.
2. Legacy names are mapped: ``CompletePayment`` → ``Purchase`` and
   ``SubmitForm`` → ``Lead``. ``PlaceAnOrder`` and ``ClickButton`` (older names
   still seen in the wild) are accepted and kept as they are.
3. Any other name is a *custom* event and must match :data:`CUSTOM_EVENT_PATTERN`,
   ``^[A-Za-z][A-Za-z0-9_]{0,49}$``: a letter, then up to 49 letters, digits or
   underscores (so at most 50 characters, no spaces). Custom names are kept
   exactly as sent (case-sensitive).

The name as the client sent it is kept separately by the caller for audit.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

#: TikTok's 2025 list of standard web events.
STANDARD_EVENTS: Final[frozenset[str]] = frozenset(
    {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "ApplicationApproval",
        "CompleteRegistration",
        "Contact",
        "CustomizeProduct",
        "Download",
        "FindLocation",
        "InitiateCheckout",
        "Lead",
        "Purchase",
        "Schedule",
        "Search",
        "StartTrial",
        "SubmitApplication",
        "Subscribe",
        "ViewContent",
    }
)

#: Ours, not TikTok-standard: forwarded to TikTok as a custom event.
VIEW_CATEGORY: Final = "ViewCategory"
#: Page views: ``ttq.page()`` and the no-JS GIF.
PAGE_VIEW: Final = "PageView"
#: Created from store webhooks (order refunded); a custom event at TikTok.
REFUND: Final = "Refund"

#: The twelve store-facing events of the merchant FAQ, in the FAQ's order
#: ("Submit Form" is TikTok's ``Lead``).
STORE_EVENTS: Final[tuple[str, ...]] = (
    "ViewContent",
    "AddToCart",
    "InitiateCheckout",
    "Purchase",
    "Search",
    "AddPaymentInfo",
    "CompleteRegistration",
    "Contact",
    "Lead",
    "AddToWishlist",
    "Subscribe",
    VIEW_CATEGORY,
)

#: Renamed TikTok events: old name → current name.
LEGACY_EVENTS: Final[Mapping[str, str]] = MappingProxyType(
    {"CompletePayment": "Purchase", "SubmitForm": "Lead"}
)

#: Older TikTok names still seen in the wild: accepted and kept unchanged.
LEGACY_KEPT_EVENTS: Final[frozenset[str]] = frozenset({"PlaceAnOrder", "ClickButton"})

#: Every name that is not a custom event.
KNOWN_EVENTS: Final[frozenset[str]] = (
    STANDARD_EVENTS
    | frozenset(STORE_EVENTS)
    | {PAGE_VIEW, REFUND}
    | LEGACY_EVENTS.keys()
    | LEGACY_KEPT_EVENTS
)

#: Custom event names: a letter, then up to 49 letters, digits or underscores.
CUSTOM_EVENT_PATTERN: Final = r"^[A-Za-z][A-Za-z0-9_]{0,49}$"
_CUSTOM_RE: Final = re.compile(CUSTOM_EVENT_PATTERN)


def _build_canonical() -> dict[str, str]:
    """Lowercased known name → canonical name (legacy names resolved)."""
    return {name.lower(): LEGACY_EVENTS.get(name, name) for name in KNOWN_EVENTS}


_CANONICAL_BY_LOWER: Final = _build_canonical()
# Exact spellings first: the common case costs one dict lookup.
_CANONICAL_EXACT: Final = {name: LEGACY_EVENTS.get(name, name) for name in KNOWN_EVENTS}


def canonical_event_name(name: str) -> str:
    """Return the canonical name for ``name``; raise ValueError if it is not acceptable."""
    canonical = _CANONICAL_EXACT.get(name)
    if canonical is not None:
        return canonical
    canonical = _CANONICAL_BY_LOWER.get(name.lower())
    if canonical is not None:
        return canonical
    # fullmatch, not match: `$` alone would let a trailing newline through.
    if _CUSTOM_RE.fullmatch(name) is None:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ValueError(
            f"invalid event name {shown!r}: use a standard event such as 'Purchase' "
            f"or a custom name matching {CUSTOM_EVENT_PATTERN}"
        )
    return name


def is_tiktok_standard(name: str) -> bool:
    """True if ``name`` (canonical spelling) is in TikTok's 2025 standard web events.

    ``ViewCategory``, ``PageView``, ``Refund``, ``PlaceAnOrder``, ``ClickButton``
    and custom names are not: they are sent to TikTok as custom events.
    """
    return name in STANDARD_EVENTS


def is_custom(name: str) -> bool:
    """True if the canonical ``name`` is a merchant's custom event (not a known name)."""
    return name not in KNOWN_EVENTS
