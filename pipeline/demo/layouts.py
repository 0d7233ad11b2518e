"""Article page layouts; each demo site has its own markup, as real publishers do."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from html import escape

from pipeline.demo.content import DemoArticle, DemoSite, Layout, Teaser
from pipeline.demo.pages import article_meta, document, image_path

IST = timezone(timedelta(hours=5, minutes=30), "IST")


def _paragraphs(texts: tuple[str, ...]) -> str:
    return "".join(f"<p>{escape(text)}</p>\n" for text in texts)


def _menu(site: DemoSite) -> str:
    return "".join(
        f'<li><a href="{escape(site.home_path)}">{escape(name)}</a></li>' for name in site.sections
    )


def _teasers(site: DemoSite, teasers: tuple[Teaser, ...], headline_tag: str) -> str:
    # Sidebar links point to the section front: the teased stories are not part of the demo corpus.
    href = escape(site.home_path)
    return "".join(
        f'<div class="teaser"><{headline_tag}><a href="{href}">{escape(teaser.headline)}</a></{headline_tag}>'
        + (f"<p>{escape(teaser.blurb)}</p>" if teaser.blurb else "")
        + "</div>\n"
        for teaser in teasers
    )


def _footer_links(site: DemoSite) -> str:
    return " | ".join(
        f'<a href="{escape(site.home_path)}">{escape(label)}</a>' for label in site.footer_links
    )


def _portal(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    """Devdiscourse-style: top menu, article column, right-hand sidebar, heavy footer."""
    home = escape(site.home_path)
    stamp = escape(article.published_at.astimezone(IST).strftime("%d-%m-%Y %H:%M IST"))
    when = f'<time datetime="{escape(article.published)}">{stamp}</time>'
    standfirst = f'<h2 class="article-summary">{escape(article.summary)}</h2>\n' if article.summary else ""
    figure = (
        f'<figure class="lead-image"><img src="{escape(image_path(site, article))}" '
        f'alt="{escape(article.title)}" title="{escape(article.title)}">'
        f"<figcaption>{escape(article.image_caption)}</figcaption></figure>\n"
        if article.image_caption
        else ""
    )
    note = (
        f'<p class="syndication-note"><em>{escape(article.boilerplate)}</em></p>\n'
        if article.boilerplate
        else ""
    )
    trending = "".join(f'<li><a href="{home}">{escape(t.headline)}</a></li>' for t in article.trending)
    columns = "".join(
        f'<div class="footer-col"><h5>{escape(column.title)}</h5><ul>'
        + "".join(f'<li><a href="{home}">{escape(link)}</a></li>' for link in column.links)
        + "</ul></div>"
        for column in site.footer_columns
    )
    contact = "".join(f"<p>{escape(line)}</p>" for line in site.footer_lines)
    body = f"""<header class="site-header">
<button type="button" class="menu-toggle" aria-controls="left-menu">Left Menu</button>
<a class="brand" href="{home}">{escape(site.name)}</a>
<span class="edition-name">{escape(site.tagline)}</span>
</header>
<nav id="left-menu" class="main-menu" aria-label="Sectors"><ul>{_menu(site)}</ul></nav>
<div class="container"><div class="row">
<main class="col-lg-8 content-column">
<article class="news-article" itemscope itemtype="https://schema.org/NewsArticle">
<h1 class="article-title" itemprop="headline">{escape(article.title)}</h1>
{standfirst}<ul class="article-meta">
<li class="author" itemprop="author">{escape(article.author)}</li><li>|</li>
<li class="location">{escape(article.dateline)}</li><li>|</li>
<li>Updated: {when}</li><li>|</li><li>Created: {when}</li>
</ul>
{figure}<div class="article-body" itemprop="articleBody">
{_paragraphs(article.body_paragraphs)}{note}</div>
</article>
</main>
<aside class="col-lg-4 right-sidebar">
<section class="trending-box"><h3>TRENDING</h3><ul>{trending}</ul></section>
<section class="opinion-box"><h3>{escape(site.opinion_title)}</h3>
{_teasers(site, site.opinion, "h4")}</section>
<section class="video-box"><h3>Videos</h3></section>
<section class="latest-news-box"><h3>Latest News</h3>
{_teasers(site, article.latest, "h4")}</section>
</aside>
</div></div>
<aside class="app-promo"><p>Download The {escape(site.name)} News App for Latest News.</p></aside>
<aside class="feedback-newsletter">
<a class="feedback" href="{home}">Give Feedback</a>
<form class="newsletter-box" action="{home}"><label>{escape(site.newsletter_prompt)}
<input type="email" name="email"></label><button type="submit">Subscribe</button></form>
</aside>
<footer class="site-footer">
<div class="footer-columns">{columns}</div>
<div class="footer-contact"><h5>{escape(site.name)}</h5>{contact}</div>
<p class="footer-links">{_footer_links(site)}</p>
<p class="copyright">{escape(site.copyright)}</p>
</footer>"""
    return document(
        f"{article.title} | {site.name}", article_meta(site, article, base_url), body, "article-page"
    )


def _json_ld(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    data = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "datePublished": article.published,
        "author": {"@type": "Person", "name": article.author},
        "publisher": {"@type": "Organization", "name": site.name},
        "mainEntityOfPage": base_url + article.path,
    }
    # Inside <script> entities are not decoded, so escape "<" the JSON way rather than with html.escape.
    payload = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    return f'<script type="application/ld+json">{payload}</script>\n'


def _broadsheet(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    """Daily Ledger-style: masthead, left rail before the story, opinion strip and signup below it."""
    home = escape(site.home_path)
    stamp = escape(article.published_at.astimezone(UTC).strftime("%b. %d, %Y %H:%M GMT"))
    body_html = _paragraphs(article.body_paragraphs) + (
        f'<p class="story__wire-note"><i>{escape(article.boilerplate)}</i></p>\n'
        if article.boilerplate
        else ""
    )
    opinion = "".join(
        f'<li><a href="{home}"><strong>{escape(t.headline)}</strong></a> {escape(t.blurb)}</li>'
        for t in site.opinion
    )
    body = f"""<div id="page">
<header class="masthead"><div class="masthead__title"><a href="{home}">{escape(site.name)}</a></div>
<p class="masthead__motto">{escape(site.tagline)}</p></header>
<nav class="topnav" aria-label="Sections"><ul class="topnav__list">{_menu(site)}</ul></nav>
<div class="layout">
<aside class="rail rail--left" aria-label="More stories">
<div class="rail-box rail-box--trending"><h2 class="rail-box__title">Trending</h2>
{_teasers(site, article.trending, "h3")}</div>
<div class="rail-box rail-box--latest"><h2 class="rail-box__title">Latest News</h2>
{_teasers(site, article.latest, "h3")}</div>
</aside>
<main class="layout__main">
<article class="story">
<header class="story__header">
<p class="story__section">{escape(article.section)}</p>
<h1 class="story__headline">{escape(article.title)}</h1>
<p class="story__dek">{escape(article.description)}</p>
<p class="story__byline">By <span class="byline__name">{escape(article.author)}</span>
<span class="story__dateline">{escape(article.dateline)}</span>
<time class="story__time" datetime="{escape(article.published)}">{stamp}</time></p>
</header>
<div class="story__body">
{body_html}</div>
</article>
<aside class="opinion-strip"><h2>{escape(site.opinion_title)}</h2><ul>{opinion}</ul></aside>
</main>
</div>
<aside class="signup"><h2>Newsletter</h2><p>{escape(site.newsletter_prompt)}</p>
<form action="{home}"><input type="email" name="email"><button type="submit">Sign up</button></form>
</aside>
<footer class="colophon">
{"".join(f"<p>{escape(line)}</p>" for line in site.footer_lines)}
<p>{_footer_links(site)}</p>
<p class="colophon__copyright">{escape(site.copyright)}</p>
</footer>
</div>"""
    head = article_meta(site, article, base_url) + _json_ld(site, article, base_url)
    return document(f"{article.title} - {site.name}", head, body, "story-page")


def _community(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    """Harbour Times-style: a blog-engine theme with widgets in a secondary column after the entry."""
    home = escape(site.home_path)
    stamp = escape(article.published_at.astimezone(UTC).strftime("%A %d %B %Y, %H:%M"))
    author, published = escape(article.author), escape(article.published)
    widgets = "".join(
        f'<section class="widget widget_{kind}"><h2 class="widget-title">{escape(title)}</h2>\n'
        f"{_teasers(site, teasers, 'h3')}</section>\n"
        for kind, title, teasers in (
            ("trending", "Trending", article.trending),
            ("latest", "Latest News", article.latest),
            ("opinion", site.opinion_title, site.opinion),
        )
    )
    body = f"""<div class="site-wrap">
<header id="masthead" class="site-header"><p class="site-title"><a href="{home}">{escape(site.name)}</a></p>
<p class="site-description">{escape(site.tagline)}</p>
<nav id="site-navigation" class="main-navigation"><ul class="menu">{_menu(site)}</ul></nav>
</header>
<div id="content" class="site-content">
<div id="primary" class="content-area"><main id="main" class="site-main">
<article class="post type-post hentry category-{escape(article.section.lower())}">
<header class="entry-header"><h1 class="entry-title">{escape(article.title)}</h1>
<div class="entry-meta"><span class="byline">by <span class="author vcard">{author}</span></span>
<span class="dateline">{escape(article.dateline)}</span>
<span class="posted-on"><time class="entry-date published" datetime="{published}">{stamp}</time></span>
</div></header>
<div class="entry-content">
{_paragraphs(article.body_paragraphs)}</div>
</article>
</main></div>
<aside id="secondary" class="widget-area" role="complementary">
{widgets}<section class="widget widget_newsletter"><h2 class="widget-title">Newsletter</h2>
<p>{escape(site.newsletter_prompt)}</p><form action="{home}"><input type="email" name="email"></form>
</section>
</aside>
</div>
<footer id="colophon" class="site-footer">
{"".join(f"<p>{escape(line)}</p>" for line in site.footer_lines)}
<p>{_footer_links(site)}</p><p class="site-info">{escape(site.copyright)}</p>
</footer>
</div>"""
    return document(
        f"{article.title} – {site.name}", article_meta(site, article, base_url), body, "single-post"
    )


_LAYOUTS: dict[Layout, Callable[[DemoSite, DemoArticle, str], str]] = {
    "portal": _portal,
    "broadsheet": _broadsheet,
    "community": _community,
}


def article_page(site: DemoSite, article: DemoArticle, base_url: str) -> str:
    """The article's page in its site's own layout; ``base_url`` makes canonical and og:url absolute."""
    return _LAYOUTS[site.layout](site, article, base_url)
