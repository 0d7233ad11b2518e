"""Replay progress: a bar with rate and ETA on a terminal, JSON lines for machines."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

import orjson

BAR_WIDTH = 30


class Progress:
    """Call `advance(n)` as records are done; it redraws at most every `interval_s` seconds."""

    def __init__(
        self,
        total: int,
        stream: TextIO,
        *,
        label: str = "replay",
        interval_s: float = 0.5,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.label = label
        self.interval_s = interval_s
        self.monotonic = monotonic
        self.started = monotonic()
        self._last = float("-inf")
        self.terminal = stream.isatty()

    def advance(self, count: int) -> None:
        self.done += count
        now = self.monotonic()
        if now - self._last >= self.interval_s:
            self._last = now
            self._emit(final=False)

    def finish(self) -> None:
        self._emit(final=True)

    def _emit(self, *, final: bool) -> None:
        elapsed = max(self.monotonic() - self.started, 1e-9)
        rate = self.done / elapsed
        remaining = max(self.total - self.done, 0)
        eta = remaining / rate if rate > 0 else None
        if self.terminal:
            share = min(self.done / self.total, 1.0) if self.total else 1.0
            filled = int(share * BAR_WIDTH)
            eta_text = f"ETA {eta:4.0f}s" if eta is not None and not final else f"{elapsed:5.1f}s"
            line = (
                f"\r{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {self.done}/{self.total} "
                f"{rate:7.1f} rec/s {eta_text}"
            )
            self.stream.write(line + ("\n" if final else ""))
        else:
            event = {
                "event": "done" if final else "progress",
                "done": self.done,
                "total": self.total,
                "rate_per_s": round(rate, 1),
                "eta_s": None if eta is None or final else round(eta, 1),
                "elapsed_s": round(elapsed, 2),
            }
            self.stream.write(orjson.dumps(event).decode() + "\n")
        self.stream.flush()
