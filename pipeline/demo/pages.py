"""HTML pages shared by every demo site: document shell, article metadata, home pages and the index."""

from __future__ import annotations

from html import escape

from pipeline.demo.content import SITES, DemoArticle, DemoSite, articles_of


def document(title: str, head_extra: str, body: str, body_class: str = "") -> str:
    """A complete HTML5 document; ``head_extra`` and ``body`` must already be escaped markup."""
    body_attr = f' class="{escape(body_class)}"' if body_class else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n{head_extra}</head>\n<body{body_attr}>\n{body}\n</body>\n</html>\n"
    )


def image_path(site: DemoSite, article: DemoArticle) -> str:
    return f"/{site.slug}/images/{article.slug}.svg"


def feed_link(site: DemoSite, base_url: str) -> str:
    """The ``<link rel=alternate>`` that lets crawlers discover a site's feed from any of its pages."""
    return (
        f'<link rel="alternate" type="application/rss+xml" title="{escape(site.name)}" '
        f'href="{escape(base_url + site.feed_path)}">\n'
    )


def article_meta(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    """The head metadata real news pages carry: description, Open Graph, article times, canonical."""
    url = base_url + article.path
    pairs = (
        ("name", "description", article.description),
        ("name", "author", article.author),
        ("property", "og:type", "article"),
        ("property", "og:title", article.title),
        ("property", "og:site_name", site.name),
        ("property", "og:url", url),
        ("property", "og:description", article.description),
        ("property", "og:image", base_url + image_path(site, article)),
        ("property", "article:published_time", article.published),
        ("property", "article:section", article.section),
    )
    metas = "".join(f'<meta {kind}="{key}" content="{escape(value)}">\n' for kind, key, value in pairs)
    return f'{metas}<link rel="canonical" href="{escape(url)}">\n{feed_link(site, base_url)}'


def home_page(site: DemoSite, base_url: str) -> str:
    """A section front: the site's articles, newest first, each with its standfirst."""
    items = "".join(
        f'<li class="front-item"><h2><a href="{escape(article.path)}">{escape(article.title)}</a></h2>'
        f'<p class="front-dek">{escape(article.description)}</p>'
        f'<time datetime="{escape(article.published)}">{escape(article.published_at.strftime("%d %b %Y"))}'
        "</time></li>\n"
        for article in articles_of(site.slug)
    )
    menu = "".join(
        f'<li><a href="{escape(site.home_path)}">{escape(name)}</a></li>' for name in site.sections
    )
    body = (
        f'<header class="front-header"><h1>{escape(site.name)}</h1><p>{escape(site.tagline)}</p></header>\n'
        f'<nav class="front-nav"><ul>{menu}</ul></nav>\n'
        f'<main class="front-page"><ul class="front-list">\n{items}</ul></main>\n'
        f"<footer><p>{escape(site.copyright)}</p></footer>"
    )
    return document(f"{site.name} — {site.tagline}", feed_link(site, base_url), body, f"front {site.layout}")


def index_page(base_url: str) -> str:
    """The server's root: every site with its home page and feed."""
    rows = "".join(
        f'<li><a href="{escape(site.home_path)}">{escape(site.name)}</a> — {escape(site.tagline)} '
        f'(<a href="{escape(base_url + site.feed_path)}">RSS feed</a>)</li>\n'
        for site in SITES
    )
    links = "".join(feed_link(site, base_url) for site in SITES)
    body = f"<h1>newsfeed demo news sites</h1>\n<ul>\n{rows}</ul>"
    return document("newsfeed demo news sites", links, body)
