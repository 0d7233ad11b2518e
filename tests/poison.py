"""Poison records for every input topic, a stand-in extractor that throws, and a dead-letter stopwatch."""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from pipeline.dedup.near import Fingerprint, fingerprint
from pipeline.extract.extractor import Skipped, extract_article
from pipeline.ops.kafka import client_options
from pipeline.records import Article, RawPage, dumps, loads
from pipeline.settings import Settings

MIB = 1024 * 1024
# "10 MB": ten million random bytes fit the 10 MiB topics' max.message.bytes even compressed (random
# bytes do not compress), so the pipeline itself meets them; the dead letter keeps the first MiB.
TEN_MEGABYTES = 10_000_000
# Over the pipeline's own 10 MiB record limit: compressible, so zstd gets it through the topic's limit
# (which counts compressed bytes) and the consumer's size check is what stops it.
OVER_LIMIT_BYTES = 10 * MIB + 1024
# Incompressible and over the 10 MiB topics' max.message.bytes: the broker refuses it outright.
UNPRODUCIBLE_BYTES = 11 * MIB

EXPLODE_MARK = "<!-- poison: explode -->"
CRASH_MARK = "<!-- poison: crash -->"


def explode_or_crash_on_marked_pages(page: RawPage) -> Article | Skipped:
    """The real extractor, except that marked pages make it raise or kill its process.

    trafilatura copes with every malformed page we could build (it skips, never raises), so a throwing
    extractor needs a stand-in; hanging needs none (see `hanging_html`).
    """
    if EXPLODE_MARK in page["html"]:
        raise ValueError(f"the parser choked on {page['url']}")
    if CRASH_MARK in page["html"]:
        os._exit(3)
    return extract_article(page)


def explode_or_crash_on_marked_pages_with_fingerprint(page: RawPage) -> tuple[Article, Fingerprint] | Skipped:
    """`extract_with_fingerprint` over `explode_or_crash_on_marked_pages`: what the worker's pool runs."""
    result = explode_or_crash_on_marked_pages(page)
    return result if isinstance(result, Skipped) else (result, fingerprint(result["text"]))


def hanging_html(paragraphs: int = 200_000) -> str:
    """A real page that keeps trafilatura busy for minutes (its time grows with the square of the count of
    paragraphs: 100,000 took 61 s on a 2-core machine), though it is under 2 MB."""
    return "<html><body><article><h1>Endless</h1>" + "<p>x</p>" * paragraphs + "</article></body></html>"


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


@dataclass(frozen=True)
class Poison:
    """One bad record and the dead-letter reason it must get."""

    kind: str
    value: bytes
    reason: str


def poison_for(
    valid: dict[str, Any], *, wrong_type: tuple[str, Any], missing: str, missing_reason: str = "schema"
) -> list[Poison]:
    """The bad-input kinds every JSON input topic must survive, derived from one valid record."""
    whole = dumps(valid)
    field_name, wrong_value = wrong_type
    without = {name: value for name, value in valid.items() if name != missing}
    padded = dumps({**valid, "padding": "x" * OVER_LIMIT_BYTES})
    invalid_utf8 = whole.replace(b'"', b'"\xff\xfe', 1)  # a string that starts with bytes no UTF-8 has
    assert b"\xff" in invalid_utf8
    return [
        Poison("truncated-json", whole[: len(whole) // 2], "invalid-json"),
        Poison("wrong-type", dumps({**valid, field_name: wrong_value}), "schema"),
        Poison("missing-field", dumps(without), missing_reason),
        Poison("ten-megabytes", random_bytes(TEN_MEGABYTES, seed=10), "invalid-json"),
        Poison("over-limit", padded, "oversize"),
        Poison("invalid-utf8", invalid_utf8, "invalid-json"),
    ]


@dataclass
class Measured:
    """A poison record's dead letter and how long it took (broker timestamps, producer's clock)."""

    topic: str
    kind: str
    reason: str
    letter: dict[str, Any]
    seconds: float
    size: int


@dataclass
class LetterWatch:
    """Reads the dead-letter topic from its start and keeps every letter by key, as it arrives."""

    settings: Settings
    letters: dict[str, tuple[dict[str, Any], int]] = field(default_factory=dict)
    _consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        self._consumer = AIOKafkaConsumer(
            **client_options(self.settings.kafka),
            enable_auto_commit=False,
            max_partition_fetch_bytes=25 * MIB,
            fetch_max_bytes=50 * MIB,
        )
        await self._consumer.start()
        partition = TopicPartition(self.settings.topics.dead_letter, 0)  # the topic has one partition
        self._consumer.assign([partition])
        await self._consumer.seek_to_beginning(partition)

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()

    async def wait_for(self, key: str, timeout_s: float) -> tuple[dict[str, Any], int]:
        """The letter keyed `key` and its broker timestamp (ms); raises AssertionError on time-out."""
        assert self._consumer is not None
        deadline = time.monotonic() + timeout_s
        while key not in self.letters:
            assert time.monotonic() < deadline, f"no dead letter for {key!r} in {timeout_s} s"
            for batch in (await self._consumer.getmany(timeout_ms=200)).values():
                for record in batch:
                    letter = loads(record.value)
                    self.letters[letter["key"] or ""] = (letter, record.timestamp)
        return self.letters[key]


def poison_producer(settings: Settings) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        compression_type="zstd",
        max_request_size=12 * MIB,
    )


async def run_matrix(
    settings: Settings,
    topic: str,
    poison: Sequence[Poison],
    follower: Callable[[int], tuple[bytes, bytes]],
    *,
    producer_settings: Settings | None = None,
    timeout_s: float = 60.0,
) -> list[Measured]:
    """Each poison record in turn, then a valid record after it; waits for each one's dead letter.

    The poison's key names its topic and kind, so letters are told apart; the valid followers are
    checked by the caller, where they end up.
    """
    producer = poison_producer(producer_settings or settings)
    watch = LetterWatch(settings)
    await producer.start()
    await watch.start()
    measured: list[Measured] = []
    try:
        for number, case in enumerate(poison):
            key = f"poison:{topic}:{case.kind}"
            sent = await producer.send_and_wait(topic, case.value, key=key.encode())
            letter, at_ms = await watch.wait_for(key, timeout_s)
            seconds = (at_ms - sent.timestamp) / 1000
            measured.append(Measured(topic, case.kind, case.reason, letter, seconds, len(case.value)))
            follower_key, follower_value = follower(number)
            await producer.send_and_wait(topic, follower_value, key=follower_key)
    finally:
        await watch.stop()
        await producer.stop()
    return measured


def report(title: str, measured: Sequence[Measured]) -> str:
    rows = [
        f"{m.topic.split('.', 1)[1]:<22} {m.kind:<20} {m.size:>10} B  {m.letter['reason']:<15} "
        f"{m.seconds:6.2f} s"
        for m in measured
    ]
    return "\n".join([f"\n{title}: time to dead letter", *rows])


def assert_letters(measured: Sequence[Measured], stage: str, source_topic: str) -> None:
    """Each letter has the expected reason and stage, names its source, and keeps (the start of) the
    original bytes; big originals are cut at 1 MiB with their size recorded."""
    for m in measured:
        letter = m.letter
        assert (letter["reason"], letter["stage"]) == (m.reason, stage), (m.kind, letter["error"])
        assert letter["source_topic"] == source_topic
        assert letter["offset"] >= 0
        if m.size > MIB:
            assert letter["original_truncated"] is True, m.kind
            assert letter["original_size"] == m.size
        else:
            assert "original_truncated" not in letter, m.kind


async def produce_unproducible(settings: Settings, topic: str) -> BaseException | None:
    """Try to produce an incompressible value over the topic's max.message.bytes; the error, if any."""
    producer = poison_producer(settings)
    await producer.start()
    try:
        await producer.send_and_wait(topic, random_bytes(UNPRODUCIBLE_BYTES, seed=11), key=b"unproducible")
    except Exception as error:  # what the broker says is the point
        return error
    finally:
        await asyncio.wait_for(producer.stop(), 30)
    return None
