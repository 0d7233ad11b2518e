"""Keep a long-running worker's taxonomy current: reload the file when it changes, keep the last good one."""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.tag.taxonomy import Taxonomy, TaxonomyError, load_taxonomy

log = logging.getLogger(__name__)

_FileSignature = tuple[int, int, int] | None


class TaxonomyReloader:
    """The taxonomy in force. `refresh()` swaps in the file's new content once it is valid; an invalid
    edit is logged with the reason and the previous taxonomy stays in force, so tagging never stops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._signature = _signature(path)
        self.current: Taxonomy = load_taxonomy(path)  # a bad file at start-up is an error for the operator
        self.last_error: str | None = None

    def refresh(self) -> bool:
        """Look at the file; True when a new taxonomy came into force."""
        signature = _signature(self.path)
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            taxonomy = load_taxonomy(self.path)
        except TaxonomyError as error:
            self.last_error = str(error)
            log.error("taxonomy %s changed but cannot be used; still tagging with %s: %s",
                      self.path, self.current.version, error)  # fmt: skip
            return False
        self.last_error = None
        if taxonomy.version == self.current.version:
            return False  # comments or layout only
        log.warning("taxonomy reloaded from %s: %s -> %s", self.path, self.current.version, taxonomy.version)
        self.current = taxonomy
        return True


def _signature(path: Path) -> _FileSignature:
    # Size and inode as well as mtime: editors that save by renaming a new file over the old one, or two
    # saves within the file system's timestamp granularity, still count as a change.
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size, status.st_ino
