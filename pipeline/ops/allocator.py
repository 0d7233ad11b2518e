"""The worker's memory allocator: jemalloc, preloaded when installed, else the C library's malloc."""

from __future__ import annotations

import ctypes.util
import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

JEMALLOC = "jemalloc"
SYSTEM = "system"


def jemalloc_library() -> str | None:
    """The installed jemalloc's file name (for LD_PRELOAD), or None."""
    return ctypes.util.find_library(JEMALLOC)


def preload_environment(environment: Mapping[str, str], library: str) -> dict[str, str]:
    """`environment` with `library` in LD_PRELOAD, after what was there already, and named once."""
    preloaded = environment.get("LD_PRELOAD", "").replace(":", " ").split()
    if library not in preloaded:
        preloaded.append(library)
    return {**environment, "LD_PRELOAD": " ".join(preloaded)}


def worker_environment(allocator: str, environment: Mapping[str, str]) -> dict[str, str]:
    """The environment to start a worker with: jemalloc preloaded when asked for and installed.

    RocksDB's memtables and block cache free and allocate blocks of every size for as long as the worker
    runs, the pattern in which other RocksDB users see glibc's heaps fragment over days and jemalloc not
    (README, Soak test; 15-minute soaks here showed no difference yet).
    """
    if allocator != JEMALLOC:
        return dict(environment)
    library = jemalloc_library()
    if library is None:
        log.warning(
            "worker.allocator is jemalloc but libjemalloc is not installed (Debian: libjemalloc2); "
            "the worker uses the C library's malloc"
        )
        return dict(environment)
    return preload_environment(environment, library)


def allocator_in_use(maps: Path = Path("/proc/self/maps")) -> str:
    """'jemalloc' when this process has it mapped, else 'system'."""
    try:
        mapped = maps.read_text()
    except OSError:
        return SYSTEM
    return JEMALLOC if "libjemalloc" in mapped else SYSTEM
