"""`newsfeed process`: the stream's stage functions over a JSONL file, one output line per input line."""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import TimeoutError as FutureTimeoutError
from dataclasses import dataclass
from typing import Any

import orjson
import pebble

from pipeline.clock import Clock
from pipeline.dedup.clusters import Match, cluster_verdict
from pipeline.dedup.fingerprint import content_hash
from pipeline.dedup.index import BandRecord, band_records, match_bucket
from pipeline.extract.extractor import Skipped, article_id, extract_article
from pipeline.records import Article, DedupVerdict, RawPage
from pipeline.tag.enrich import enrich_article
from pipeline.tag.taxonomy import Taxonomy

PROVIDED_TEXT_EXTRACTOR = "provided-text"
# A file is one batch: every article in it may be a copy of any other, whatever their dates.
OFFLINE_WINDOW_S = float("inf")
OFFLINE_BUCKET_ENTRIES = 10_000


@dataclass(frozen=True)
class LineProblem:
    """An input line that gives no article: why, said in the output line that stands for it."""

    kind: str  # "error" (bad input) or "skipped" (no article in the page)
    reason: str
    detail: str = ""


def process_lines(
    lines: Iterable[bytes], taxonomy: Taxonomy, clock: Clock, *, processes: int, timeout_s: float
) -> Iterator[dict[str, Any]]:
    """Enriched records (or problem lines) in input order: extraction, dedup over the whole input, tagging."""
    parsed = [_parse_line(number, line, clock) for number, line in enumerate(lines, start=1)]
    articles = _extract_all(parsed, processes, timeout_s)
    verdicts = dedup_verdicts([article for article in articles if not isinstance(article, LineProblem)])
    for item, outcome in zip(parsed, articles, strict=True):
        if isinstance(outcome, LineProblem):
            yield _problem_line(item, outcome)
            continue
        yield dict(enrich_article(outcome, verdicts[outcome["id"]], taxonomy, clock()))


def _parse_line(number: int, line: bytes, clock: Clock) -> tuple[int, dict[str, Any] | LineProblem]:
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        return number, LineProblem("error", "invalid-json", str(error))
    if not isinstance(record, dict) or not isinstance(record.get("url"), str) or not record["url"]:
        return number, LineProblem("error", "missing-url", "each line needs a JSON object with a url")
    has_html = isinstance(record.get("html"), str)
    has_text = isinstance(record.get("text"), str) and isinstance(record.get("title"), str)
    if not (has_html or has_text):
        return number, LineProblem("error", "missing-content", "give html, or title and text")
    return number, record


def _extract_all(
    parsed: list[tuple[int, dict[str, Any] | LineProblem]], processes: int, timeout_s: float
) -> list[Article | LineProblem]:
    pages = {
        number: _raw_page(number, record)
        for number, record in parsed
        if isinstance(record, dict) and isinstance(record.get("html"), str)
    }
    extracted = extract_pages(list(pages.values()), processes, timeout_s)
    by_number = dict(zip(pages, extracted, strict=True))
    outcomes: list[Article | LineProblem] = []
    for number, record in parsed:
        if isinstance(record, LineProblem):
            outcomes.append(record)
        elif number in by_number:
            outcomes.append(by_number[number])
        else:
            outcomes.append(_provided_article(number, record))
    return outcomes


def extract_pages(pages: list[RawPage], processes: int, timeout_s: float) -> list[Article | LineProblem]:
    if not pages:
        return []
    results: list[Article | LineProblem] = []
    context = multiprocessing.get_context("forkserver")
    with pebble.ProcessPool(max_workers=processes, context=context) as pool:
        future = pool.map(extract_article, pages, timeout=timeout_s, chunksize=1)
        outcomes = future.result()
        while True:
            try:
                outcome = next(outcomes)
            except StopIteration:
                break
            except FutureTimeoutError:
                results.append(LineProblem("error", "timeout", f"extraction over {timeout_s:.0f}s"))
                continue
            except pebble.ProcessExpired as error:
                results.append(LineProblem("error", "extractor-crash", str(error)))
                continue
            except Exception as error:
                results.append(LineProblem("error", "extract-error", repr(error)))
                continue
            if isinstance(outcome, Skipped):
                results.append(LineProblem("skipped", outcome.reason, outcome.detail))
            else:
                results.append(outcome)
    return results


def _raw_page(number: int, record: dict[str, Any]) -> RawPage:
    html: str = record["html"]
    return RawPage(
        url=record["url"],
        final_url=record.get("final_url") or record["url"],
        status=int(record.get("status", 200)),
        headers={str(k): str(v) for k, v in (record.get("headers") or {}).items()},
        fetched_at=record.get("fetched_at") or "1970-01-01T00:00:00+00:00",
        source=record.get("source") or "offline",
        content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
        html=html,
        trace_id=record.get("trace_id") or f"offline-{number}",
    )


def _provided_article(number: int, record: dict[str, Any]) -> Article:
    """An article given as title and text: extraction is skipped, everything else runs."""
    text: str = record["text"]
    return Article(
        id=article_id(record["url"]),
        url=record["url"],
        canonical_url=record.get("canonical_url") or record["url"],
        title=record["title"],
        text=text,
        published=record.get("published"),
        authors=list(record.get("authors") or []),
        language=record.get("language"),
        site_name=record.get("site_name"),
        description=record.get("description"),
        categories=list(record.get("categories") or []),
        image=record.get("image"),
        fetched_at=record.get("fetched_at") or "1970-01-01T00:00:00+00:00",
        source=record.get("source") or "offline",
        content_hash=content_hash(text),
        trace_id=record.get("trace_id") or f"offline-{number}",
        extractor=PROVIDED_TEXT_EXTRACTOR,
    )


def dedup_verdicts(articles: list[Article]) -> dict[str, DedupVerdict]:
    """The stream's near-duplicate index run in input order; each article is then judged with all of its
    matches, earlier or later in the file, as the stream's verdicts stand once late copies are settled."""
    buckets: dict[str, list[BandRecord]] = {}
    ranks: dict[str, str] = {}
    matches: dict[str, dict[str, Match]] = {article["id"]: {} for article in articles}
    for article in articles:
        rank, bands = band_records(article)
        ranks[article["id"]] = rank
        for key, record in bands:
            found, buckets[key] = match_bucket(
                buckets.get(key, []), record, window_s=OFFLINE_WINDOW_S, max_entries=OFFLINE_BUCKET_ENTRIES
            )
            for other in found:
                similarity = float(other["similarity"])
                matches[article["id"]][other["id"]] = Match(
                    other["id"], other["rank"], other["hash"], similarity
                )
                matches[other["id"]][article["id"]] = Match(
                    article["id"], rank, article["content_hash"], similarity
                )
    return {
        article["id"]: cluster_verdict(article, ranks[article["id"]], list(matches[article["id"]].values()))
        for article in articles
    }


def _problem_line(item: tuple[int, dict[str, Any] | LineProblem], problem: LineProblem) -> dict[str, Any]:
    number, record = item
    url = record.get("url") if isinstance(record, dict) else None
    return {"line": number, "url": url, problem.kind: problem.reason, "detail": problem.detail}
