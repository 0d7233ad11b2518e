"""Dead-letter records: what failed, why, and the original bytes so it can be replayed."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from pipeline.records import DeadLetter

# A dead letter must fit in a Kafka record itself: larger originals keep their first MiB, and the letter
# says so (the whole value stays in its source topic, at the partition and offset given, until retention).
MAX_ORIGINAL_BYTES = 1024 * 1024


def dead_letter(
    *,
    stage: str,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    now: datetime,
    trace_id: str | None = None,
) -> DeadLetter:
    """Describe a failed record; bytes that are not UTF-8 are kept as base64, never altered."""
    original = value or b""
    size = len(original)
    original = original[:MAX_ORIGINAL_BYTES]
    try:
        text, encoding = original.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(original).decode("ascii"), "base64"
    letter = DeadLetter(
        reason=reason,
        error=error[:2000],
        stage=stage,
        source_topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        original=text,
        original_encoding=encoding,
        failed_at=now.isoformat(),
        trace_id=trace_id,
    )
    if size > MAX_ORIGINAL_BYTES:
        letter["original_size"] = size
        letter["original_truncated"] = True
    return letter


def dead_letter_of(
    message: Any, *, stage: str, reason: str, error: str, now: datetime, trace_id: str | None = None
) -> DeadLetter:
    """A dead letter for a consumed Kafka message (aiokafka's ConsumerRecord or Faust's Message: both
    carry topic, partition, offset, key and value)."""
    return dead_letter(
        stage=stage,
        reason=reason,
        error=error,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        now=now,
        trace_id=trace_id,
    )
