"""Topic tagging: a user-editable YAML taxonomy matched against an article's title and body text."""

from pipeline.tag.tagger import TAGGER_VERSION, tag_article
from pipeline.tag.taxonomy import (
    DEFAULT_TAXONOMY_PATH,
    Taxonomy,
    TaxonomyError,
    load_taxonomy,
    parse_taxonomy,
)

__all__ = [
    "DEFAULT_TAXONOMY_PATH",
    "TAGGER_VERSION",
    "Taxonomy",
    "TaxonomyError",
    "load_taxonomy",
    "parse_taxonomy",
    "tag_article",
]
