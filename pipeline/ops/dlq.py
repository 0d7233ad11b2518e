"""`newsfeed dlq list|replay`: read the dead-letter topic and send chosen letters back where they failed."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline.clock import utc_now
from pipeline.contracts import contracts_for
from pipeline.inputs.bridge import entry_topic, input_stage
from pipeline.inputs.convert import convert
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.raw.publisher import record_headers, reliable_producer
from pipeline.records import DeadLetter, dumps
from pipeline.settings import Settings
from pipeline.stream.decode import InvalidRecordError

REPLAY_HEADER = "dlq-replay-of"


@dataclass(frozen=True, slots=True)
class StoredLetter:
    """A dead letter and where it sits in the dead-letter topic."""

    partition: int
    offset: int
    letter: DeadLetter

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def original_bytes(self) -> bytes:
        if self.letter["original_encoding"] == "base64":
            return base64.b64decode(self.letter["original"])
        return self.letter["original"].encode("utf-8")


@dataclass(frozen=True, slots=True)
class LetterFilter:
    """Which letters to show or replay; every given condition must hold."""

    reason: str | None = None
    stage: str | None = None
    source_topic: str | None = None
    positions: frozenset[str] = frozenset()

    def matches(self, stored: StoredLetter) -> bool:
        letter = stored.letter
        return (
            (self.reason is None or letter["reason"] == self.reason)
            and (self.stage is None or letter["stage"] == self.stage)
            and (self.source_topic is None or letter["source_topic"] == self.source_topic)
            and (not self.positions or stored.position in self.positions)
        )


async def read_letters(
    settings: Settings, chosen: LetterFilter, limit: int | None = None
) -> list[StoredLetter]:
    """Every letter now in the topic that passes the filter (oldest first per partition), up to `limit`."""
    topic = settings.topics.dead_letter
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), enable_auto_commit=False)
    await consumer.start()
    found: list[StoredLetter] = []
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await topic_partitions(consumer, topic))]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        remaining = {tp for tp in partitions if ends[tp] > 0}
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        while remaining:
            batches = await consumer.getmany(*remaining, timeout_ms=1000)
            for messages in batches.values():
                for message in messages:
                    stored = _stored(message)
                    if stored is not None and chosen.matches(stored):
                        found.append(stored)
            for tp in list(remaining):
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
            if limit is not None and len(found) >= limit:
                break
    finally:
        await consumer.stop()
    found.sort(key=lambda stored: (stored.letter["failed_at"], stored.partition, stored.offset))
    return found[:limit] if limit is not None else found


def _stored(message: Any) -> StoredLetter | None:
    try:
        letter = orjson.loads(message.value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(letter, dict) or "original" not in letter:
        return None
    return StoredLetter(message.partition, message.offset, letter)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """Where one letter would go, or why it cannot go anywhere yet."""

    stored: StoredLetter
    topic: str | None
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    problem: str | None = None


def plan_replay(
    settings: Settings, letters: Sequence[StoredLetter], to_topic: str | None
) -> list[ReplayPlan]:
    """Letters from other teams' inputs are mapped again with today's settings (the fix is usually
    there); others go back, byte for byte, to the topic they failed on (or `to_topic`)."""
    inputs = {input_stage(spec): spec for spec in settings.inputs}
    contracts = contracts_for(settings.schemas_dir)
    plans = []
    for stored in letters:
        letter = stored.letter
        key = letter["key"].encode() if letter["key"] is not None else None
        origin = (REPLAY_HEADER, f"{settings.topics.dead_letter}/{stored.position}".encode())
        if letter.get("original_truncated"):
            where = f"{letter['source_topic']}[{letter['partition']}]@{letter['offset']}"
            plans.append(
                ReplayPlan(stored, None, key, b"", [], f"original truncated; the whole value is at {where}")
            )
            continue
        spec = inputs.get(letter["stage"])
        if spec is None:
            if letter["stage"].startswith("input:") and to_topic is None:
                plans.append(ReplayPlan(stored, None, key, b"", [], "its input is no longer configured"))
                continue
            plans.append(
                ReplayPlan(stored, to_topic or letter["source_topic"], key, stored.original_bytes(), [origin])
            )
            continue
        try:
            converted = convert(stored.original_bytes(), spec, contracts, utc_now())
        except InvalidRecordError as error:
            plans.append(ReplayPlan(stored, None, key, b"", [], f"still invalid: {error}"))
            continue
        headers = [*record_headers(converted.schema, converted.record["trace_id"]), origin]
        plans.append(
            ReplayPlan(
                stored,
                to_topic or entry_topic(settings, spec),
                converted.key,
                dumps(converted.record),
                headers,
            )
        )
    return plans


async def replay(settings: Settings, plans: Sequence[ReplayPlan]) -> Counter[str]:
    """Send every plan that has a destination; waits for the broker's acknowledgements."""
    counts: Counter[str] = Counter()
    producer = reliable_producer(settings)
    await producer.start()
    try:
        sent = []
        for plan in plans:
            if plan.topic is None:
                counts["not replayed"] += 1
                continue
            sent.append(await producer.send(plan.topic, plan.value, key=plan.key, headers=plan.headers))
            counts[f"replayed to {plan.topic}"] += 1
        for future in sent:
            await future
    finally:
        await producer.stop()
    return counts


def describe(stored: StoredLetter) -> str:
    letter = stored.letter
    key = letter["key"] if letter["key"] is not None else "-"
    error = " ".join(letter["error"].split())
    return (
        f"{stored.position:>8}  {letter['failed_at'][:19]}  {letter['stage']:<16} {letter['reason']:<16} "
        f"{letter['source_topic']}[{letter['partition']}]@{letter['offset']}  key={key}  "
        f"{len(stored.original_bytes())} B  {error[:120]}"
    )


def as_json(stored: StoredLetter) -> bytes:
    return orjson.dumps({"dlq_partition": stored.partition, "dlq_offset": stored.offset, **stored.letter})
