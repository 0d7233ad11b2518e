"""The aiohttp server that hosts every demo news site under its own path prefix."""

from __future__ import annotations

import argparse
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from html import escape

from aiohttp import web

from pipeline.demo.content import ARTICLES, SITES, DemoArticle, DemoSite
from pipeline.demo.feed import rss_feed
from pipeline.demo.layouts import article_page
from pipeline.demo.pages import home_page, index_page

_log = logging.getLogger(__name__)

_SITES_BY_SLUG = {site.slug: site for site in SITES}
_ARTICLES_BY_KEY = {(article.site, article.slug): article for article in ARTICLES}
_ROBOTS_TXT = "User-agent: *\nAllow: /\n"


def _base_url(request: web.Request) -> str:
    # The port is picked at run time, so absolute links must come from the address the client used.
    return str(request.url.origin())


def _respond(
    request: web.Request, body: str, content_type: str, last_modified: datetime | None = None
) -> web.Response:
    """A UTF-8 response with an ETag, answering 304 to a matching conditional request like real CDNs do."""
    etag = hashlib.sha256(body.encode()).hexdigest()[:24]
    response = (
        web.Response(status=304)
        if _etag_matches(request, etag)
        else web.Response(text=body, content_type=content_type, charset="utf-8")
    )
    response.etag = etag
    if last_modified is not None:
        response.last_modified = last_modified
    return response


def _etag_matches(request: web.Request, etag: str) -> bool:
    return any(candidate.value in (etag, "*") for candidate in request.if_none_match or ())


def _site(request: web.Request) -> DemoSite:
    site = _SITES_BY_SLUG.get(request.match_info["site"])
    if site is None:
        raise web.HTTPNotFound
    return site


def _article(request: web.Request) -> DemoArticle:
    article = _ARTICLES_BY_KEY.get((request.match_info["site"], request.match_info["slug"]))
    if article is None:
        raise web.HTTPNotFound
    return article


async def _index(request: web.Request) -> web.Response:
    return _respond(request, index_page(_base_url(request)), "text/html")


async def _robots(request: web.Request) -> web.Response:
    return _respond(request, _ROBOTS_TXT, "text/plain")


async def _site_root(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(_site(request).home_path)


async def _home(request: web.Request) -> web.Response:
    return _respond(request, home_page(_site(request), _base_url(request)), "text/html")


async def _feed(request: web.Request) -> web.Response:
    return _respond(request, rss_feed(_site(request), _base_url(request)), "application/rss+xml")


async def _article_page(request: web.Request) -> web.Response:
    site, article = _site(request), _article(request)
    html = article_page(site, article, _base_url(request))
    return _respond(request, html, "text/html", last_modified=article.published_at)


async def _image(request: web.Request) -> web.Response:
    site, article = _site(request), _article(request)
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="640" height="360" viewBox="0 0 640 360">'
        '<rect width="640" height="360" fill="#d9dde3"/>'
        f'<text x="24" y="340" font-family="sans-serif" font-size="20">{escape(site.name)}</text>'
        f"<title>{escape(article.title)}</title></svg>"
    )
    return _respond(request, svg, "image/svg+xml")


def build_site_app() -> web.Application:
    """One application serving every demo site, its feed and article pages, plus ``/`` and robots.txt."""
    app = web.Application()
    app.router.add_get("/", _index)
    app.router.add_get("/robots.txt", _robots)
    app.router.add_get("/{site}", _site_root)
    app.router.add_get("/{site}/", _home)
    app.router.add_get("/{site}/rss.xml", _feed)
    app.router.add_get("/{site}/news/{slug}.html", _article_page)
    app.router.add_get("/{site}/images/{slug}.svg", _image)
    return app


@asynccontextmanager
async def serve_site(host: str = "127.0.0.1", port: int = 0) -> AsyncIterator[str]:
    """Serve the demo sites in the running loop and yield the base URL; port 0 picks a free port."""
    runner = web.AppRunner(build_site_app(), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        yield f"http://{url_host}:{bound_port}"
    finally:
        await runner.cleanup()


def run_site(port: int, host: str = "127.0.0.1") -> None:
    """Serve the demo sites until interrupted."""
    web.run_app(build_site_app(), host=host, port=port, print=_log.info)


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point: ``python -m pipeline.demo.site --port 8080``."""
    parser = argparse.ArgumentParser(description="Serve the bundled demo news sites.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_site(args.port, args.host)


if __name__ == "__main__":
    main()
