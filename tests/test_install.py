"""Installing the snippet tag into theme files, and taking it out again."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pixel_server.install import (
    InsertionPointNotFound,
    InstallError,
    LayoutNotFound,
    install,
    paste_instructions,
    snippet_tag,
    uninstall,
)
from pixel_server.snippets import SnippetSettings

URL = "https://px.example.com/p/px_abc.js"
TAG = snippet_tag(URL)

BIGCOMMERCE_BASE = """<!DOCTYPE html>
<html class="no-js" lang="{{ locale_name }}">
    <head>
        <title>{{ head.title }}</title>
        {{{ resourceHints }}}
        {{{ head.meta_tags }}}
        {{{head.scripts}}}
        {{~inject 'zoomSize' theme_settings.zoom_size}}
    </head>
    <body>
        {{{ body }}}
    </body>
</html>
"""

WOO_FOOTER = """    </div><!-- #content -->
    <footer id="colophon" class="site-footer">
        <?php get_template_part( 'template-parts/footer/site-info' ); ?>
    </footer>
</div><!-- #page -->

    <?php wp_footer(); ?>

</body>
</html>
"""

PLAIN_HTML = """<!doctype html>
<html>
  <head>
    <meta charset="utf-8">
    <title>Shop</title>
  </head>
  <body><h1>Shop</h1></body>
</html>
"""


def theme(tmp_path: Path, relative: str, content: str | bytes) -> Path:
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def variants(text: str) -> list[bytes]:
    """LF, CRLF, and both without the trailing newline."""
    crlf = text.replace("\n", "\r\n")
    return [v.encode() for v in (text, crlf, text.rstrip("\n"), crlf.rstrip("\r\n"))]


@pytest.mark.parametrize("original", variants(BIGCOMMERCE_BASE))
def test_bigcommerce_goes_right_after_head_scripts_and_comes_out_exactly(
    tmp_path: Path, original: bytes
) -> None:
    path = theme(tmp_path, "templates/layout/base.html", original)

    first = install("bigcommerce", tmp_path, TAG)
    installed = path.read_bytes()
    second = install("bigcommerce", tmp_path, TAG)

    assert (first.action, first.changed) == ("inserted", True)
    assert (second.action, second.changed) == ("unchanged", False)
    assert path.read_bytes() == installed  # installing twice = once
    nl = b"\r\n" if b"\r\n" in original else b"\n"
    assert (
        b"{{{head.scripts}}}" + nl + b"        <!-- pixel-server:begin px_abc -->" + nl
    ) in installed
    assert installed.count(b"pixel-server:begin") == 1
    assert URL.encode() in installed
    if nl == b"\r\n":  # no bare LF slipped into a CRLF file
        assert b"\n" not in installed.replace(b"\r\n", b"")

    assert uninstall("bigcommerce", tmp_path, "px_abc").action == "removed"
    assert path.read_bytes() == original


def test_bigcommerce_without_head_scripts_goes_before_head_close(tmp_path: Path) -> None:
    original = BIGCOMMERCE_BASE.replace("        {{{head.scripts}}}\n", "")
    path = theme(tmp_path, "templates/layout/base.html", original)

    install("bigcommerce", tmp_path, TAG)

    text = path.read_text()
    assert text.index("pixel-server:end") < text.index("</head>")
    assert "\n    <!-- pixel-server:begin px_abc -->\n" in text  # indented like </head>'s line
    uninstall("bigcommerce", tmp_path)
    assert path.read_text() == original


@pytest.mark.parametrize(
    "call",
    [
        "<?php wp_footer(); ?>",
        "<?php wp_footer() ?>",
        "<?php  wp_footer ( ) ;  ?>",
        "<?php\twp_footer();?>",
        "<?PHP WP_Footer(); ?>",
        "<?php\n    wp_footer();\n?>",
    ],
)
@pytest.mark.parametrize("crlf", [False, True])
def test_woocommerce_goes_before_wp_footer_in_any_spelling(
    tmp_path: Path, call: str, crlf: bool
) -> None:
    text = WOO_FOOTER.replace("<?php wp_footer(); ?>", call)
    original = (text.replace("\n", "\r\n") if crlf else text).encode()
    path = theme(tmp_path, "footer.php", original)

    install("woocommerce", tmp_path, TAG)
    install("woocommerce", tmp_path, TAG)

    installed = path.read_bytes().decode()
    assert installed.count("pixel-server:begin px_abc") == 1
    assert installed.index("pixel-server:end") < installed.lower().index("wp_footer")
    assert "    <!-- pixel-server:begin px_abc -->" in installed  # the call's indentation
    uninstall("woocommerce", tmp_path, "px_abc")
    assert path.read_bytes() == original


def test_html_file_relative_to_the_theme_dir(tmp_path: Path) -> None:
    path = theme(tmp_path, "site/index.html", PLAIN_HTML)

    result = install("html", tmp_path, TAG, Path("site/index.html"))

    assert result.path == path
    assert path.read_text().index("pixel-server:end") < path.read_text().index("</head>")
    assert uninstall("html", tmp_path, html_file=Path("site/index.html")).action == "removed"
    assert path.read_text() == PLAIN_HTML


@pytest.mark.parametrize(
    "original",
    [
        b"<html><head><title>x</title></head><body></body></html>",  # one line, no newline
        b"<html><head><title>x</title>   </HEAD >\n<body></body></html>\n",
        b"<html><head>\r\n<meta> </head></html>",
    ],
)
def test_mid_line_insertion_point_gets_an_inline_block(tmp_path: Path, original: bytes) -> None:
    path = theme(tmp_path, "index.html", original)

    install("html", tmp_path, TAG, path)
    installed = path.read_bytes()
    install("html", tmp_path, TAG, path)

    assert path.read_bytes() == installed
    assert installed.index(b"pixel-server:end") < installed.lower().index(b"</head")
    uninstall("html", tmp_path, html_file=path)
    assert path.read_bytes() == original


def test_head_scripts_at_the_very_end_of_a_file(tmp_path: Path) -> None:
    original = b"<head>{{head.scripts}}"
    path = theme(tmp_path, "templates/layout/base.html", original)

    install("bigcommerce", tmp_path, TAG)

    assert path.read_bytes().startswith(b"<head>{{head.scripts}}<!-- pixel-server:begin px_abc")
    uninstall("bigcommerce", tmp_path)
    assert path.read_bytes() == original


def test_bytes_that_are_not_utf8_survive(tmp_path: Path) -> None:
    original = "<html><head>\n<title>Caf\xe9</title>\n</head></html>\n".encode("latin-1")
    path = theme(tmp_path, "index.html", original)

    install("html", tmp_path, TAG, path)
    uninstall("html", tmp_path, html_file=path)

    assert path.read_bytes() == original


def test_a_changed_tag_replaces_the_block_in_place(tmp_path: Path) -> None:
    path = theme(tmp_path, "templates/layout/base.html", BIGCOMMERCE_BASE)
    install("bigcommerce", tmp_path, TAG)

    new_url = "https://collect.example.org/p/px_abc.js"
    result = install("bigcommerce", tmp_path, snippet_tag(new_url))

    text = path.read_text()
    assert result.action == "updated"
    assert text.count("pixel-server:begin px_abc") == 1
    assert new_url in text and URL not in text
    uninstall("bigcommerce", tmp_path, "px_abc")
    assert path.read_text() == BIGCOMMERCE_BASE


def test_blocks_of_two_pixels_come_out_one_at_a_time(tmp_path: Path) -> None:
    path = theme(tmp_path, "index.html", PLAIN_HTML)
    install("html", tmp_path, TAG, path)
    install("html", tmp_path, snippet_tag("https://px.example.com/p/px_other.js"), path)

    uninstall("html", tmp_path, "px_abc", path)

    assert "px_other" in path.read_text() and "px_abc" not in path.read_text()
    uninstall("html", tmp_path, "px_other", path)
    assert path.read_text() == PLAIN_HTML


def test_uninstalling_what_is_not_there_changes_nothing(tmp_path: Path) -> None:
    path = theme(tmp_path, "index.html", PLAIN_HTML)

    result = uninstall("html", tmp_path, "px_abc", path)

    assert (result.action, result.changed) == ("absent", False)
    assert path.read_text() == PLAIN_HTML


def test_missing_layout_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LayoutNotFound, match=r"templates/layout/base\.html not found"):
        install("bigcommerce", tmp_path, TAG)
    with pytest.raises(LayoutNotFound, match=r"block themes have no footer\.php"):
        install("woocommerce", tmp_path, TAG)
    with pytest.raises(LayoutNotFound, match=r"missing\.html"):
        uninstall("html", tmp_path, html_file=Path("missing.html"))


def test_missing_insertion_point_is_a_clear_error(tmp_path: Path) -> None:
    theme(tmp_path, "footer.php", "<footer></footer>\n</body>\n")
    theme(tmp_path, "index.html", "<html><body>no head here</body></html>")

    with pytest.raises(InsertionPointNotFound, match=r"no <\?php wp_footer\(\); \?>"):
        install("woocommerce", tmp_path, TAG)
    with pytest.raises(InsertionPointNotFound, match="no </head>"):
        install("html", tmp_path, TAG, tmp_path / "index.html")
    assert (tmp_path / "footer.php").read_text() == "<footer></footer>\n</body>\n"


def test_other_mistakes_are_install_errors(tmp_path: Path) -> None:
    theme(tmp_path, "index.html", PLAIN_HTML)
    theme(tmp_path, "footer.php", WOO_FOOTER)

    with pytest.raises(InstallError, match="paste_instructions"):
        install("shopify", tmp_path, TAG)
    with pytest.raises(InstallError, match="needs the HTML file"):
        install("html", tmp_path, TAG)
    with pytest.raises(InstallError, match="pixel id"):
        install("html", tmp_path, "<script src='/elsewhere.js'></script>", tmp_path / "index.html")
    with pytest.raises(InstallError, match="invalid pixel id"):
        install("html", tmp_path, TAG, tmp_path / "index.html", pixel_id="px --> <b>")
    with pytest.raises(InstallError, match="run it as PHP"):
        install("woocommerce", tmp_path, "<?php evil(); ?>", pixel_id="px_abc")
    with pytest.raises(InstallError, match="unknown platform"):
        install("wix", tmp_path, TAG)


def test_snippet_tag_escapes_the_url_and_queues_early_calls() -> None:
    tag = snippet_tag('https://px.example.com/p/px_abc.js?a=1&b="2"')

    assert 'src="https://px.example.com/p/px_abc.js?a=1&amp;b=&quot;2&quot;"' in tag
    assert "<script async" in tag
    assert "t.push([m]" in tag  # the ttq queue stub comes first


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40),
    indent=st.sampled_from(["", "  ", "\t", "x "]),
    after=st.text(st.characters(blacklist_categories=["Cs"]), max_size=40),
)
def test_any_file_round_trips(
    tmp_path: Path, newline: str, before: str, indent: str, after: str
) -> None:
    original = (before + newline + indent + "</head>" + after).encode()
    path = theme(tmp_path, "any.html", original)

    install("html", tmp_path, TAG, path)
    installed = path.read_bytes()
    install("html", tmp_path, TAG, path)
    assert path.read_bytes() == installed
    uninstall("html", tmp_path, html_file=path)

    assert path.read_bytes() == original


def test_ecwid_paste_text_is_the_script_url() -> None:
    settings = SnippetSettings("px_abc", "https://px.example.com", "ecwid")

    assert paste_instructions("ecwid", URL, settings) == URL


def test_shopify_paste_text_loads_the_script_in_the_pixel_sandbox() -> None:
    settings = SnippetSettings("px_abc", "https://px.example.com", "shopify")
    hostile = 'https://px.example.com/p/px_abc.js?"</script><script>alert(1)//'

    code = paste_instructions("shopify", hostile, settings)

    assert 'analytics.subscribe("all_standard_events"' in code
    assert "w.pixelServerShopify = {analytics: analytics, browser: browser, init: init" in code
    assert '\\"\\u003c/script\\u003e\\u003cscript\\u003ealert(1)//"' in code
    assert "</script>" not in code
    with pytest.raises(InstallError, match="install\\(\\)"):
        paste_instructions("bigcommerce", URL, settings)
    with pytest.raises(InstallError, match="invalid pixel id"):
        paste_instructions("shopify", URL, SnippetSettings("px\nalert(1)", "https://x.example"))
