"""A raw page and its Kafka position as WARC records: HTTP response and our metadata, a gzip member each."""

from __future__ import annotations

import re
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from io import BytesIO
from typing import Any

import orjson
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.records import RawPage

METADATA_CONTENT_TYPE = "application/json"
# Marks a metadata record as ours, so a reader knows the JSON's shape (and its version).
METADATA_FORMAT = "newsfeed.archive.v1"
SOFTWARE = "newsfeed archiver (warcio)"
# They described the bytes on the wire; the archived body is the decoded page re-encoded as UTF-8, so a
# length, transfer coding or content coding of the original response would be false for it.
WIRE_HEADERS = frozenset({"content-encoding", "transfer-encoding", "content-length"})
DEFAULT_GZIP_LEVEL = 6
# Record ids derive from the Kafka position: writing the same record again gives the same id.
_RECORD_NAMESPACE = uuid.UUID("d481093f-8d17-42ec-aa28-25fcb3b93f3a")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CHARSET = re.compile(r";\s*charset\s*=\s*[^;]*", re.IGNORECASE)
_LINE_BREAKS = re.compile(r"[\r\n]+")


@dataclass(frozen=True, slots=True)
class KafkaPosition:
    """Where a raw page was in the topic: what makes every archived record unique, and its event time."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int

    def as_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "timestamp_ms": self.timestamp_ms,
        }

    @classmethod
    def from_json(cls, data: Any) -> KafkaPosition | None:
        """The position a metadata record or index line gives, or None when it is missing or malformed."""
        if not isinstance(data, dict):
            return None
        topic = data.get("topic")
        numbers = [data.get(name) for name in ("partition", "offset", "timestamp_ms")]
        if not isinstance(topic, str):
            return None
        whole = [number for number in numbers if isinstance(number, int) and not isinstance(number, bool)]
        if len(whole) != len(numbers):
            return None
        partition, offset, timestamp = whole
        return cls(topic, partition, offset, timestamp)


@dataclass(frozen=True, slots=True)
class PageRecords:
    """One page's two gzip members (response, then metadata) and what its index line needs."""

    data: bytes
    response_length: int
    url: str
    warc_date: datetime
    mime: str
    status: int
    payload_digest: str
    position: KafkaPosition


def page_records(
    page: RawPage, position: KafkaPosition, *, gzip_level: int = DEFAULT_GZIP_LEVEL
) -> PageRecords:
    """The response record (status line, the page's headers, the HTML as UTF-8) and the metadata record
    (every field of the page but the HTML, and the Kafka position), each compressed on its own so that a
    reader can seek to either."""
    moment = page_time(page, position)
    date = warc_date(moment)
    target = page["final_url"] or page["url"]
    response_id = record_id(position, "response")
    body = page["html"].encode("utf-8", errors="surrogatepass")
    buffer = BytesIO()
    writer = WARCWriter(buffer, gzip=False)
    response = writer.create_warc_record(
        target,
        "response",
        payload=BytesIO(body),
        length=len(body),
        http_headers=StatusAndHeaders(
            status_line(page["status"]), http_headers(page, len(body)), protocol="HTTP/1.1"
        ),
        warc_headers_dict={"WARC-Record-ID": response_id, "WARC-Date": date},
    )
    writer.write_record(response)
    response_bytes = buffer.getvalue()
    metadata = orjson.dumps(
        {
            "format": METADATA_FORMAT,
            "page": {name: value for name, value in page.items() if name != "html"},
            "kafka": position.as_json(),
        }
    )
    buffer.seek(0)
    buffer.truncate()
    writer.write_record(
        writer.create_warc_record(
            target,
            "metadata",
            payload=BytesIO(metadata),
            length=len(metadata),
            warc_content_type=METADATA_CONTENT_TYPE,
            warc_headers_dict={
                "WARC-Record-ID": record_id(position, "metadata"),
                "WARC-Date": date,
                "WARC-Concurrent-To": response_id,
                "WARC-Refers-To": response_id,
            },
        )
    )
    response_member = gzip_member(response_bytes, gzip_level)
    return PageRecords(
        data=response_member + gzip_member(buffer.getvalue(), gzip_level),
        response_length=len(response_member),
        url=target,
        warc_date=moment,
        mime=_mime(page["headers"]),
        status=page["status"],
        payload_digest=response.rec_headers.get_header("WARC-Payload-Digest") or "",
        position=position,
    )


def warcinfo_record(created: datetime, *, gzip_level: int = DEFAULT_GZIP_LEVEL) -> bytes:
    """The record that opens every file: who wrote it and in what format. It has no WARC-Filename, since
    a file's final name depends on the records still to come."""
    buffer = BytesIO()
    writer = WARCWriter(buffer, gzip=False)
    record = writer.create_warcinfo_record(
        "",
        {
            "software": SOFTWARE,
            "format": "WARC File Format 1.0",
            "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.0/",
            "description": f"raw pages of the newsfeed pipeline; metadata records are {METADATA_FORMAT}",
        },
    )
    record.rec_headers.replace_header("WARC-Date", warc_date(created))
    writer.write_record(record)
    return gzip_member(buffer.getvalue(), gzip_level)


def gzip_member(data: bytes, level: int = DEFAULT_GZIP_LEVEL) -> bytes:
    """One complete gzip member: records compressed apart can be read from their own offset."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return compressor.compress(data) + compressor.flush()


def record_id(position: KafkaPosition, kind: str) -> str:
    name = f"{position.topic}/{position.partition}/{position.offset}/{kind}"
    return f"<urn:uuid:{uuid.uuid5(_RECORD_NAMESPACE, name)}>"


def page_time(page: RawPage, position: KafkaPosition) -> datetime:
    """When the page was fetched (WARC-Date), or the Kafka timestamp for a page without a readable one."""
    try:
        moment = datetime.fromisoformat(page["fetched_at"])
    except (ValueError, TypeError):
        return datetime.fromtimestamp(position.timestamp_ms / 1000, UTC)
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def warc_date(moment: datetime) -> str:
    """WARC/1.0's W3C date with second precision, in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def status_line(status: int) -> str:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Unknown"
    return f"{status} {phrase}"


def http_headers(page: RawPage, body_length: int) -> list[tuple[str, str]]:
    """The page's headers as the archived body makes them true: wire codings dropped, the length of the
    UTF-8 body, and a declared charset replaced by UTF-8. Values lose line breaks (no header injection)."""
    headers: list[tuple[str, str]] = []
    for name, value in page["headers"].items():
        lowered = name.lower()
        if lowered in WIRE_HEADERS or not _TOKEN.fullmatch(name):
            continue
        cleaned = _LINE_BREAKS.sub(" ", value).strip()
        if lowered == "content-type":
            cleaned = utf8_content_type(cleaned)
        headers.append((name, cleaned))
    headers.append(("Content-Length", str(body_length)))
    return headers


def utf8_content_type(value: str) -> str:
    """`text/html; charset=iso-8859-1` → `text/html; charset=utf-8` (a type without charset gains one)."""
    mime = _CHARSET.sub("", value).strip().rstrip(";").strip()
    return f"{mime}; charset=utf-8" if mime else value


def _mime(headers: dict[str, str]) -> str:
    for name, value in headers.items():
        if name.lower() == "content-type":
            return value.split(";", 1)[0].strip().lower()
    return "unk"
