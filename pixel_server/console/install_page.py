"""The install page (owner only): the snippet tag and the platform's steps."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from pixel_server.console.access import Denied, Gate
from pixel_server.console.pages import Pages
from pixel_server.install import InstallError, paste_instructions, snippet_tag
from pixel_server.snippet_route import snippet_settings


def routes(gate: Gate, pages: Pages, base_url: str) -> list[BaseRoute]:
    async def install(request: Request) -> Response:
        pixel_id = request.path_params["pixel_id"]
        try:
            access = gate.authorize(request, pixel_id, owner=True)
        except Denied as exc:
            return pages.denied(exc)
        pixel = access.pixel
        script_url = f"{base_url}/p/{pixel_id}.js"
        try:
            pasted = paste_instructions(
                pixel.platform, script_url, snippet_settings(pixel, base_url)
            )
        except (InstallError, ValueError):  # platforms with a theme file get the tag itself
            pasted = ""
        return pages.render(
            "install.html",
            **access.chrome(),
            script_tag=f'<script async src="{script_url}"></script>',
            full_tag=snippet_tag(script_url),
            pasted=pasted,
        )

    return [Route("/install/{pixel_id}", install, methods=["GET"])]
