"""Complete an article into the enriched record: its dedup verdict, topic tags and versions."""

from __future__ import annotations

from datetime import datetime

from pipeline.dedup.clusters import DEDUP_VERSION
from pipeline.records import Article, DedupVerdict, EnrichedArticle, Versions
from pipeline.tag.tagger import TAGGER_VERSION, tag_article
from pipeline.tag.taxonomy import Taxonomy


def enrich_article(
    article: Article, verdict: DedupVerdict, taxonomy: Taxonomy, now: datetime
) -> EnrichedArticle:
    """Tag the article's own title and body (never page furniture) and attach everything downstream needs."""
    return EnrichedArticle(
        **article,
        topics=tag_article(article["title"], article["text"], taxonomy),
        dedup=verdict,
        versions=Versions(
            extractor=article["extractor"],
            tagger=TAGGER_VERSION,
            taxonomy=taxonomy.version,
            dedup=DEDUP_VERSION,
        ),
        processed_at=now.isoformat(),
    )
