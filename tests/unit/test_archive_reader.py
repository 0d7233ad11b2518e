"""Reading WARC files back into raw pages: ours exactly as they were in the topic, any other crawler's like
our crawler would have published them, and damaged or odd files without a crash."""

from __future__ import annotations

import gzip
import hashlib
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path

from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.archive.files import ArchiveWriter, recover
from pipeline.archive.reader import TimeRange, read_archive
from pipeline.archive.warc_writer import KafkaPosition, page_records
from pipeline.records import RawPage

TOPIC = "raw"
BASE = datetime(2026, 1, 1, tzinfo=UTC)
BASE_MS = int(BASE.timestamp() * 1000)
HTML = "<html><head><title>{title}</title></head><body><p>{text}</p></body></html>"


def _page(number: int) -> RawPage:
    html = HTML.format(title=f"Story {number}", text="Grüße " * 50)
    return RawPage(
        url=f"http://news.example.test/{number}",
        final_url=f"http://news.example.test/{number}?via=feed",
        status=200,
        headers={"content-type": "text/html; charset=iso-8859-1", "etag": f'"{number}"'},
        fetched_at=f"2026-01-01T00:00:{number:02d}.5+00:00",
        source="feed",
        content_hash="sha256:" + hashlib.sha256(html.encode()).hexdigest(),
        html=html,
        trace_id=f"trace-{number}",
        extra_field="kept",  # type: ignore[typeddict-unknown-key]
    )


def _our_archive(directory: Path, count: int, *, rotate_bytes: int = 1024**3) -> list[tuple[int, RawPage]]:
    """Pages 0..count-1 on two partitions; Kafka times one second apart, in reverse of offset order on
    partition 1 so that time and not offset decides the order."""
    writer = ArchiveWriter(
        directory, rotate_bytes=rotate_bytes, rotate_seconds=1e9, gzip_level=6, next_sequence=0
    )
    written = []
    for number in range(count):
        partition = number % 2
        moment = BASE_MS + number * 1000
        writer.append(page_records(_page(number), KafkaPosition(TOPIC, partition, number, moment)))
        written.append((moment, _page(number)))
    writer.close()
    return written


def test_our_pages_come_back_exactly_and_in_replay_order(tmp_path: Path) -> None:
    written = _our_archive(tmp_path, 6, rotate_bytes=2500)
    assert len(list(tmp_path.glob("*.warc.gz"))) > 1
    read = read_archive(tmp_path, TimeRange())
    assert [item.page for item in read.pages] == [page for _, page in sorted(written, key=lambda w: w[0])]
    assert [item.order for item in read.pages] == sorted(item.order for item in read.pages)
    assert read.counts["archive:pages"] == 6
    assert read.pages[0].position == KafkaPosition(TOPIC, 0, 0, BASE_MS)


def test_a_time_range_reads_only_its_pages_through_the_index(tmp_path: Path) -> None:
    _our_archive(tmp_path, 8)
    window = TimeRange(BASE + timedelta(seconds=2), BASE + timedelta(seconds=5))
    read = read_archive(tmp_path, window)
    assert [item.page["url"] for item in read.pages] == [f"http://news.example.test/{n}" for n in (2, 3, 4)]
    assert read.counts["archive:read-by-index"] == 1


def test_files_outside_the_range_are_not_opened(tmp_path: Path) -> None:
    _our_archive(tmp_path, 4, rotate_bytes=1)  # one page per file
    read = read_archive(tmp_path, TimeRange(BASE + timedelta(seconds=3)))
    assert [item.page["url"] for item in read.pages] == ["http://news.example.test/3"]
    assert read.counts["archive:files-outside-range"] == 3


def test_include_chooses_by_kafka_position(tmp_path: Path) -> None:
    _our_archive(tmp_path, 6)
    read = read_archive(tmp_path, TimeRange(), include=lambda p: p is not None and p.partition == 1)
    assert [item.position.offset for item in read.pages if item.position] == [1, 3, 5]


def test_a_single_file_can_be_given(tmp_path: Path) -> None:
    _our_archive(tmp_path, 2)
    (path,) = tmp_path.glob("*.warc.gz")
    assert len(read_archive(path, TimeRange()).pages) == 2


def test_an_open_file_being_written_is_read_too(tmp_path: Path) -> None:
    writer = ArchiveWriter(tmp_path, rotate_bytes=1024**3, rotate_seconds=1e9, gzip_level=6, next_sequence=0)
    writer.append(page_records(_page(0), KafkaPosition(TOPIC, 0, 0, BASE_MS)))
    writer.sync()
    try:
        assert [item.page for item in read_archive(tmp_path, TimeRange()).pages] == [_page(0)]
    finally:
        writer.close()


# --- other crawlers' files -------------------------------------------------------------------------------


def _response(
    writer: WARCWriter,
    url: str,
    body: bytes,
    *,
    status: str = "200 OK",
    headers: list[tuple[str, str]] | None = None,
    date: str = "2026-01-01T00:00:00Z",
    with_request: bool = False,
) -> None:
    http = StatusAndHeaders(
        status, headers if headers is not None else [("Content-Type", "text/html")], protocol="HTTP/1.1"
    )
    record = writer.create_warc_record(
        url,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=http,
        warc_headers_dict={"WARC-Date": date},
    )
    if with_request:
        request = writer.create_warc_record(
            url,
            "request",
            http_headers=StatusAndHeaders("GET / HTTP/1.1", [("Host", "example.test")], is_http_request=True),
        )
        writer.write_request_response_pair(request, record)
    else:
        writer.write_record(record)


def _chunked(data: bytes) -> bytes:
    return (
        b"".join(f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (data[:50], data[50:]))
        + b"0\r\n\r\n"
    )


def _foreign_file(path: Path, *, gzip_records: bool = True) -> None:
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=gzip_records)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "another crawler"}))
        story = HTML.format(title="Plain", text="A story about the economy.").encode()
        _response(writer, "http://other.test/plain", story, with_request=True, date="2026-01-01T00:00:03Z")
        _response(writer, "http://other.test/missing", b"<html>gone</html>", status="404 Not Found")
        _response(
            writer, "http://other.test/logo.png", b"\x89PNG....", headers=[("Content-Type", "image/png")]
        )
        cyrillic = HTML.format(title="Привет", text="Новости дня").encode("cp1251")
        _response(
            writer,
            "http://other.test/cp1251",
            cyrillic,
            headers=[("Content-Type", "text/html; charset=windows-1251")],
            date="2026-01-01T00:00:01Z",
        )
        _response(
            writer,
            "http://other.test/bad-charset",
            HTML.format(title="Ünïcode", text="text").encode(),
            headers=[("Content-Type", "text/html; charset=x-no-such-charset")],
            date="2026-01-01T00:00:02Z",
        )
        _response(
            writer,
            "http://other.test/no-headers",
            HTML.format(title="Sniffed", text="t").encode(),
            headers=[],
        )
        compressed = gzip.compress(HTML.format(title="Coded", text="gzip and chunked " * 20).encode())
        _response(
            writer,
            "http://other.test/coded",
            _chunked(compressed),
            headers=[
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Encoding", "gzip"),
                ("Transfer-Encoding", "chunked"),
            ],
        )
        writer.write_record(
            writer.create_revisit_record(
                "http://other.test/plain", "sha1:AAAA", "http://other.test/plain", "2026-01-01T00:00:03Z"
            )
        )


def test_another_crawlers_file_gives_its_200_html_pages(tmp_path: Path) -> None:
    _foreign_file(tmp_path / "CC-NEWS-20260101000000-00000.warc.gz")
    read = read_archive(tmp_path, TimeRange())
    pages = {item.page["url"]: item.page for item in read.pages}
    assert set(pages) == {
        "http://other.test/plain",
        "http://other.test/cp1251",
        "http://other.test/bad-charset",
        "http://other.test/no-headers",
        "http://other.test/coded",
    }
    assert read.counts["skipped:status-404"] == 1
    assert read.counts["skipped:not-html"] == 1
    assert read.counts["skipped:revisit"] == 1
    assert "Новости дня" in pages["http://other.test/cp1251"]["html"]
    assert "Ünïcode" in pages["http://other.test/bad-charset"]["html"]
    assert "gzip and chunked" in pages["http://other.test/coded"]["html"]
    plain = pages["http://other.test/plain"]
    assert plain["status"] == 200
    assert plain["final_url"] == plain["url"]
    assert plain["fetched_at"] == "2026-01-01T00:00:03+00:00"
    assert plain["headers"] == {"content-type": "text/html"}
    assert plain["source"] == "warc:CC-NEWS-20260101000000-00000.warc.gz"
    body = HTML.format(title="Plain", text="A story about the economy.").encode()
    assert plain["content_hash"] == "sha256:" + hashlib.sha256(body).hexdigest()
    # Time order: WARC-Date, then place in the file.
    assert [item.page["url"] for item in read.pages][:3] == [
        "http://other.test/no-headers",
        "http://other.test/coded",
        "http://other.test/cp1251",
    ]
    again = read_archive(tmp_path, TimeRange())
    assert [item.page for item in again.pages] == [item.page for item in read.pages], "trace ids are stable"


def test_an_uncompressed_warc_is_read_too(tmp_path: Path) -> None:
    _foreign_file(tmp_path / "crawl.warc", gzip_records=False)
    assert len(read_archive(tmp_path, TimeRange()).pages) == 5


def test_a_truncated_file_keeps_the_pages_before_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "cut.warc.gz"
    _foreign_file(path)
    data = path.read_bytes()
    with path.open("rb") as handle:
        iterator = ArchiveIterator(handle)
        spans = [
            (
                record.rec_headers.get_header("WARC-Target-URI"),
                iterator.get_record_offset(),
                iterator.get_record_length(),
            )
            for record in iterator
            if record.rec_type == "response"
        ]
    for number, (url, offset, length) in enumerate(spans):
        # (A cut into the gzip trailer alone loses no content: such a record is whole.)
        for cut in (offset + 30, offset + length // 2):
            path.write_bytes(data[:cut])
            read = read_archive(tmp_path, TimeRange())
            urls = {item.page["url"] for item in read.pages}
            assert url not in urls, f"{url} cut at {cut} is not read half"
            assert urls <= {earlier for earlier, _, _ in spans[:number]}
            damage = {"skipped:truncated", "skipped:truncated-tail", "skipped:unreadable-tail"}
            assert damage & set(read.counts), (cut, read.counts)


def test_our_truncated_record_is_skipped_not_half_read(tmp_path: Path) -> None:
    _our_archive(tmp_path, 3)
    (path,) = tmp_path.glob("*.warc.gz")
    for index in tmp_path.glob("*.cdxj"):
        index.unlink()
    data = path.read_bytes()
    path.write_bytes(data[:-200])
    read = read_archive(tmp_path, TimeRange())
    assert [item.page for item in read.pages] == [_page(0), _page(1)]
    assert read.counts["skipped:truncated"] == 1
    path.write_bytes(data[: -len(data) // 5])  # into the last response: its metadata is gone
    read = read_archive(tmp_path, TimeRange())
    assert [item.page for item in read.pages] == [_page(0), _page(1)]
    assert read.counts["skipped:truncated"] + read.counts["skipped:no-metadata"] == 1


def test_a_foreign_record_without_a_date_is_counted(tmp_path: Path) -> None:
    path = tmp_path / "odd.warc.gz"
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        _response(writer, "http://other.test/x", b"<html>x</html>", date="yesterday")
    read = read_archive(tmp_path, TimeRange())
    assert read.pages == []
    assert read.counts["skipped:bad-date"] == 1


def test_not_a_warc_at_all(tmp_path: Path) -> None:
    (tmp_path / "junk.warc.gz").write_bytes(b"this is no archive")
    read = read_archive(tmp_path, TimeRange())
    assert read.pages == []
    assert read.counts["skipped:unreadable-tail"] == 1


def test_recovered_archive_and_foreign_files_read_together(tmp_path: Path) -> None:
    _our_archive(tmp_path, 2)
    _foreign_file(tmp_path / "other.warc.gz")
    recover(tmp_path)
    read = read_archive(tmp_path, TimeRange())
    assert sum(item.position is not None for item in read.pages) == 2
    assert sum(item.position is None for item in read.pages) == 5
