"""WARC records of a raw page: the response other tools read, and our metadata that makes it replayable."""

from __future__ import annotations

import base64
import hashlib
import zlib
from datetime import UTC, datetime
from io import BytesIO

import orjson
from warcio.archiveiterator import ArchiveIterator

from pipeline.archive.warc_writer import (
    METADATA_FORMAT,
    KafkaPosition,
    http_headers,
    page_records,
    utf8_content_type,
    warcinfo_record,
)
from pipeline.records import RawPage

POSITION = KafkaPosition("newsfeed.raw-pages.v1", 3, 1234, 1_767_225_600_000)


def _page(**changes: object) -> RawPage:
    page = RawPage(
        url="https://news.example.test/a",
        final_url="https://www.news.example.test/a?b=1",
        status=200,
        headers={
            "content-type": "text/html; charset=ISO-8859-1",
            "content-encoding": "gzip",
            "content-length": "99",
            "etag": '"abc"',
        },
        fetched_at="2026-01-01T00:00:05.250000+00:00",
        source="https://news.example.test/feed.xml",
        content_hash="sha256:" + "0" * 64,
        html="<html><body><p>Grüße aus Köln</p></body></html>",
        trace_id="trace-1",
    )
    page.update(changes)  # type: ignore[typeddict-item]
    return page


def _members(data: bytes) -> list[bytes]:
    members = []
    while data:
        decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
        members.append(decompressor.decompress(data))
        assert decompressor.eof
        data = decompressor.unused_data
    return members


def test_a_page_is_a_response_and_a_metadata_record_each_its_own_gzip_member() -> None:
    records = page_records(_page(), POSITION)
    response, metadata = _members(records.data)
    assert _members(records.data[: records.response_length]) == [response]
    head, _, body = response.partition(b"\r\n\r\n")
    assert head.startswith(b"WARC/1.0\r\n")
    assert b"WARC-Type: response" in head
    assert b"WARC-Target-URI: https://www.news.example.test/a?b=1" in head
    assert b"WARC-Date: 2026-01-01T00:00:05Z" in head
    http_head, _, payload = body.partition(b"\r\n\r\n")
    assert http_head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert payload.rstrip(b"\r\n") == _page()["html"].encode()
    assert b"metadata" in metadata.split(b"\r\n\r\n")[0]


def test_the_response_headers_are_true_for_the_utf8_body() -> None:
    page = _page()
    body = page["html"].encode()
    headers = dict(http_headers(page, len(body)))
    assert "content-encoding" not in headers
    assert "content-length" not in headers
    assert headers["Content-Length"] == str(len(body))
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["etag"] == '"abc"'


def test_header_values_cannot_inject_lines_and_bad_names_are_dropped() -> None:
    page = _page(headers={"x-note": "a\r\nSet-Cookie: evil=1", "bad name": "x", "content-type": "text/html"})
    headers = http_headers(page, 10)
    assert ("x-note", "a Set-Cookie: evil=1") in headers
    assert all(name != "bad name" for name, _ in headers)
    assert ("content-type", "text/html; charset=utf-8") in headers


def test_content_type_charset_becomes_utf8() -> None:
    assert utf8_content_type("text/html; charset=windows-1251") == "text/html; charset=utf-8"
    assert utf8_content_type('text/html;charset="koi8-r"; q=1') == "text/html; q=1; charset=utf-8"
    assert utf8_content_type("text/html") == "text/html; charset=utf-8"


def test_metadata_holds_every_field_but_the_html_and_links_the_response() -> None:
    records = page_records(_page(), POSITION)
    iterator = ArchiveIterator(BytesIO(records.data))
    response = next(iterator)
    response_id = response.rec_headers.get_header("WARC-Record-ID")
    response.raw_stream.read()
    metadata = next(iterator)
    assert metadata.rec_type == "metadata"
    assert metadata.rec_headers.get_header("Content-Type") == "application/json"
    assert metadata.rec_headers.get_header("WARC-Concurrent-To") == response_id
    assert metadata.rec_headers.get_header("WARC-Refers-To") == response_id
    described = orjson.loads(metadata.raw_stream.read())
    assert described["format"] == METADATA_FORMAT
    assert described["kafka"] == {
        "topic": POSITION.topic,
        "partition": 3,
        "offset": 1234,
        "timestamp_ms": POSITION.timestamp_ms,
    }
    expected = dict(_page())
    del expected["html"]
    assert described["page"] == expected


def test_other_tools_read_the_records_and_their_digests_hold() -> None:
    records = page_records(_page(), POSITION)
    iterator = ArchiveIterator(BytesIO(records.data), check_digests=True)
    kinds = []
    for record in iterator:
        kinds.append(record.rec_type)
        content = record.content_stream().read()
        if record.rec_type == "response":
            assert content == _page()["html"].encode()
            digest = "sha1:" + base64.b32encode(hashlib.sha1(content).digest()).decode()
            assert records.payload_digest == digest
    assert kinds == ["response", "metadata"]
    assert iterator.err_count == 0


def test_the_same_position_gives_the_same_bytes() -> None:
    assert page_records(_page(), POSITION).data == page_records(_page(), POSITION).data
    other = KafkaPosition(POSITION.topic, POSITION.partition, POSITION.offset + 1, POSITION.timestamp_ms)
    assert page_records(_page(), POSITION).data != page_records(_page(), other).data


def test_index_fields_and_fallbacks() -> None:
    records = page_records(_page(status=299, fetched_at="not a time", headers={}), POSITION)
    assert records.mime == "unk"
    assert records.warc_date == datetime.fromtimestamp(POSITION.timestamp_ms / 1000, UTC)
    response = _members(records.data)[0]
    assert b"HTTP/1.1 299 Unknown\r\n" in response


def test_a_lone_surrogate_in_the_html_does_not_stop_the_archive() -> None:
    records = page_records(_page(html="a\udc80b"), POSITION)
    assert records.data


def test_warcinfo_opens_a_file() -> None:
    data = warcinfo_record(datetime(2026, 1, 1, tzinfo=UTC))
    record = next(ArchiveIterator(BytesIO(data)))
    assert record.rec_type == "warcinfo"
    assert record.rec_headers.get_header("WARC-Date") == "2026-01-01T00:00:00Z"
    assert b"newsfeed" in record.raw_stream.read()
