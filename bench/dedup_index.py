"""The near-duplicate index without Kafka: speed, quality and state size of the dedup stage at 100 k articles.

The fingerprint, band-index and join agents (`pipeline/stream/agents.py`) only move records between topics
and tables; their decisions are the pure functions of `pipeline/dedup/index.py`. This script calls those
functions in the order the agents would, over in-memory tables that hold **serialised** values (orjson), as
a RocksDB-backed table does, and counts every byte a table write or a topic message would carry:

1. *fingerprint*: ``band_records(article)``; the article message goes to the join topic, the 32 bands to
   the band topic grouped by partition (``bands_by_partition``, 8 partitions);
2. *band-index*: per band record (one per partition its bands hash to, listing them), the article's b-bit
   signature is written once to that partition's signature table, and per band the bucket (compact members:
   rank, event time, hash prefix) is read, ``match_members`` run and the bucket written back; one message
   per band record goes to the join topic;
3. *join*: per join message, the agent's logic (``absorb`` / ``verdict_if_complete``; a decided article is
   kept ``settle_window_s`` in the settled table; a canonical article that arrives after its copies re-points
   them with canonical messages, ``corrected``), with a simulated clock (the fetch time of the article being
   processed) and the settled table swept every ``sweep_interval_s``.

Articles are processed one at a time in fetch order. The synthetic set: seeded pseudo-text (a Zipf-weighted
invented vocabulary with English function words, recurring stock phrases, names and numbers; 300-600 words
in 5-12 paragraphs). 20 % of the articles are near copies of a recent article (1-3 of: wire credits swapped,
an "Also read" line, another headline, a paragraph dropped, an "UPDATE:" paragraph, two paragraphs swapped,
typos and typographic quotes, an editor's note), published minutes to hours after their source and fetched
after a per-article crawl delay, so some copies are fetched *before* their source. 3 % are follow-ups that
reuse one paragraph of an earlier story, 2 % independent write-ups that share one quoted sentence and the
names (both must not be matched), and 5 % of the articles are fetched a second time a day or two later (a
re-crawl; same id and text). Optionally the pages of `bench/corpus.py` (template-written stories, a fifth of
them syndicated) are run through the same index as a second data set.

Reported: articles/s through fingerprint + index + join (and per stage; the fingerprint stage alone);
copies found / expected (recall, also at the first verdict before any correction) and false matches
(precision); bytes per article of table state at the end and of changelog and topic traffic.

    .venv/bin/python -m bench.dedup_index             # 100 000 articles, about 7 minutes on 2 cores
    .venv/bin/python -m bench.dedup_index --smoke     # 2 000 articles, seconds
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import random
import re
import sys
import time
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

from bench.common import RESULTS_DIR, format_table, machine_info, utc_timestamp, write_results
from pipeline.dedup.fingerprint import content_hash
from pipeline.dedup.index import (
    BandRecord,
    PendingJoin,
    Settled,
    absorb,
    band_members,
    band_records,
    bands_by_partition,
    canonical_message,
    corrected,
    match_members,
    new_pending,
    settled,
    verdict_if_complete,
)
from pipeline.dedup.state import (
    bucket_members,
    encode_signature,
    signature_reader,
    stored_bucket,
    stored_signature_of,
)
from pipeline.records import Article, DedupVerdict, EnrichedArticle, Versions
from pipeline.settings import DedupSettings

NAME = "dedup_index"
DEFAULT_ARTICLES = 100_000
SMOKE_ARTICLES = 2_000
DEFAULT_CORPUS_PAGES = 2_000
SMOKE_CORPUS_PAGES = 100
DEFAULT_SEED = 11
DEFAULT_DAYS = 45.0
COPY_SHARE = 0.20
FOLLOW_UP_SHARE = 0.03
REWRITE_SHARE = 0.02
RECRAWL_SHARE = 0.05
GOAL_RECALL = 0.95
GOAL_PRECISION = 0.99
START = datetime(2024, 6, 1, tzinfo=UTC)
SITE_ZONES = (-300, -240, 0, 0, 60, 120, 330, 330, 480, 600)  # UTC offsets in minutes
MB = 1_000_000
PARTITIONS = 8  # the topics' default: an article's signature is stored once per partition its bands reach

# --- synthetic text ---------------------------------------------------------------------------------


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_SYLLABLES = _words(
    "al an ar as at ba bel bo bra ca cen cha co cor da del di do dra el en er es fa fen fo ga gan go gra ha "
    "hel ho il in is ja ka kel ko la lan le li lo lu ma mar me mi mo mu na nel no nu o ol on or pa pel po "
    "pra qua ra ren ri ro ru sa sel si so sta su ta tel ti to tra tu u ul un va vel vi vo wa we ya ze zo"
)
_FUNCTION_WORDS = _words(
    "the the the of of and and to to in in a a is that for on with as was by at from it its his her their "
    "said has have had will would about after over more than but not this which who were been also"
)
_WIRE_CREDITS = (
    "(With inputs from PTI)",
    "(With inputs from agencies)",
    "(This story has not been edited by {site} staff and is auto-generated from a syndicated feed.)",
    "This story has not been edited by {site} staff and is published from a syndicated news agency feed.",
)
_AGENCIES = ("ANI", "PTI", "IANS", "Reuters", "AFP")
_EDITOR_NOTES = (
    "Editor's note: An earlier version of this story misspelt a name.",
    "Editor's note: This article has been updated with a correction to the figures.",
)


class Writer:
    """Seeded pseudo-prose: invented words with Zipf-like frequencies, English function words, names,
    numbers and a pool of stock phrases that many unrelated stories repeat (as real copy does)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        invented = sorted({self._word() for _ in range(9000)})
        rng.shuffle(invented)
        content = invented[:6000]
        self.names = sorted({self._word().capitalize() for _ in range(2500)})
        numbers = [str(rng.randint(2, 9999)) for _ in range(600)]
        # Tokens and their weights: content words Zipf-distributed; function words take about 45 %.
        tokens = [*content, *_FUNCTION_WORDS, *numbers]
        weights = [
            *(1.0 / (rank + 1) ** 1.05 for rank in range(len(content))),
            *[0.45 * 9.0 / len(_FUNCTION_WORDS)] * len(_FUNCTION_WORDS),
            *[0.03 * 9.0 / len(numbers)] * len(numbers),
        ]
        self.tokens = tokens
        self.cumulative = list(itertools.accumulate(weights))
        self.phrases = [" ".join(self.draw(rng.randint(4, 8))) for _ in range(400)]

    def _word(self) -> str:
        return "".join(self.rng.choices(_SYLLABLES, k=self.rng.choice((1, 2, 2, 3, 3, 4))))

    def draw(self, count: int) -> list[str]:
        return self.rng.choices(self.tokens, cum_weights=self.cumulative, k=count)

    def cast(self) -> list[str]:
        return [f"{self.rng.choice(self.names)} {self.rng.choice(self.names)}" for _ in range(4)]

    def sentence(self, cast: Sequence[str]) -> str:
        rng = self.rng
        words = self.draw(rng.randint(7, 24))
        if rng.random() < 0.35:
            words.insert(rng.randrange(len(words)), rng.choice(self.phrases))
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(cast))
        text = " ".join(words)
        text = text[0].upper() + text[1:]
        if rng.random() < 0.12:
            return f'"{text}," {rng.choice(cast)} said.'
        if rng.random() < 0.1:
            return f"{text}, {rng.choice(cast)}'s office said."
        return text + "."

    def paragraph(self, cast: Sequence[str]) -> str:
        return " ".join(self.sentence(cast) for _ in range(self.rng.randint(1, 4)))

    def story(self, cast: Sequence[str]) -> list[str]:
        target = self.rng.randint(300, 600)
        paragraphs: list[str] = []
        words = 0
        while words < target or len(paragraphs) < 5:
            paragraph = self.paragraph(cast)
            paragraphs.append(paragraph)
            words += paragraph.count(" ") + 1
            if len(paragraphs) >= 12:
                break
        return paragraphs

    def title(self) -> str:
        return " ".join(self.draw(self.rng.randint(5, 11))).capitalize()


# --- the synthetic article set ----------------------------------------------------------------------


@dataclass
class Item:
    """One article of the set and the truth about it."""

    article: Article
    kind: str  # original, copy, follow-up, rewrite
    family: str  # the id of the original story this article belongs to
    source: str | None  # for copies and hard negatives: the article it was made from
    published: float
    fetched: float


@dataclass
class Dataset:
    name: str
    items: list[Item]
    fetches: list[tuple[float, Item]]  # (fetch time, item) in fetch order; re-crawls appear twice
    variants: Counter[str] = field(default_factory=Counter)

    @property
    def by_id(self) -> dict[str, Item]:
        return {item.article["id"]: item for item in self.items}


def _iso(moment: float, offset_minutes: int) -> str:
    zone = timezone(timedelta(minutes=offset_minutes))
    return datetime.fromtimestamp(round(moment), UTC).astimezone(zone).isoformat()


def make_article(
    article_id: str, title: str, paragraphs: Sequence[str], *, published: float, fetched: float, zone: int
) -> Article:
    text = "\n".join(paragraphs)
    return Article(
        id=article_id,
        url=f"https://site-{zone}.example/news/{article_id}.html",
        canonical_url=f"https://site-{zone}.example/news/{article_id}.html",
        title=title,
        text=text,
        published=_iso(published, zone),
        authors=[],
        language="en",
        site_name=f"Site {zone}",
        description=None,
        categories=[],
        image=None,
        fetched_at=_iso(fetched, 0),
        source=f"https://site-{zone}.example/rss.xml",
        content_hash=content_hash(text),
        trace_id=f"trace-{article_id}",
        extractor="bench",
    )


def _transposed(rng: random.Random, paragraph: str) -> str:
    words = paragraph.split(" ")
    for _ in range(2):
        index = rng.randrange(len(words))
        word = words[index]
        if len(word) >= 5 and word.isalpha():
            words[index] = word[0] + word[2] + word[1] + word[3:]
    return " ".join(words)


def syndicate(
    rng: random.Random, writer: Writer, paragraphs: list[str], site: str
) -> tuple[list[str], list[str]]:
    """A copy of the paragraphs with 1-3 of the edits syndicating sites make; also which edits."""
    edits = rng.sample(
        ["credits", "also-read", "headline", "drop", "update", "reorder", "retype", "editor-note"],
        rng.choice((1, 1, 2, 2, 3)),
    )
    copy = list(paragraphs)
    for edit in edits:
        if edit == "credits":
            copy[-1] = re.sub(r"\s*\((?:ANI|PTI|IANS|Reuters|AFP)\)$", "", copy[-1])
            if rng.random() < 0.5:
                copy[-1] += f" ({rng.choice(_AGENCIES)})"
            else:
                copy.append(rng.choice(_WIRE_CREDITS).format(site=site))
        elif edit == "also-read":
            copy.insert(rng.randint(1, len(copy) - 1), f"Also read: {writer.title()}")
        elif edit == "drop" and len(copy) >= 5:
            del copy[rng.randrange(1, len(copy))]
        elif edit == "update":
            copy.append("UPDATE: " + writer.sentence(writer.cast()))
        elif edit == "reorder" and len(copy) >= 3:
            first = rng.randrange(1, len(copy) - 1)
            copy[first], copy[first + 1] = copy[first + 1], copy[first]
        elif edit == "retype":
            copy = [
                _transposed(rng, p.replace('"', "\u201c", 1).replace('"', "\u201d", 1).replace("'", "\u2019"))
                if rng.random() < 0.5
                else p
                for p in copy
            ]
        elif edit == "editor-note":
            copy.append(rng.choice(_EDITOR_NOTES))
        # "headline": only the title differs, the body is the source's
    return copy, edits


def synthetic_dataset(count: int, seed: int, days: float) -> Dataset:
    """``count`` articles over ``days`` days; the same seed gives the same set."""
    rng = random.Random(seed)
    writer = Writer(rng)
    step = days * 86400.0 / count
    start = START.timestamp()
    items: list[Item] = []
    bodies: list[list[str]] = []
    casts: list[list[str]] = []
    variants: Counter[str] = Counter()
    for index in range(count):
        roll = rng.random() if index >= 20 else 1.0
        zone = rng.choice(SITE_ZONES)
        article_id = f"a{index:06d}"
        # Sources are recent: one of the last 300 articles.
        source = items[rng.randrange(max(0, index - 300), index)] if index else None
        if source is not None and roll < COPY_SHARE:
            paragraphs, edits = syndicate(rng, writer, bodies[_position(source)], f"Site {zone}")
            variants.update(edits)
            published = source.published + rng.uniform(180, 6 * 3600)
            kind, family, cast = "copy", source.family, casts[_position(source)]
        elif source is not None and roll < COPY_SHARE + FOLLOW_UP_SHARE:
            cast = casts[_position(source)]
            paragraphs = writer.story(cast)
            background = rng.choice(bodies[_position(source)][1:])
            paragraphs.insert(rng.randint(1, len(paragraphs) - 1), background)
            published = source.published + rng.uniform(6 * 3600, 72 * 3600)
            kind, family = "follow-up", article_id
        elif source is not None and roll < COPY_SHARE + FOLLOW_UP_SHARE + REWRITE_SHARE:
            cast = casts[_position(source)]
            paragraphs = writer.story(cast)
            quoted = [s for p in bodies[_position(source)] for s in p.split(". ") if s.startswith('"')]
            if quoted:
                paragraphs[1] += " " + rng.choice(quoted) + "."
            published = source.published + rng.uniform(0, 3 * 3600)
            kind, family = "rewrite", article_id
        else:
            cast = writer.cast()
            paragraphs = writer.story(cast)
            published = start + index * step + rng.uniform(0, step)
            kind, family, source = "original", article_id, None
        fetched = published + rng.uniform(60, 90 * 60)
        article = make_article(
            article_id, writer.title(), paragraphs, published=published, fetched=fetched, zone=zone
        )
        items.append(
            Item(article, kind, family, source.article["id"] if source else None, published, fetched)
        )
        bodies.append(paragraphs)
        casts.append(cast)
    fetches = [(item.fetched, item) for item in items]
    for item in rng.sample(items, round(count * RECRAWL_SHARE)):
        fetches.append((item.fetched + rng.uniform(12 * 3600, 48 * 3600), item))
    fetches.sort(key=lambda pair: (pair[0], pair[1].article["id"]))
    return Dataset("synthetic", items, fetches, variants)


def _position(item: Item) -> int:
    """Where a synthetic item sits in the generation order (its id is a000000, a000001, ...)."""
    return int(item.article["id"][1:])


def corpus_dataset(pages: int, seed: int) -> Dataset | None:
    """The pages of bench/corpus.py as articles (body paragraphs plus any wire credit line)."""
    try:
        from bench.corpus import generate_corpus  # noqa: PLC0415 - optional: another bench's module
    except ImportError:
        return None
    corpus = generate_corpus(pages, seed=seed)
    rng = random.Random(seed)
    credit = re.compile(r"^\(?(?:with inputs|this story has not been edited|reporting by)", re.IGNORECASE)
    items: list[Item] = []
    ids: dict[str, str] = {}
    for index, page in enumerate(corpus.pages):
        ids[page.url] = f"c{index:05d}"
    for page in corpus.pages:
        article_id = ids[page.url]
        credits = [line for line in page.boilerplate_lines if credit.match(line)]
        published = page.published_at.timestamp()
        fetched = published + rng.uniform(60, 90 * 60)
        offset = page.published_at.utcoffset() or timedelta()
        article = make_article(
            article_id,
            page.title,
            [*page.body_paragraphs, *credits],
            published=published,
            fetched=fetched,
            zone=int(offset.total_seconds() // 60),
        )
        source = ids[page.syndicated_from] if page.syndicated_from else None
        kind = "copy" if source else "original"
        items.append(Item(article, kind, source or article_id, source, published, fetched))
    fetches = sorted(
        ((item.fetched, item) for item in items), key=lambda pair: (pair[0], pair[1].article["id"])
    )
    return Dataset("corpus", items, fetches)


# --- the agents over in-memory tables ---------------------------------------------------------------


def _key_bytes(key: Any) -> int:
    """A key's size; a (partition, key) pair stands for the key in that partition's database."""
    return len(key[1]) if isinstance(key, tuple) else len(key)


class Table:
    """A key-value table holding serialised values, counting what its changelog would carry."""

    def __init__(self) -> None:
        self.data: dict[Any, bytes] = {}
        self.writes = 0
        self.changelog_bytes = 0

    def get(self, key: Any) -> Any:
        raw = self.data.get(key)
        return None if raw is None else orjson.loads(raw)

    def set(self, key: Any, value: Any) -> None:
        # A copy of exactly its size: orjson's own result keeps its whole output buffer (~8 KB here).
        self.set_bytes(key, bytes(memoryview(orjson.dumps(value))))

    def set_bytes(self, key: Any, raw: bytes) -> None:
        self.data[key] = raw
        self.writes += 1
        self.changelog_bytes += _key_bytes(key) + len(raw)

    def pop(self, key: Any) -> None:
        if self.data.pop(key, None) is not None:
            self.writes += 1
            self.changelog_bytes += _key_bytes(key)  # a tombstone

    def state_bytes(self) -> int:
        return sum(_key_bytes(key) + len(value) for key, value in self.data.items())


@dataclass
class Topic:
    messages: int = 0
    bytes: int = 0

    def send(self, key: str, value: Any) -> bytes:
        raw = orjson.dumps(value)
        self.messages += 1
        self.bytes += len(key) + len(raw)
        return raw


@dataclass
class Timers:
    fingerprint: float = 0.0
    index: float = 0.0
    join: float = 0.0


class Simulation:
    """The fingerprint, band-index and join agents, run one article at a time."""

    def __init__(self, settings: DedupSettings) -> None:
        self.window_s = settings.window_days * 86400.0
        self.max_entries = settings.max_bucket_entries
        self.settle_s = settings.settle_window_s
        self.sweep_s = settings.sweep_interval_s
        self.buckets, self.signatures, self.pending, self.settled = Table(), Table(), Table(), Table()
        self.bands_topic, self.join_topic, self.enriched_topic = Topic(), Topic(), Topic()
        self.join_queue: deque[tuple[str, bytes]] = deque()
        self.timers = Timers()
        self.now = 0.0
        self.next_sweep = 0.0
        self.expiry: list[tuple[float, str]] = []  # a heap of (expires, id): the sweep's view, not state
        self.first: dict[str, DedupVerdict] = {}  # each article's first verdict
        self.final: dict[str, DedupVerdict] = {}  # the last verdict sent for it
        self.corrections = 0

    # fingerprint agent
    def process(self, article: Article, now: float) -> None:
        self.now = now
        if now >= self.next_sweep:
            self.sweep()
        began = time.perf_counter()
        rank, bands = band_records(article)
        key = article["id"]
        self.join_queue.append(
            (key, self.join_topic.send(key, {"kind": "article", "article": article, "rank": rank}))
        )
        records = [
            (partition, self.bands_topic.send(band_key, record))
            for partition, band_key, record in bands_by_partition(bands, PARTITIONS)
        ]
        indexed = time.perf_counter()
        self.timers.fingerprint += indexed - began
        for partition, raw in records:
            self.band_index(partition, orjson.loads(raw))
        joined = time.perf_counter()
        self.timers.index += joined - indexed
        while self.join_queue:
            key, raw = self.join_queue.popleft()
            self.join(key, orjson.loads(raw))
        self.timers.join += time.perf_counter() - joined

    # band-index agent
    def band_index(self, partition: int, incoming: BandRecord) -> None:
        mine = stored_signature_of(incoming["sig"], incoming["n"], incoming["t"])
        self.signatures.set_bytes((partition, incoming["id"]), encode_signature(mine))
        signature_of = signature_reader(
            lambda article_id: self.signatures.data.get((partition, article_id)), {incoming["id"]: mine}
        )
        found: list[dict[str, Any]] = []
        bands: list[int] = []
        for bucket, single in band_members(incoming):
            assert bucket is not None  # grouped records name every bucket
            matches, members = match_members(
                bucket_members(self.buckets.get(bucket)),
                single,
                mine,
                signature_of,
                window_s=self.window_s,
                max_entries=self.max_entries,
            )
            self.buckets.set(bucket, stored_bucket(members))
            found.extend(matches)
            bands.append(single["band"])
        message = {"kind": "bands", "bands": bands, "matches": found}
        self.join_queue.append((incoming["id"], self.join_topic.send(incoming["id"], message)))

    # join agent
    def join(self, article_id: str, message: dict[str, Any]) -> None:
        if message["kind"] == "canonical" and self.correct(article_id, message):
            return
        pending: PendingJoin = absorb(self.pending.get(article_id) or new_pending(), message)
        verdict = verdict_if_complete(pending)
        if verdict is None:
            self.pending.set(article_id, pending)
            return
        self.pending.pop(article_id)
        article = pending["article"]
        assert article is not None
        record = self.enrich(article, verdict)
        self.emit(record)
        if verdict["duplicate_of"] is None:
            canonical_rank = pending["rank"]
        else:
            match = pending["matches"].get(verdict["duplicate_of"])
            canonical_rank = str(match["rank"]) if match else pending["rank"]
        entry = settled(record, pending, canonical_rank, self.now + self.settle_s)
        if self.settle_s > 0:
            self.settled.set(article_id, entry)
            heapq.heappush(self.expiry, (entry["expires"], article_id))
        if verdict["duplicate_of"] is None:
            for copy_id in entry["later"]:
                similarity = float(pending["matches"].get(copy_id, {}).get("similarity", 1.0))
                message = canonical_message(record, pending["rank"], similarity)
                self.join_queue.append((copy_id, self.join_topic.send(copy_id, message)))

    def correct(self, article_id: str, message: dict[str, Any]) -> bool:
        entry: Settled | None = self.settled.get(article_id)
        if entry is None:
            return False
        updated = corrected(entry, message["match"])
        if updated is not None:
            self.corrections += 1
            self.emit(updated)
            entry["record"], entry["canonical_rank"] = updated, message["match"]["rank"]
            self.settled.set(article_id, entry)
            for copy_id in entry["later"]:
                self.join_queue.append((copy_id, self.join_topic.send(copy_id, message)))
        return True

    def sweep(self) -> None:
        """The agent's timer: forget settled articles whose time is up."""
        while self.expiry and self.expiry[0][0] < self.now:
            expires, key = heapq.heappop(self.expiry)
            entry = self.settled.get(key)
            if entry is not None and entry["expires"] == expires:
                self.settled.pop(key)
        self.next_sweep = self.now + self.sweep_s

    def enrich(self, article: Article, verdict: DedupVerdict) -> EnrichedArticle:
        versions = Versions(extractor=article["extractor"], tagger="bench", taxonomy="bench", dedup="bench")
        processed = datetime.fromtimestamp(self.now, UTC).isoformat()
        return EnrichedArticle(**article, topics=[], dedup=verdict, versions=versions, processed_at=processed)

    def emit(self, record: EnrichedArticle) -> None:
        self.enriched_topic.send(record["id"], record)
        self.first.setdefault(record["id"], record["dedup"])
        self.final[record["id"]] = record["dedup"]


# --- one run ----------------------------------------------------------------------------------------


def quality(dataset: Dataset, sim: Simulation) -> dict[str, Any]:
    """Copies found and false matches, judged on each article's last verdict (and on its first)."""
    by_id = dataset.by_id
    copies = [item for item in dataset.items if item.kind == "copy"]

    def found(item: Item, verdicts: dict[str, DedupVerdict]) -> bool:
        canonical = verdicts[item.article["id"]]["duplicate_of"]
        return canonical is not None and by_id[canonical].family == item.family

    false_matches = Counter(
        item.kind
        for item in dataset.items
        if (canonical := sim.final[item.article["id"]]["duplicate_of"]) is not None
        and by_id[canonical].family != item.family
    )
    first_false = sum(
        1
        for item in dataset.items
        if (canonical := sim.first[item.article["id"]]["duplicate_of"]) is not None
        and by_id[canonical].family != item.family
    )
    hits = sum(found(item, sim.final) for item in copies)
    first_hits = sum(found(item, sim.first) for item in copies)
    fetched_first = {item.article["id"]: fetched for fetched, item in reversed(dataset.fetches)}
    out_of_order = [
        item
        for item in copies
        if item.source and fetched_first[item.article["id"]] < fetched_first[item.source]
    ]
    to_original = sum(
        1
        for item in copies
        if sim.final[item.article["id"]]["duplicate_of"] == item.family and found(item, sim.final)
    )
    methods = Counter(verdict["method"] for verdict in sim.final.values())
    originals_marked = sum(
        1
        for item in dataset.items
        if item.kind == "original" and sim.final[item.article["id"]]["duplicate_of"] is not None
    )
    misses = [item for item in copies if not found(item, sim.final)]
    flagged = hits + sum(false_matches.values())
    return {
        "articles": len(dataset.items),
        "fetches": len(dataset.fetches),
        "kinds": dict(Counter(item.kind for item in dataset.items)),
        "expected_copies": len(copies),
        "found": hits,
        "recall": round(hits / len(copies), 4) if copies else None,
        "found_at_first_verdict": first_hits,
        "recall_at_first_verdict": round(first_hits / len(copies), 4) if copies else None,
        "false_matches": sum(false_matches.values()),
        "false_matches_by_kind": dict(false_matches),
        "false_matches_at_first_verdict": first_false,
        "precision": round(hits / flagged, 4) if flagged else None,
        "copies_fetched_before_their_source": len(out_of_order),
        "of_those_found": sum(found(item, sim.final) for item in out_of_order),
        "copies_pointing_at_the_original": to_original,
        "originals_marked_duplicate": originals_marked,
        "corrections_sent": sim.corrections,
        "methods": dict(methods),
        "missed_examples": [
            {"id": item.article["id"], "source": item.source, "verdict": sim.final[item.article["id"]]}
            for item in misses[:5]
        ],
    }


def state(dataset: Dataset, sim: Simulation) -> dict[str, Any]:
    articles = len(dataset.items)
    horizon = max(item.published for item in dataset.items) - sim.window_s
    entries = stale = 0
    largest = 0
    for raw in sim.buckets.data.values():
        members = bucket_members(orjson.loads(raw))
        entries += len(members)
        stale += sum(1 for member in members if member.t < horizon)
        largest = max(largest, len(members))
    bucket_bytes = sim.buckets.state_bytes()
    signature_bytes = sim.signatures.state_bytes()

    def per_article(value: int) -> float:
        return round(value / articles, 1)

    return {
        "bucket_state_bytes_per_article": per_article(bucket_bytes),
        "bucket_state_mb": round(bucket_bytes / MB, 1),
        "signature_state_bytes_per_article": per_article(signature_bytes),
        "signatures": len(sim.signatures.data),
        "signatures_per_article": round(len(sim.signatures.data) / articles, 2),
        "index_state_bytes_per_article": per_article(bucket_bytes + signature_bytes),
        "buckets": len(sim.buckets.data),
        "bucket_entries": entries,
        "bucket_entries_older_than_window": stale,
        "largest_bucket": largest,
        "bucket_changelog_bytes_per_article": per_article(sim.buckets.changelog_bytes),
        "signature_changelog_bytes_per_article": per_article(sim.signatures.changelog_bytes),
        "pending_join_changelog_bytes_per_article": per_article(sim.pending.changelog_bytes),
        "settled_changelog_bytes_per_article": per_article(sim.settled.changelog_bytes),
        "changelog_bytes_per_article": per_article(
            sim.buckets.changelog_bytes
            + sim.signatures.changelog_bytes
            + sim.pending.changelog_bytes
            + sim.settled.changelog_bytes
        ),
        "pending_joins_left": len(sim.pending.data),
        "pending_joins_left_without_article": sum(
            1 for raw in sim.pending.data.values() if orjson.loads(raw)["article"] is None
        ),
        "pending_state_bytes": sim.pending.state_bytes(),
        "settled_left": len(sim.settled.data),
        "settled_state_bytes": sim.settled.state_bytes(),
        "band_topic_bytes_per_article": per_article(sim.bands_topic.bytes),
        "join_topic_bytes_per_article": per_article(sim.join_topic.bytes),
        "join_topic_messages": sim.join_topic.messages,
        "enriched_topic_messages": sim.enriched_topic.messages,
    }


def run(dataset: Dataset, settings: DedupSettings, *, progress: bool) -> dict[str, Any]:
    sim = Simulation(settings)
    began = time.perf_counter()
    for number, (fetched, item) in enumerate(dataset.fetches, 1):
        sim.process(item.article, fetched)
        if progress and number % 10_000 == 0:
            rate = number / (time.perf_counter() - began)
            print(f"  {dataset.name}: {number:,} / {len(dataset.fetches):,} ({rate:,.0f}/s)", file=sys.stderr)
    wall = time.perf_counter() - began
    fetches = len(dataset.fetches)
    timers = sim.timers
    return {
        "throughput": {
            "articles_processed": fetches,
            "wall_s": round(wall, 2),
            "articles_per_s": round(fetches / wall, 1),
            "fingerprint_s": round(timers.fingerprint, 2),
            "fingerprint_articles_per_s": round(fetches / timers.fingerprint, 1),
            "index_s": round(timers.index, 2),
            "join_s": round(timers.join, 2),
            "other_s": round(wall - timers.fingerprint - timers.index - timers.join, 2),
        },
        "quality": quality(dataset, sim),
        "state": state(dataset, sim),
    }


# --- report -----------------------------------------------------------------------------------------


def print_report(results: dict[str, dict[str, Any]]) -> None:
    quality_rows = []
    for name, result in results.items():
        q = result["quality"]
        quality_rows.append(
            [
                name,
                q["articles"],
                q["expected_copies"],
                q["found"],
                q["recall"] if q["recall"] is not None else "-",
                q["recall_at_first_verdict"] if q["recall_at_first_verdict"] is not None else "-",
                q["false_matches"],
                q["precision"] if q["precision"] is not None else "-",
                f"{q['copies_fetched_before_their_source']} ({q['of_those_found']} found)",
            ]
        )
    print("\nquality (each article's last verdict; a copy is found when it names an article of its story)")
    print(
        format_table(
            (
                "set",
                "articles",
                "copies",
                "found",
                "recall",
                "first-verdict recall",
                "false",
                "precision",
                "fetched before source",
            ),
            quality_rows,
        )
    )
    speed_rows = []
    for name, result in results.items():
        t = result["throughput"]
        speed_rows.append(
            [
                name,
                t["articles_processed"],
                t["articles_per_s"],
                t["fingerprint_articles_per_s"],
                t["fingerprint_s"],
                t["index_s"],
                t["join_s"],
                t["other_s"],
            ]
        )
    print("\nthroughput, one process (articles/s; seconds per stage, serialisation included)")
    print(
        format_table(
            (
                "set",
                "processed",
                "all stages/s",
                "fingerprint/s",
                "fingerprint s",
                "index s",
                "join s",
                "other s",
            ),
            speed_rows,
        )
    )
    state_rows = []
    for name, result in results.items():
        s = result["state"]
        state_rows.append(
            [
                name,
                s["bucket_state_bytes_per_article"],
                s["signature_state_bytes_per_article"],
                s["bucket_changelog_bytes_per_article"],
                s["signature_changelog_bytes_per_article"],
                s["pending_join_changelog_bytes_per_article"],
                s["settled_changelog_bytes_per_article"],
                s["band_topic_bytes_per_article"],
                s["join_topic_bytes_per_article"],
            ]
        )
    print("\nbytes per article (orjson; state at the end, changelog and topic bytes over the run)")
    print(
        format_table(
            (
                "set",
                "bucket state",
                "signature state",
                "bucket log",
                "signature log",
                "pending log",
                "settled log",
                "band topic",
                "join topic",
            ),
            state_rows,
        )
    )
    for name, result in results.items():
        s, q = result["state"], result["quality"]
        stale = s["bucket_entries_older_than_window"]
        orphans = s["pending_joins_left_without_article"]
        print(
            f"{name}: {s['buckets']:,} buckets, {s['bucket_entries']:,} entries ({stale:,} older than the "
            f"window), largest {s['largest_bucket']}; {s['signatures']:,} signatures "
            f"({s['signatures_per_article']} per article); {s['pending_joins_left']} pending joins left "
            f"({orphans} without an article); false matches by kind {q['false_matches_by_kind'] or '{}'}; "
            f"{q['copies_pointing_at_the_original']:,} of {q['found']:,} found copies name the original; "
            f"{q['originals_marked_duplicate']} originals marked as duplicates"
        )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=None, help=f"synthetic articles ({DEFAULT_ARTICLES})")
    parser.add_argument(
        "--smoke", action="store_true", help=f"tiny run ({SMOKE_ARTICLES} articles) for tests"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--days", type=float, default=DEFAULT_DAYS, help="publication span of the set")
    parser.add_argument(
        "--corpus-pages",
        type=int,
        default=None,
        help=f"bench/corpus.py pages to run too, 0: none ({DEFAULT_CORPUS_PAGES}; smoke: fewer)",
    )
    parser.add_argument("--max-entries", type=int, default=None, help="bucket cap (default: settings)")
    parser.add_argument("--settle-hours", type=float, default=None, help="settle window (default: settings)")
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if args.articles is None:
        args.articles = SMOKE_ARTICLES if args.smoke else DEFAULT_ARTICLES
    if args.corpus_pages is None:
        args.corpus_pages = SMOKE_CORPUS_PAGES if args.smoke else DEFAULT_CORPUS_PAGES
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.max_entries is not None:
        overrides["max_bucket_entries"] = args.max_entries
    if args.settle_hours is not None:
        overrides["settle_window_s"] = args.settle_hours * 3600.0
    settings = DedupSettings(**overrides)
    began = time.perf_counter()
    datasets = [synthetic_dataset(args.articles, args.seed, args.days)]
    print(
        f"{NAME}: generated {args.articles:,} articles in {time.perf_counter() - began:.1f} s",
        file=sys.stderr,
    )
    if args.corpus_pages:
        corpus = corpus_dataset(args.corpus_pages, args.seed)
        if corpus is not None:
            datasets.append(corpus)
    results = {dataset.name: run(dataset, settings, progress=not args.smoke) for dataset in datasets}
    print_report(results)
    data = {
        "name": NAME,
        "smoke": args.smoke,
        "timestamp": utc_timestamp(),
        "machine": machine_info(packages=("datasketch", "numpy", "orjson")),
        "parameters": {
            "articles": args.articles,
            "seed": args.seed,
            "days": args.days,
            "corpus_pages": args.corpus_pages,
            "copy_share": COPY_SHARE,
            "follow_up_share": FOLLOW_UP_SHARE,
            "rewrite_share": REWRITE_SHARE,
            "recrawl_share": RECRAWL_SHARE,
            "dedup_settings": settings.model_dump(),
        },
        "goal": {"recall": GOAL_RECALL, "precision": GOAL_PRECISION},
        "variants": dict(datasets[0].variants),
        "sets": results,
    }
    path = write_results(data, args.json)
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
