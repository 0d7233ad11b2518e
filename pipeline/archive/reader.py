"""WARC files (ours, or any crawler's such as CC-NEWS) back into raw pages of a time range, replay order."""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from io import BytesIO
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson
from warcio.archiveiterator import ArchiveIterator
from warcio.bufferedreaders import BufferedReader, ChunkedDataReader

from pipeline.archive.cdxj import IndexEntry, read_index
from pipeline.archive.files import index_name, parse_name
from pipeline.archive.warc_writer import METADATA_FORMAT, KafkaPosition
from pipeline.crawl.fetcher import HTML_TYPES, KEPT_HEADERS, decode_html
from pipeline.crawl.urls import canonical_url
from pipeline.records import RawPage

MAX_BODY_BYTES = 10 * 1024 * 1024
WARC_SUFFIXES = (".warc.gz", ".warc", ".warc.gz.open")
# Pages of our archiver sort as a Kafka replay does (time, partition, offset); other crawlers' pages
# after ours at the same millisecond, by file and place in it.
OURS, FOREIGN = 0, 1
_TRACE_NAMESPACE = uuid.UUID("5d0c3f4e-56a1-4b8e-9a51-0f0e3c7d2b61")
_HTML_START = (b"<!doctype html", b"<html")

Order = tuple[int, int, int, int]
Include = Callable[[KafkaPosition | None], bool]


@dataclass(frozen=True, slots=True)
class ArchivedPage:
    """A page read back, where it sorts, and its Kafka position (None for another crawler's record)."""

    order: Order
    page: RawPage
    position: KafkaPosition | None


@dataclass
class ArchiveRead:
    pages: list[ArchivedPage] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """[start, end) on the replay's time axis; None is open."""

    start: datetime | None = None
    end: datetime | None = None

    def holds(self, moment_ms: int) -> bool:
        return (self.start is None or moment_ms >= _ms(self.start)) and (
            self.end is None or moment_ms < _ms(self.end)
        )

    def may_overlap(self, first: datetime, last: datetime) -> bool:
        """Whether a file of records from second `first` to second `last` can hold any in the range."""
        return (self.end is None or first < self.end) and (
            self.start is None or last + timedelta(seconds=1) > self.start
        )

    def may_hold_second(self, moment: datetime) -> bool:
        """Whether any instant of the second starting at `moment` can fall in the range."""
        return self.may_overlap(moment, moment)


@dataclass(frozen=True, slots=True)
class _Record:
    """What the reader keeps of one WARC record."""

    offset: int
    kind: str
    headers: dict[str, str]
    status: int | None
    http_headers: list[tuple[str, str]]
    raw_body: bytes
    truncated: bool


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def warc_files(location: Path) -> list[Path]:
    """The WARC files at `location`: itself if it is a file, else every one below it, in name order."""
    if location.is_file():
        return [location]
    return sorted(path for path in location.rglob("*") if path.name.endswith(WARC_SUFFIXES))


def read_archive(
    location: Path,
    window: TimeRange,
    *,
    include: Include | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ArchiveRead:
    """Every page in the window from the WARC files at `location`, sorted for replay.

    Our files are skipped by the time range in their names, and read through their CDXJ index when only
    part of them is wanted; any other file is read record by record. `include` further chooses pages by
    Kafka position (None for other crawlers' pages). Records that are no page are counted by reason."""
    result = ArchiveRead()
    seen: set[tuple[str, int, int]] = set()
    for number, path in enumerate(warc_files(location)):
        reader = _FileReader(path, number, window, include or _everything, max_body_bytes, result.counts)
        for item in reader.pages():
            if item.position is not None:
                key = (item.position.topic, item.position.partition, item.position.offset)
                if key in seen:
                    result.counts["archive:duplicate-position"] += 1
                    continue
                seen.add(key)
            result.pages.append(item)
    result.pages.sort(key=lambda item: item.order)
    result.counts["archive:pages"] = len(result.pages)
    return result


def _everything(position: KafkaPosition | None) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class _FileReader:
    path: Path
    number: int
    window: TimeRange
    include: Include
    max_bytes: int
    counts: Counter[str]

    def pages(self) -> Iterator[ArchivedPage]:
        name = parse_name(self.path.name)
        if name is not None and name.last is not None:
            if not self.window.may_overlap(name.first, name.last):
                self.counts["archive:files-outside-range"] += 1
                return
            index = self.path.with_name(index_name(self.path.name))
            if index.exists():
                entries = read_index(index)
                wanted = [entry for entry in entries if self._entry_wanted(entry)]
                self.counts["archive:files"] += 1
                if not wanted:
                    return
                if len(wanted) < len(entries):
                    self.counts["archive:read-by-index"] += 1
                    yield from self._read_entries(wanted)
                else:
                    yield from self._scan()
                return
        self.counts["archive:files"] += 1
        yield from self._scan()

    def _entry_wanted(self, entry: IndexEntry) -> bool:
        if entry.kafka is not None:
            return self.window.holds(entry.kafka.timestamp_ms) and self.include(entry.kafka)
        # Another tool's index: only the capture second is known; the record's own date decides later.
        return self.window.may_hold_second(entry.captured) and self.include(None)

    def _scan(self) -> Iterator[ArchivedPage]:
        with self.path.open("rb") as handle:
            yield from self._pair_up(_records(handle, self.path.stat().st_size, self.max_bytes, self.counts))

    def _read_entries(self, entries: list[IndexEntry]) -> Iterator[ArchivedPage]:
        with self.path.open("rb") as handle:
            for entry in sorted(entries, key=lambda entry: entry.offset):
                handle.seek(entry.offset)
                # The response and, for our pages, the metadata record right after it.
                yield from self._pair_up(list(islice(_records(handle, None, self.max_bytes, self.counts), 2)))

    def _pair_up(self, records: Iterable[_Record]) -> Iterator[ArchivedPage]:
        """Responses paired with our metadata record where one follows; every other response stands alone."""
        pending: _Record | None = None
        for record in records:
            if pending is not None:
                if _describes(record, pending):
                    described = _our_metadata(record)
                    if described is not None:
                        yield from self._ours(pending, described)
                    elif record.truncated:
                        self.counts["skipped:truncated"] += 1
                    else:
                        yield from self._alone(pending)
                    pending = None
                    continue
                yield from self._alone(pending)
                pending = None
            if record.kind == "response":
                pending = record
            elif record.kind == "revisit":
                self.counts["skipped:revisit"] += 1
        if pending is not None:
            yield from self._alone(pending)

    def _alone(self, response: _Record) -> Iterator[ArchivedPage]:
        """A response without our metadata: another crawler's page, or in one of our files a page whose
        metadata was lost, left out since its place in the topic is unknown."""
        if parse_name(self.path.name) is not None:
            self.counts["skipped:no-metadata"] += 1
            return
        yield from self._foreign(response)

    def _ours(self, response: _Record, described: dict[str, Any]) -> Iterator[ArchivedPage]:
        """The page exactly as it was in the topic: fields from the metadata, the HTML from the response."""
        position = KafkaPosition.from_json(described.get("kafka"))
        fields = described.get("page")
        if position is None or not isinstance(fields, dict):
            self.counts["skipped:bad-metadata"] += 1
            return
        if not self.window.holds(position.timestamp_ms) or not self.include(position):
            return
        if response.truncated:
            self.counts["skipped:truncated"] += 1
            return
        if len(response.raw_body) > self.max_bytes:
            self.counts["skipped:too-large"] += 1
            return
        page: Any = {**fields, "html": response.raw_body.decode("utf-8", errors="surrogatepass")}
        order = (position.timestamp_ms, OURS, position.partition, position.offset)
        yield ArchivedPage(order, page, position)

    def _foreign(self, response: _Record) -> Iterator[ArchivedPage]:
        """Another crawler's response as our crawler would have published it: 200 HTML pages only."""
        target = response.headers.get("warc-target-uri", "").strip().strip("<>")
        captured = _warc_date(response.headers.get("warc-date", ""))
        if captured is None:
            self.counts["skipped:bad-date"] += 1
            return
        if not self.window.holds(_ms(captured)) or not self.include(None):
            return
        reason = _refusal(response, target, self.max_bytes)
        if reason:
            self.counts[f"skipped:{reason}"] += 1
            return
        headers = {name.lower(): value for name, value in response.http_headers}
        body = _decoded_body(response.raw_body, headers, self.max_bytes)
        if body is None:
            self.counts["skipped:too-large"] += 1
            return
        content_type = headers.get("content-type", "")
        if not _is_html(content_type, body):
            self.counts["skipped:not-html"] += 1
            return
        html, _ = decode_html(body, _charset(content_type))
        record_id = response.headers.get("warc-record-id") or f"{self.path.name}@{response.offset}"
        page = RawPage(
            url=_canonical(target),
            final_url=target,
            status=200,
            headers={name: headers[name] for name in KEPT_HEADERS if name in headers},
            fetched_at=captured.isoformat(),
            source=f"warc:{self.path.name}",
            content_hash="sha256:" + hashlib.sha256(body).hexdigest(),
            html=html,
            # The same for every read of the record, so two replays of a file give the same records.
            trace_id=uuid.uuid5(_TRACE_NAMESPACE, record_id).hex,
        )
        yield ArchivedPage((_ms(captured), FOREIGN, self.number, response.offset), page, None)


def _records(handle: IO[bytes], size: int | None, max_bytes: int, counts: Counter[str]) -> Iterator[_Record]:
    """The records of a file from the handle's position; a torn or corrupt tail ends the file, counted."""
    iterator = ArchiveIterator(handle, check_digests=False)
    end = handle.tell()
    try:
        for record in iterator:
            offset = iterator.offset
            raw = (
                record.raw_stream.read(max_bytes + 1) if record.rec_type in ("response", "metadata") else b""
            )
            expected = record.payload_length if record.http_headers else record.length
            truncated = len(raw) <= max_bytes and expected is not None and 0 <= len(raw) < int(expected)
            http = record.http_headers
            yield _Record(
                offset=offset,
                kind=record.rec_type or "",
                headers={name.lower(): value for name, value in record.rec_headers.headers},
                status=_status(http.get_statuscode()) if http else None,
                http_headers=list(http.headers) if http else [],
                raw_body=raw,
                truncated=truncated,
            )
            end = offset + iterator.get_record_length()
    except Exception:  # warcio raises many kinds on damaged input; the file ends there
        counts["skipped:unreadable-tail"] += 1
        return
    if size is not None and end < size:
        # warcio ends quietly at a member cut short before its record headers.
        counts["skipped:truncated-tail"] += 1


def _status(code: str | None) -> int | None:
    try:
        return int(code or "")
    except ValueError:
        return None


def _describes(record: _Record, response: _Record) -> bool:
    return record.kind == "metadata" and record.headers.get("warc-concurrent-to") == response.headers.get(
        "warc-record-id"
    )


def _our_metadata(record: _Record) -> dict[str, Any] | None:
    if record.truncated:
        return None
    try:
        described = orjson.loads(record.raw_body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(described, dict) or described.get("format") != METADATA_FORMAT:
        return None
    return described


def _refusal(response: _Record, target: str, max_bytes: int) -> str | None:
    if not target.startswith(("http://", "https://")):
        return "not-http"
    if response.status is None:
        return "no-http-headers"
    if response.status != 200:
        return f"status-{response.status}"
    if response.truncated:
        return "truncated"
    if len(response.raw_body) > max_bytes:
        return "too-large"
    return None


def _canonical(url: str) -> str:
    """The page's key as our crawler would have it (tracking parameters and fragment dropped)."""
    try:
        return canonical_url(url)
    except ValueError:
        return url


def _warc_date(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _decoded_body(raw: bytes, headers: dict[str, str], max_bytes: int) -> bytes | None:
    """The body without transfer and content codings (as warcio's content_stream), at most `max_bytes`."""
    coding = headers.get("content-encoding", "").strip().lower() or None
    if coding not in BufferedReader.get_supported_decompressors():
        coding = None
    if headers.get("transfer-encoding", "").strip().lower() == "chunked":
        reader: BufferedReader = ChunkedDataReader(BytesIO(raw), decomp_type=coding)
    elif coding:
        reader = BufferedReader(BytesIO(raw), decomp_type=coding)
    else:
        return raw
    body: bytes = reader.read(max_bytes + 1)
    return body if len(body) <= max_bytes else None


def _is_html(content_type: str, body: bytes) -> bool:
    mime = content_type.split(";", 1)[0].strip().lower()
    if mime:
        return mime in HTML_TYPES
    # No Content-Type: sniff, as a browser would.
    return body[:1024].lstrip().lower().startswith(_HTML_START)


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip("\"'") or None
    return None
