"""Archive files on disk: naming, rotation by size and age, fsync, recovery of a file a crash left open."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import orjson

from pipeline.archive.cdxj import IndexEntry, index_text, read_index
from pipeline.archive.warc_writer import (
    METADATA_FORMAT,
    KafkaPosition,
    PageRecords,
    warcinfo_record,
)

PREFIX = "newsfeed"
OPEN_SUFFIX = ".open"
STATE_FILE = "archive-state.json"
LOCK_FILE = "archive.lock"
STATE_FORMAT = "newsfeed.archive-state.v1"
_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME = re.compile(
    rf"^{PREFIX}-(?P<first>\d{{8}}T\d{{6}}Z)-(?P<last>\d{{8}}T\d{{6}}Z|open)-(?P<sequence>\d{{6,}})"
    rf"\.warc\.gz(?P<open>{re.escape(OPEN_SUFFIX)})?$"
)
_READ_CHUNK = 1024 * 1024

Partition = tuple[str, int]


class ArchiveLockedError(RuntimeError):
    """Another archiver writes this directory."""


@dataclass(frozen=True, slots=True)
class ArchiveName:
    """What one of our file names says: the range of its records' Kafka times (seconds) and its sequence."""

    first: datetime
    last: datetime | None  # None while the file is open
    sequence: int

    @property
    def is_open(self) -> bool:
        return self.last is None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def open_name(first: datetime, sequence: int) -> str:
    """`newsfeed-20250101T120000Z-open-000042.warc.gz.open`: being written, named by its first record."""
    return f"{PREFIX}-{_stamp(first)}-open-{sequence:06d}.warc.gz{OPEN_SUFFIX}"


def closed_name(first: datetime, last: datetime, sequence: int) -> str:
    """`newsfeed-20250101T120000Z-20250102T115959Z-000042.warc.gz`: its records' earliest and latest
    Kafka times, then the sequence, which orders files written at the same second."""
    return f"{PREFIX}-{_stamp(first)}-{_stamp(last)}-{sequence:06d}.warc.gz"


def index_name(warc_name: str) -> str:
    """The CDXJ index beside a closed file: `….warc.gz` → `….cdxj`."""
    return warc_name.removesuffix(".warc.gz") + ".cdxj"


def parse_name(name: str) -> ArchiveName | None:
    """What one of our names says, or None for any other file (a foreign WARC, say)."""
    match = _NAME.match(name)
    if match is None:
        return None
    first = datetime.strptime(match["first"], _TIME_FORMAT).replace(tzinfo=UTC)
    last = None if match["last"] == "open" else datetime.strptime(match["last"], _TIME_FORMAT)
    return ArchiveName(first, last.replace(tzinfo=UTC) if last else None, int(match["sequence"]))


def rotation_due(size: int, age_s: float, *, rotate_bytes: int, rotate_seconds: float) -> bool:
    return size >= rotate_bytes or age_s >= rotate_seconds


def _ms_time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


@dataclass
class _OpenFile:
    path: Path
    handle: IO[bytes]
    sequence: int
    opened_at: float
    size: int = 0
    min_ms: int | None = None
    max_ms: int | None = None
    entries: list[IndexEntry] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ClosedFile:
    path: Path
    index: Path
    pages: int


class ArchiveWriter:
    """Appends pages to the open file (created at the first page), closes it at the size or age limit:
    fsync, CDXJ index written, renamed without `.open`, state file updated. `positions` is the next Kafka
    offset per partition after the pages written, the archive's own account of where to resume."""

    def __init__(
        self,
        directory: Path,
        *,
        rotate_bytes: int,
        rotate_seconds: float,
        gzip_level: int,
        next_sequence: int,
        positions: dict[Partition, int] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.directory = directory
        self.rotate_bytes = rotate_bytes
        self.rotate_seconds = rotate_seconds
        self.gzip_level = gzip_level
        self.next_sequence = next_sequence
        self.positions: dict[Partition, int] = dict(positions or {})
        self.monotonic = monotonic
        self._open: _OpenFile | None = None

    @property
    def open_path(self) -> Path | None:
        return self._open.path if self._open else None

    def append(self, records: PageRecords) -> ClosedFile | None:
        """Write one page; a file that this page would take past `rotate_bytes` is closed first (and
        returned). The page is durable only after the next `sync` or close."""
        closed = None
        current = self._open
        if current is not None and current.entries and current.size + len(records.data) > self.rotate_bytes:
            closed = self.close()
        current = self._open or self._start(_ms_time(records.position.timestamp_ms))
        offset = current.size
        current.handle.write(records.data)
        current.size += len(records.data)
        moment = records.position.timestamp_ms
        current.min_ms = moment if current.min_ms is None else min(current.min_ms, moment)
        current.max_ms = moment if current.max_ms is None else max(current.max_ms, moment)
        current.entries.append(
            IndexEntry(
                url=records.url,
                captured=records.warc_date,
                mime=records.mime,
                status=records.status,
                digest=records.payload_digest,
                length=records.response_length,
                offset=offset,
                filename="",
                kafka=records.position,
            )
        )
        partition = (records.position.topic, records.position.partition)
        self.positions[partition] = max(self.positions.get(partition, 0), records.position.offset + 1)
        return closed

    def sync(self) -> None:
        """Everything appended is on disk (flushed and fsynced) once this returns."""
        if self._open is not None:
            self._open.handle.flush()
            os.fsync(self._open.handle.fileno())

    def rotation_due(self) -> bool:
        current = self._open
        if current is None or not current.entries:
            return False
        return rotation_due(
            current.size,
            self.monotonic() - current.opened_at,
            rotate_bytes=self.rotate_bytes,
            rotate_seconds=self.rotate_seconds,
        )

    def close(self) -> ClosedFile | None:
        """Finish the open file (if any): durable, indexed, renamed, and counted in the state file."""
        self.sync()
        current, self._open = self._open, None
        if current is None:
            return None
        current.handle.close()
        if not current.entries:
            current.path.unlink(missing_ok=True)
            return None
        closed = finish_file(current.path, current.entries, current.sequence, current.min_ms, current.max_ms)
        write_state(self.directory, current.sequence, self.positions)
        return closed

    def _start(self, first: datetime) -> _OpenFile:
        sequence = self.next_sequence
        self.next_sequence += 1
        path = self.directory / open_name(first, sequence)
        handle = path.open("xb")
        info = warcinfo_record(datetime.now(UTC), gzip_level=self.gzip_level)
        handle.write(info)
        self._open = _OpenFile(path, handle, sequence, self.monotonic(), size=len(info))
        _fsync_directory(self.directory)
        return self._open


def finish_file(
    path: Path, entries: list[IndexEntry], sequence: int, min_ms: int | None, max_ms: int | None
) -> ClosedFile:
    """Index then rename an open file whose content is durable. The index is written first, so a crash in
    between leaves the `.open` file, which the next start closes again (same name, same index)."""
    first = _ms_time(min_ms if min_ms is not None else 0)
    last = _ms_time(max_ms if max_ms is not None else 0)
    final = path.with_name(closed_name(first, last, sequence))
    index = path.with_name(index_name(final.name))
    named = [replace(entry, filename=final.name) for entry in entries]
    write_atomically(index, index_text(named).encode())
    path.rename(final)
    _fsync_directory(path.parent)
    return ClosedFile(final, index, len(entries))


def write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    temporary.replace(path)
    _fsync_directory(path.parent)


def _fsync_directory(directory: Path) -> None:
    """A rename or a new file is durable only once its directory is."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --- the state file: positions through the last closed file -------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveState:
    closed_through: int
    positions: dict[Partition, int]


def write_state(directory: Path, closed_through: int, positions: dict[Partition, int]) -> None:
    data = {
        "format": STATE_FORMAT,
        "closed_through": closed_through,
        "positions": [
            {"topic": topic, "partition": partition, "next_offset": offset}
            for (topic, partition), offset in sorted(positions.items())
        ],
    }
    write_atomically(directory / STATE_FILE, orjson.dumps(data, option=orjson.OPT_INDENT_2))


def read_state(directory: Path) -> ArchiveState | None:
    """The state file, or None when it is missing or unreadable (then every file is read instead)."""
    try:
        data: Any = orjson.loads((directory / STATE_FILE).read_bytes())
        return ArchiveState(
            int(data["closed_through"]),
            {(str(p["topic"]), int(p["partition"])): int(p["next_offset"]) for p in data["positions"]},
        )
    except (OSError, orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold the directory's lock: one archiver per archive, or two would write the same records."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            raise ArchiveLockedError(f"another archiver is writing {directory}") from error
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- recovery ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Member:
    """One complete gzip member of a file: where it lies and its WARC headers and block."""

    offset: int
    length: int
    headers: dict[str, str]
    block: bytes


@dataclass(frozen=True, slots=True)
class ScannedFile:
    """What a scan of one of our files found: its whole pages (index entries without a file name yet),
    the Kafka time range and where the last whole page ends (the rest is a torn write)."""

    entries: list[IndexEntry]
    valid_bytes: int
    min_ms: int | None
    max_ms: int | None


def gzip_members(handle: IO[bytes]) -> Iterator[tuple[int, int, bytes]]:
    """(offset, length, decompressed bytes) of each complete gzip member; stops at a truncated or corrupt
    one, so a torn tail is never yielded."""
    offset = 0
    pending = b""
    while True:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        parts: list[bytes] = []
        consumed = 0
        data = pending
        while True:
            if not data:
                data = handle.read(_READ_CHUNK)
                if not data:
                    return
            try:
                parts.append(decompressor.decompress(data))
            except zlib.error:
                return
            if decompressor.eof:
                pending = decompressor.unused_data
                consumed += len(data) - len(pending)
                break
            consumed += len(data)
            data = b""
        yield offset, consumed, b"".join(parts)
        offset += consumed


def parse_member(offset: int, length: int, content: bytes) -> Member | None:
    """The WARC record of one member, or None when its headers or block are incomplete."""
    head, separator, rest = content.partition(b"\r\n\r\n")
    if not separator or not head.startswith(b"WARC/"):
        return None
    headers: dict[str, str] = {}
    for line in head.decode("utf-8", errors="replace").split("\r\n")[1:]:
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    try:
        block_length = int(headers.get("content-length", ""))
    except ValueError:
        return None
    if len(rest) < block_length:
        return None
    return Member(offset, length, headers, rest[:block_length])


def scan_file(path: Path) -> ScannedFile:
    """Read one of our files member by member. A page counts when its response member is followed by
    its metadata member (WARC-Concurrent-To); anything after the last whole page is a torn write."""
    entries: list[IndexEntry] = []
    valid = 0
    min_ms: int | None = None
    max_ms: int | None = None
    response: Member | None = None
    with path.open("rb") as handle:
        for offset, length, content in gzip_members(handle):
            member = parse_member(offset, length, content)
            if member is None:
                break
            kind = member.headers.get("warc-type")
            if kind == "warcinfo" and offset == 0:
                valid = offset + length
                continue
            if kind == "response" and response is None:
                response = member
                continue
            entry = (
                _page_entry(response, member)
                if kind == "metadata" and response is not None and _pairs(response, member)
                else None
            )
            if entry is None or entry.kafka is None:
                break
            entries.append(entry)
            stamp = entry.kafka.timestamp_ms
            min_ms = stamp if min_ms is None else min(min_ms, stamp)
            max_ms = stamp if max_ms is None else max(max_ms, stamp)
            valid = offset + length
            response = None
    return ScannedFile(entries, valid, min_ms, max_ms)


def _pairs(response: Member, metadata: Member) -> bool:
    return metadata.headers.get("warc-concurrent-to") == response.headers.get("warc-record-id")


def _page_entry(response: Member, metadata: Member) -> IndexEntry | None:
    try:
        described: Any = orjson.loads(metadata.block)
        page = described["page"]
        captured = datetime.strptime(response.headers["warc-date"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    if not isinstance(described, dict) or described.get("format") != METADATA_FORMAT:
        return None
    content_type = next(
        (str(v) for k, v in (page.get("headers") or {}).items() if str(k).lower() == "content-type"), ""
    )
    return IndexEntry(
        url=response.headers.get("warc-target-uri", ""),
        captured=captured,
        mime=content_type.split(";", 1)[0].strip().lower() or "unk",
        status=int(page.get("status") or 0),
        digest=response.headers.get("warc-payload-digest", ""),
        length=response.length,
        offset=response.offset,
        filename="",
        kafka=KafkaPosition.from_json(described.get("kafka")),
    )


@dataclass
class Recovered:
    """Where the archive stands after a start: positions, the next file's sequence, what was repaired."""

    positions: dict[Partition, int]
    next_sequence: int
    closed: list[ClosedFile] = field(default_factory=list)
    truncated_bytes: int = 0
    scanned_files: int = 0


def recover(directory: Path) -> Recovered:
    """Make the archive whole after any stop, and say where writing resumes.

    Files a crash left open are cut after their last whole page (a torn write is dropped, its pages come
    again from Kafka) and closed. Positions come from the state file (through the last file it counted)
    and from the indexes, or failing those the records, of files closed after it."""
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob("*.tmp"):
        leftover.unlink()  # an index or state file a crash interrupted; it is written again
    names = {path: parse_name(path.name) for path in directory.iterdir()}
    ours = {path: name for path, name in names.items() if name is not None}
    state = read_state(directory)
    positions = dict(state.positions) if state else {}
    closed_through = state.closed_through if state else -1
    recovered = Recovered(positions, max((name.sequence for name in ours.values()), default=-1) + 1)
    for path, name in sorted(ours.items(), key=lambda item: item[1].sequence):
        if name.sequence <= closed_through and not name.is_open:
            continue
        if name.is_open:
            scanned = scan_file(path)
            recovered.scanned_files += 1
            size = path.stat().st_size
            if scanned.valid_bytes < size:
                with path.open("r+b") as handle:
                    handle.truncate(scanned.valid_bytes)
                    handle.flush()
                    os.fsync(handle.fileno())
                recovered.truncated_bytes += size - scanned.valid_bytes
            entries = scanned.entries
            if not entries:
                path.unlink()
                continue
            recovered.closed.append(finish_file(path, entries, name.sequence, scanned.min_ms, scanned.max_ms))
        else:
            index = path.with_name(index_name(path.name))
            entries = read_index(index) if index.exists() else []
            if not entries:
                entries = scan_file(path).entries
                recovered.scanned_files += 1
        _advance(positions, entries)
    if ours:
        write_state(directory, recovered.next_sequence - 1, positions)
    return recovered


def _advance(positions: dict[Partition, int], entries: list[IndexEntry]) -> None:
    for entry in entries:
        if entry.kafka is not None:
            partition = (entry.kafka.topic, entry.kafka.partition)
            positions[partition] = max(positions.get(partition, 0), entry.kafka.offset + 1)
