"""Archive files: names, rotation by size and age, and recovery after a crash (torn writes, unrecorded
closes, a lost state file)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline.archive.cdxj import read_index
from pipeline.archive.files import (
    STATE_FILE,
    ArchiveLockedError,
    ArchiveWriter,
    closed_name,
    index_name,
    locked,
    open_name,
    parse_name,
    read_state,
    recover,
    rotation_due,
    scan_file,
)
from pipeline.archive.warc_writer import KafkaPosition, PageRecords, page_records
from pipeline.records import RawPage

TOPIC = "raw"
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def _page(number: int, size: int = 200) -> RawPage:
    html = f"<html><body><h1>Story {number}</h1><p>{'word ' * size}</p></body></html>"
    return RawPage(
        url=f"http://news.example.test/{number}",
        final_url=f"http://news.example.test/{number}",
        status=200,
        headers={"content-type": "text/html; charset=utf-8"},
        fetched_at="2026-01-01T00:00:00+00:00",
        source="feed",
        content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
        html=html,
        trace_id=f"t{number}",
    )


def _records(number: int, partition: int = 0) -> PageRecords:
    return page_records(_page(number), KafkaPosition(TOPIC, partition, number, BASE_MS + number * 1000))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _writer(directory: Path, clock: FakeClock | None = None, **limits: float) -> ArchiveWriter:
    recovered = recover(directory)
    return ArchiveWriter(
        directory,
        rotate_bytes=int(limits.get("rotate_bytes", 1024**3)),
        rotate_seconds=limits.get("rotate_seconds", 86400.0),
        gzip_level=6,
        next_sequence=recovered.next_sequence,
        positions=recovered.positions,
        monotonic=clock or FakeClock(),
    )


def _crash(writer: ArchiveWriter) -> Path:
    """Stop writing as a killed process would: the data synced so far is on disk, the file stays open."""
    writer.sync()
    assert writer._open is not None
    writer._open.handle.close()
    return writer._open.path


def _archived_offsets(directory: Path) -> list[int]:
    offsets = []
    for path in sorted(directory.glob("*.warc.gz")):
        offsets += [entry.kafka.offset for entry in scan_file(path).entries if entry.kafka]
    return sorted(offsets)


def test_names_carry_the_time_range_and_sequence() -> None:
    first = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    last = datetime(2026, 1, 2, 11, 59, 59, tzinfo=UTC)
    assert open_name(first, 42) == "newsfeed-20260101T120000Z-open-000042.warc.gz.open"
    assert closed_name(first, last, 42) == "newsfeed-20260101T120000Z-20260102T115959Z-000042.warc.gz"
    assert (
        index_name(closed_name(first, last, 42)) == "newsfeed-20260101T120000Z-20260102T115959Z-000042.cdxj"
    )
    parsed = parse_name(closed_name(first, last, 42))
    assert parsed is not None
    assert (parsed.first, parsed.last, parsed.sequence, parsed.is_open) == (first, last, 42, False)
    opened = parse_name(open_name(first, 7))
    assert opened is not None
    assert opened.is_open
    assert parse_name("CC-NEWS-20161026100320-00000.warc.gz") is None
    assert parse_name("newsfeed-20260101T120000Z-open-000042.warc.gz.open.tmp") is None


def test_rotation_at_whichever_limit_comes_first() -> None:
    assert rotation_due(100, 1.0, rotate_bytes=100, rotate_seconds=60)
    assert rotation_due(10, 60.0, rotate_bytes=100, rotate_seconds=60)
    assert not rotation_due(99, 59.9, rotate_bytes=100, rotate_seconds=60)


def test_files_rotate_by_size_and_are_indexed_and_named_when_closed(tmp_path: Path) -> None:
    writer = _writer(tmp_path, rotate_bytes=4000)
    closed = [done for number in range(10) if (done := writer.append(_records(number))) is not None]
    writer.sync()
    assert closed, "the size limit closed files"
    assert writer.open_path is not None
    assert writer.open_path.name.endswith(".warc.gz.open")
    last = writer.close()
    assert last is not None
    files = sorted(tmp_path.glob("*.warc.gz"))
    assert len(files) == len(closed) + 1
    assert not list(tmp_path.glob("*.open"))
    for path in files:
        assert path.stat().st_size <= 4000 or len(scan_file(path).entries) == 1
        name = parse_name(path.name)
        assert name is not None
        entries = read_index(tmp_path / index_name(path.name))
        assert {entry.filename for entry in entries} == {path.name}
        times = [entry.kafka.timestamp_ms for entry in entries if entry.kafka]
        assert name.first == datetime.fromtimestamp(min(times) // 1000, UTC)
        assert name.last == datetime.fromtimestamp(max(times) // 1000, UTC)
    assert _archived_offsets(tmp_path) == list(range(10))
    state = read_state(tmp_path)
    assert state is not None
    assert state.positions == {(TOPIC, 0): 10}


def test_files_rotate_by_age_even_while_idle(tmp_path: Path) -> None:
    clock = FakeClock()
    writer = _writer(tmp_path, clock, rotate_seconds=60)
    writer.append(_records(0))
    assert not writer.rotation_due()
    clock.now = 61
    assert writer.rotation_due()
    assert writer.close() is not None
    assert not writer.rotation_due(), "no open file, nothing to rotate"


def test_a_torn_write_is_cut_and_the_open_file_closed(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    for number in range(5):
        writer.append(_records(number))
    open_path = _crash(writer)
    whole = open_path.stat().st_size
    torn = _records(5).data
    with open_path.open("ab") as handle:
        handle.write(torn[: len(torn) // 3])  # a crash in the middle of a write

    recovered = recover(tmp_path)

    assert recovered.truncated_bytes == len(torn) // 3
    assert recovered.positions == {(TOPIC, 0): 5}
    assert len(recovered.closed) == 1
    assert recovered.closed[0].path.stat().st_size == whole
    assert _archived_offsets(tmp_path) == [0, 1, 2, 3, 4]
    assert recover(tmp_path).positions == {(TOPIC, 0): 5}, "recovery is idempotent"


def test_a_response_without_its_metadata_record_is_cut(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(_records(0))
    open_path = _crash(writer)
    records = _records(1)
    with open_path.open("ab") as handle:
        handle.write(records.data[: records.response_length])
    recovered = recover(tmp_path)
    assert recovered.truncated_bytes == records.response_length
    assert recovered.positions == {(TOPIC, 0): 1}


def test_garbage_after_the_last_page_is_cut(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(_records(0))
    open_path = _crash(writer)
    with open_path.open("ab") as handle:
        handle.write(b"\x1f\x8b\x08\x00garbage")
    assert recover(tmp_path).positions == {(TOPIC, 0): 1}
    assert _archived_offsets(tmp_path) == [0]


def test_an_open_file_without_pages_is_removed(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(_records(0))
    open_path = _crash(writer)
    data = open_path.read_bytes()
    first_page = scan_file(open_path).entries[0].offset
    open_path.write_bytes(data[: first_page + 10])  # only the warcinfo survived whole
    recovered = recover(tmp_path)
    assert not list(tmp_path.glob("*.warc.gz*"))
    assert recovered.positions == {}


def test_a_file_closed_after_the_last_state_update_is_counted_from_its_index(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(_records(0))
    writer.close()
    state_before = (tmp_path / STATE_FILE).read_bytes()
    writer.append(_records(1, partition=1))
    writer.close()
    # A crash between the rename and the state file's update: the state knows only the first file.
    (tmp_path / STATE_FILE).write_bytes(state_before)
    assert recover(tmp_path).positions == {(TOPIC, 0): 1, (TOPIC, 1): 2}


def test_without_a_state_file_every_closed_file_counts(tmp_path: Path) -> None:
    writer = _writer(tmp_path, rotate_bytes=3000)
    for number in range(6):
        writer.append(_records(number, partition=number % 2))
    writer.close()
    (tmp_path / STATE_FILE).unlink()
    for index in tmp_path.glob("*.cdxj"):
        index.unlink()  # and no index either: the records themselves are read
    recovered = recover(tmp_path)
    assert recovered.positions == {(TOPIC, 0): 5, (TOPIC, 1): 6}
    assert recovered.scanned_files == len(list(tmp_path.glob("*.warc.gz")))


def test_sequences_continue_after_a_restart(tmp_path: Path) -> None:
    writer = _writer(tmp_path)
    writer.append(_records(0))
    first = writer.close()
    second_writer = _writer(tmp_path)
    second_writer.append(_records(1))
    second = second_writer.close()
    assert first is not None
    assert second is not None
    first_name, second_name = parse_name(first.path.name), parse_name(second.path.name)
    assert first_name is not None
    assert second_name is not None
    assert second_name.sequence == first_name.sequence + 1


def test_one_archiver_per_directory(tmp_path: Path) -> None:
    with locked(tmp_path), pytest.raises(ArchiveLockedError), locked(tmp_path):
        pass
    with locked(tmp_path):
        pass  # released after use
