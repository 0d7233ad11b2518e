"""RSS 2.0 feeds for the demo sites, with absolute links built from the serving address."""

from __future__ import annotations

from email.utils import format_datetime
from html import escape

from pipeline.demo.content import DemoSite, articles_of


def rss_feed(site: DemoSite, base_url: str) -> str:
    """The site's feed, newest item first; every link is absolute because the port varies per run."""
    articles = articles_of(site.slug)
    items = "".join(
        "<item>\n"
        f"<title>{escape(article.title)}</title>\n"
        f"<link>{escape(base_url + article.path)}</link>\n"
        f'<guid isPermaLink="true">{escape(base_url + article.path)}</guid>\n'
        f"<pubDate>{format_datetime(article.published_at)}</pubDate>\n"
        f"<category>{escape(article.section)}</category>\n"
        f"<description>{escape(article.description)}</description>\n"
        "</item>\n"
        for article in articles
    )
    last_build = format_datetime(articles[0].published_at) if articles else ""
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>{escape(site.name)}</title>\n"
        f"<link>{escape(base_url + site.home_path)}</link>\n"
        f"<description>{escape(site.tagline)}</description>\n"
        "<language>en</language>\n"
        f"<lastBuildDate>{last_build}</lastBuildDate>\n"
        f'<atom:link href="{escape(base_url + site.feed_path)}" rel="self" type="application/rss+xml"/>\n'
        f"{items}</channel>\n</rss>\n"
    )
