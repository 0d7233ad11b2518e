"""Logging for every process: JSON lines carrying the article's trace id, or readable text on a terminal."""

from __future__ import annotations

import contextvars
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

# Set by whoever handles one article (an agent's event, a crawler's fetch); log lines written while it is
# set carry it, so one grep follows an article from fetch to store.
current_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
}


class TraceIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "trace_id", None) is None:
            record.trace_id = current_trace_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, trace_id, and any `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            entry["trace_id"] = trace_id
        for name, value in record.__dict__.items():
            if name not in _STANDARD_ATTRIBUTES and name != "trace_id" and not name.startswith("_"):
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", None)
        return f"{line} [trace {trace_id}]" if trace_id else line


def log_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `log_format` ("auto": text on a terminal, JSON otherwise) to `stream` (stderr)."""
    stream = stream or sys.stderr
    use_json = log_format == "json" or (log_format == "auto" and not stream.isatty())
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    handler.addFilter(TraceIdFilter())
    return handler


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Replace the root logger's handlers with one `log_handler`."""
    handler = log_handler(log_format, stream)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # The Kafka client narrates every rebalance at INFO; operators need its warnings, not its diary.
    logging.getLogger("aiokafka").setLevel(max(logging.WARNING, logging.getLevelName(level)))
