"""URL canonicalisation: one spelling per page, so a page is fetched and keyed once."""

from __future__ import annotations

import courlan


def canonical_url(url: str) -> str:
    """Lower-case scheme and host, no default port, fragment or tracking parameters (courlan)."""
    return str(courlan.normalize_url(url.strip(), strict=True))
