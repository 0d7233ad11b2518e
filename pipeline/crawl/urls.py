"""URL canonicalisation: one spelling per page, so a page is fetched and keyed once."""

from __future__ import annotations

from urllib.parse import urldefrag

import courlan


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking parameters; other query kept.

    courlan's non-strict mode removes only tracking parameters (utm_*, fbclid, ...): its strict mode would
    also drop parameters that identify the page, such as ?story=123.
    """
    return urldefrag(str(courlan.normalize_url(url.strip(), strict=False))).url
