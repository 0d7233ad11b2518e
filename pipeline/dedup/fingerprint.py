"""Body normalisation and content hashes: the same story text gives the same hash on any site."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Lines that syndication adds or changes from site to site; they say nothing about the story itself.
_BOILERPLATE_LINES = re.compile(
    r"""^\s*(?:
        \(?\s*this\s+(?:story|article)\s+has\s+not\s+been\s+edited\b.*
      | \(?\s*with\s+inputs?\s+from\b.*
      | \(?\s*(?:disclaimer|editor['\u2019]?s\s+note)\s*:.*
      | \(?\s*(?:also\s+read|read\s+more|download\s+the)\b.*
      | \(?\s*(?:ani|pti|ians|reuters|ap|afp)\s*\)?\s*
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_TRAILING_AGENCY = re.compile(r"\s*\((?:ani|pti|ians|reuters|ap|afp)\)\s*$", re.IGNORECASE)
_NON_WORD = re.compile(r"[^\w]+")


def normalise_body(text: str) -> str:
    """Lower-case words of the story body, with wire and site boilerplate lines removed."""
    kept = []
    for line in unicodedata.normalize("NFKC", text).splitlines():
        if not line.strip() or _BOILERPLATE_LINES.match(line):
            continue
        kept.append(_TRAILING_AGENCY.sub("", line))
    return " ".join(_NON_WORD.sub(" ", " ".join(kept).casefold()).split())


def content_hash(text: str) -> str:
    """Hash of the normalised body, the key exact copies share."""
    return "sha256:" + hashlib.sha256(normalise_body(text).encode()).hexdigest()
