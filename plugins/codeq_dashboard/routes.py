"""The dashboard's routes and files (imported only when a server builds its app)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from codeq.core.config import Settings
from codeq.devkeys import mint_token
from codeq.server.responses import JSON

STATIC_DIR = Path(__file__).parent / "static"
#: Lifetime of a dev token handed to the page; the page asks again on a 401.
DEV_TOKEN_TTL = 8 * 3600

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
}

#: Everything the page loads comes from this server; data is only ever fetched.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}

_LOOPBACK_HOSTS = {"localhost", "[::1]"}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    media_type: str
    etag: str


def load_assets(folder: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file of ``folder`` by name, read once (they are a few kilobytes)."""
    assets = {}
    for path in sorted(folder.iterdir()):
        media_type = _TYPES.get(path.suffix)
        if path.is_file() and media_type:
            body = path.read_bytes()
            etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
            assets[path.name] = Asset(body, media_type, etag)
    return assets


def _serve(asset: Asset, request: Request) -> Response:
    # no-cache: the browser revalidates every time (a cheap 304), so an upgraded
    # server never runs against a stale script.
    headers = {"ETag": asset.etag, "Cache-Control": "no-cache", **SECURITY_HEADERS}
    if asset.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def is_loopback_request(request: Request) -> bool:
    """The TCP peer is a loopback address, no proxy says it forwarded the request, and
    the Host header names this machine (which stops DNS-rebinding pages)."""
    if request.client is None:
        return False
    try:
        if not ipaddress.ip_address(request.client.host).is_loopback:
            return False
    except ValueError:
        return False
    if "x-forwarded-for" in request.headers or "forwarded" in request.headers:
        return False
    host = request.headers.get("host", "").strip().lower()
    name = host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
    if name in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def build_router(settings: Settings, assets: dict[str, Asset] | None = None) -> APIRouter:
    """The dashboard's routes, for ``settings``."""
    files = load_assets() if assets is None else assets
    index = files["index.html"]
    router = APIRouter(include_in_schema=False)

    @router.get("/ui")
    async def ui_redirect() -> Response:
        return RedirectResponse("ui/", status_code=307)

    @router.get("/ui/")
    async def ui_index(request: Request) -> Response:
        return _serve(index, request)

    @router.get("/ui/assets/{name}")
    async def ui_asset(name: str, request: Request) -> Response:
        asset = files.get(name)
        if asset is None:
            return JSON({"error": f"the dashboard has no file {name!r}"}, status_code=404)
        return _serve(asset, request)

    @router.get("/ui/dev-token")
    async def ui_dev_token(request: Request) -> Response:
        if not settings.dev or not is_loopback_request(request):
            return JSON({"error": "no dev token here: the server is not in dev mode or the "
                                  "request did not come from this machine"},
                        status_code=404, headers={"Cache-Control": "no-store"})
        token = await run_in_threadpool(mint_token, settings.data_path, "admin",
                                        sub="dashboard", ttl=DEV_TOKEN_TTL)
        return JSON({"token": token, "role": "admin", "expiresIn": DEV_TOKEN_TTL},
                    headers={"Cache-Control": "no-store"})

    return router
