"""Put the snippet tag into a store theme, and take it out again.

Pure functions on files; the CLI and the install page call them.

- BigCommerce (Stencil): ``templates/layout/base.html``, right after
  ``{{head.scripts}}`` (or ``{{{head.scripts}}}``) when present, so BODL is
  defined before us; else before ``</head>``.
- WooCommerce (classic theme): ``footer.php``, before ``<?php wp_footer(); ?>``.
- Plain HTML: the given file, before ``</head>``.
- Ecwid and Shopify have no theme file for us: ``paste_instructions`` gives the
  text to paste into their admin.

The tag goes between marker comments, one block per pixel::

    <!-- pixel-server:begin px_abc -->
    <script>...</script>
    <!-- pixel-server:end -->

Installing is idempotent (a second install changes nothing; a changed tag
replaces the block in place) and ``uninstall`` removes exactly the bytes
``install`` added, so the file comes back byte for byte: line endings (LF or
CRLF) follow the file, indentation follows the line of the insertion point,
and a point in the middle of a line gets an inline block.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from pixel_server.atomic import replace_file
from pixel_server.snippets import SnippetSettings

__all__ = [
    "InsertionPointNotFound",
    "InstallError",
    "InstallResult",
    "LayoutNotFound",
    "install",
    "paste_instructions",
    "snippet_tag",
    "uninstall",
]

Action = Literal["inserted", "updated", "unchanged", "removed", "absent"]

THEME_FILES: Final[dict[str, str]] = {
    "bigcommerce": "templates/layout/base.html",
    "woocommerce": "footer.php",
}
PASTE_PLATFORMS: Final = ("ecwid", "shopify")

_END_MARKER: Final = "<!-- pixel-server:end -->"
_PIXEL_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TAG_PIXEL_ID = re.compile(r"/p/([A-Za-z0-9_-]{1,64})\.js\b")
_HEAD_CLOSE = re.compile(r"</head\s*>", re.IGNORECASE)
_HEAD_SCRIPTS = re.compile(r"\{\{\{?\s*head\.scripts\s*\}\}\}?")
_WP_FOOTER = re.compile(r"<\?php\s+wp_footer\s*\(\s*\)\s*;?\s*\?>", re.IGNORECASE)


class InstallError(Exception):
    """The tag cannot be installed or removed; the message says why."""


class LayoutNotFound(InstallError):
    """The theme file the platform needs is not there."""


class InsertionPointNotFound(InstallError):
    """The theme file has no place we know to put the tag."""


@dataclass(frozen=True, slots=True)
class InstallResult:
    path: Path
    action: Action

    @property
    def changed(self) -> bool:
        return self.action in ("inserted", "updated", "removed")


def snippet_tag(script_url: str) -> str:
    """The tag for a theme: a tiny ``ttq`` queue stub, then the async script.

    The stub lets theme code call ``ttq.track(...)`` before the script has
    loaded; the snippet replays the queue in order.
    """
    stub = (
        "<script>!function(w){var t=w.ttq=w.ttq||[];"
        '"page track identify holdConsent grantConsent revokeConsent".split(" ")'
        ".forEach(function(m){t[m]=t[m]||function(){t.push([m].concat([].slice.call(arguments)))}});"
        "t.instance=t.instance||function(){return t};t.load=t.load||function(){}}(window);</script>"
    )
    return f'{stub}\n<script async src="{html.escape(script_url, quote=True)}"></script>'


def install(
    platform: str,
    theme_dir: Path,
    tag: str,
    html_file: Path | None = None,
    *,
    pixel_id: str | None = None,
) -> InstallResult:
    """Insert ``tag`` into the platform's layout file between markers.

    ``pixel_id`` names the block; by default it is read from the tag's
    ``/p/<pixel_id>.js`` URL.
    """
    path = _layout(platform, theme_dir, html_file)
    pixel_id = pixel_id or _pixel_id_from(tag)
    _check_pixel_id(pixel_id)
    if platform == "woocommerce" and "<?" in tag:
        raise InstallError("the tag must not contain '<?': footer.php would run it as PHP")
    text = _read(path)
    nl = "\r\n" if "\r\n" in text else "\n"

    existing = _block(pixel_id).search(text)
    if existing:
        inline = existing.group("indent") is None
        block = _render(pixel_id, tag, existing.group("indent") or "", nl, inline)
        if existing.group(0) == block:
            return InstallResult(path, "unchanged")
        _write(path, text[: existing.start()] + block + text[existing.end() :])
        return InstallResult(path, "updated")

    at, indent, inline = _insertion_point(platform, text, path)
    block = _render(pixel_id, tag, indent, nl, inline)
    _write(path, text[:at] + block + text[at:])
    return InstallResult(path, "inserted")


def uninstall(
    platform: str,
    theme_dir: Path,
    pixel_id: str | None = None,
    html_file: Path | None = None,
) -> InstallResult:
    """Remove the block ``install`` added (every pixel's when ``pixel_id`` is None)."""
    path = _layout(platform, theme_dir, html_file)
    if pixel_id is not None:
        _check_pixel_id(pixel_id)
    text = _read(path)
    new = _block(pixel_id).sub("", text)
    if new == text:
        return InstallResult(path, "absent")
    _write(path, new)
    return InstallResult(path, "removed")


def paste_instructions(platform: str, script_url: str, settings: SnippetSettings) -> str:
    """The exact text to paste for platforms without a theme file for us.

    - Ecwid: the URL to register as the app's storefront JS file (app details →
      ``customJsUrl``; the app needs the ``customize_storefront`` scope). Ecwid
      then loads it on every storefront page. One URL per pixel, so a
      per-store (private) app.
    - Shopify: the code for Settings → Customer events → Add custom pixel. It
      subscribes to every standard event at once, and to ``form_submitted``
      (sign-up, newsletter and contact forms; nothing fired before our script
      arrives is lost), hands Shopify's ``analytics``/``browser``/``init``
      to the snippet and loads it inside the pixel sandbox.
    """
    if platform == "ecwid":
        return script_url
    if platform != "shopify":
        raise InstallError(
            f"{platform} is installed into a theme file with install(), not by pasting"
        )
    _check_pixel_id(settings.pixel_id)  # it goes into a // comment: no line breaks
    url = json.dumps(script_url).replace("<", "\\u003c").replace(">", "\\u003e")
    return (
        f"// pixel-server {settings.pixel_id}: Shopify custom pixel.\n"
        "// Shopify admin > Settings > Customer events > Add custom pixel: paste\n"
        '// this code, set Customer privacy > Permission to "Marketing", Save, Connect.\n'
        "(function (w) {\n"
        '  var q = [], s = document.createElement("script");\n'
        "  w.pixelServerShopify = {analytics: analytics, browser: browser, init: init, queue: q};\n"
        '  analytics.subscribe("all_standard_events", function (e) { q.push(e); });\n'
        '  analytics.subscribe("form_submitted", function (e) { q.push(e); });\n'
        "  s.async = true;\n"
        f"  s.src = {url};\n"
        "  document.head.appendChild(s);\n"
        "})(self);\n"
    )


def _layout(platform: str, theme_dir: Path, html_file: Path | None) -> Path:
    if platform in PASTE_PLATFORMS:
        raise InstallError(f"{platform} has no theme file for us: use paste_instructions()")
    if platform == "html":
        if html_file is None:
            raise InstallError("platform html needs the HTML file to install into")
        path = html_file if html_file.is_absolute() else Path(theme_dir) / html_file
    elif platform in THEME_FILES:
        path = Path(theme_dir) / THEME_FILES[platform]
    else:
        raise InstallError(f"unknown platform {platform!r}")
    if not path.is_file():
        hint = " (block themes have no footer.php)" if platform == "woocommerce" else ""
        raise LayoutNotFound(f"{platform}: layout file {path} not found{hint}")
    return path


def _insertion_point(platform: str, text: str, path: Path) -> tuple[int, str, bool]:
    """Where the block goes, the indentation to give it, and whether it is inline."""
    if platform == "bigcommerce" and (m := _HEAD_SCRIPTS.search(text)):
        return _after(text, m.end())
    anchor = _WP_FOOTER if platform == "woocommerce" else _HEAD_CLOSE
    m = anchor.search(text)
    if m is None:
        what = "<?php wp_footer(); ?>" if platform == "woocommerce" else "</head>"
        raise InsertionPointNotFound(f"{path}: no {what} to insert the tag before")
    return _before(text, m.start())


def _before(text: str, at: int) -> tuple[int, str, bool]:
    line_start = text.rfind("\n", 0, at) + 1
    indent = text[line_start:at]
    if indent.strip(" \t"):  # something else precedes the anchor on its line
        return at, "", True
    return line_start, indent, False


def _after(text: str, at: int) -> tuple[int, str, bool]:
    rest = re.match(r"[ \t]*\r?\n", text[at:])
    if rest is None:  # more on the anchor's line, or the end of the file
        return at, "", True
    line_start = text.rfind("\n", 0, at) + 1
    indent = re.match(r"[ \t]*", text[line_start:at]).group(0)
    return at + rest.end(), indent, False


def _render(pixel_id: str, tag: str, indent: str, nl: str, inline: bool) -> str:
    lines = [f"<!-- pixel-server:begin {pixel_id} -->", *tag.strip().splitlines(), _END_MARKER]
    if inline:  # starts mid-line; the newline after the end marker is ours
        return nl.join(lines) + nl
    return "".join(f"{indent}{line}{nl}" for line in lines)


def _block(pixel_id: str | None) -> re.Pattern[str]:
    """A whole block: the indentation before its begin marker if it starts a
    line (``indent`` is None for an inline block), through the end marker's
    line break."""
    name = re.escape(pixel_id) if pixel_id is not None else r"[A-Za-z0-9_-]+"
    return re.compile(
        rf"(?:^(?P<indent>[ \t]*))?<!-- pixel-server:begin {name} -->.*?"
        rf"{re.escape(_END_MARKER)}\r?\n",
        re.MULTILINE | re.DOTALL,
    )


def _pixel_id_from(tag: str) -> str:
    m = _TAG_PIXEL_ID.search(tag)
    if m is None:
        raise InstallError("cannot tell the pixel id from the tag: pass pixel_id=")
    return m.group(1)


def _check_pixel_id(pixel_id: str) -> None:
    if not _PIXEL_ID.fullmatch(pixel_id):
        raise InstallError(f"invalid pixel id {pixel_id!r}")


def _read(path: Path) -> str:
    # surrogateescape: bytes that are not UTF-8 come back out unchanged
    return path.read_bytes().decode("utf-8", "surrogateescape")


def _write(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permission bits."""
    data = text.encode("utf-8", "surrogateescape")
    replace_file(path, data, mode=path.stat().st_mode & 0o7777)
