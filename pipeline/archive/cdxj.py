"""CDXJ index lines (pywb's format): SURT key, 14-digit time, JSON with where the response record lies."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import orjson

from pipeline.archive.warc_writer import KafkaPosition

_DEFAULT_PORTS = {"http": 80, "https": 443}
_WWW = re.compile(r"^www\d*\.")


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One response record: its URL and capture time, and the byte range of its gzip member in `filename`.
    `kafka` is set for records of our archiver: their topic position and Kafka timestamp."""

    url: str
    captured: datetime
    mime: str
    status: int
    digest: str
    length: int
    offset: int
    filename: str
    kafka: KafkaPosition | None = None

    @property
    def event_ms(self) -> int | None:
        """The record's time on the replay axis, to the millisecond (None: only the capture second)."""
        return self.kafka.timestamp_ms if self.kafka else None


def surt_key(url: str) -> str:
    """The SURT form CDX indexes sort by: `http://www.Example.com:80/a?b=2&a=1` → `com,example)/a?a=1&b=2`
    (scheme, `www.`, default port and fragment dropped, host labels reversed, query sorted, lower case)."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").strip(".").lower()
    try:
        ipaddress.ip_address(host)
        host_key = host
    except ValueError:
        host_key = ",".join(reversed(_WWW.sub("", host).split(".")))
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
        host_key += f":{port}"
    query = "&".join(sorted(parts.query.split("&"))) if parts.query else ""
    return f"{host_key}){parts.path or '/'}{'?' + query if query else ''}".lower()


def timestamp14(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def cdxj_line(entry: IndexEntry) -> str:
    """`<surt> <yyyymmddhhmmss> {json}`; numbers are strings as pywb writes them."""
    fields: dict[str, object] = {
        "url": entry.url,
        "mime": entry.mime,
        "status": str(entry.status),
        "digest": entry.digest,
        "length": str(entry.length),
        "offset": str(entry.offset),
        "filename": entry.filename,
    }
    if entry.kafka is not None:
        fields["kafka"] = entry.kafka.as_json()
    return f"{surt_key(entry.url)} {timestamp14(entry.captured)} {orjson.dumps(fields).decode()}"


def parse_cdxj_line(line: str) -> IndexEntry | None:
    """The entry of one line, or None for a blank, comment or malformed line (an index is only a help)."""
    parts = line.strip().split(" ", 2)
    if len(parts) != 3 or line.startswith("!"):
        return None
    _, stamp, block = parts
    try:
        fields = orjson.loads(block)
        captured = datetime.strptime(stamp[:14].ljust(14, "0"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        return IndexEntry(
            url=str(fields["url"]),
            captured=captured,
            mime=str(fields.get("mime", "")),
            status=int(fields.get("status") or 0),
            digest=str(fields.get("digest", "")),
            length=int(fields["length"]),
            offset=int(fields["offset"]),
            filename=str(fields["filename"]),
            kafka=KafkaPosition.from_json(fields.get("kafka")),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None


def index_text(entries: list[IndexEntry]) -> str:
    """A whole index: lines sorted as CDXJ requires (by key, then time)."""
    return "".join(f"{line}\n" for line in sorted(cdxj_line(entry) for entry in entries))


def read_index(path: Path) -> list[IndexEntry]:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return [entry for line in lines if (entry := parse_cdxj_line(line)) is not None]
