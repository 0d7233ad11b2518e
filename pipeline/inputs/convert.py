"""Turn one message of another team's topic into our raw page or article, or say why it cannot be."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.contracts import ContractError, Contracts
from pipeline.crawl.urls import canonical_url
from pipeline.dedup.fingerprint import content_hash
from pipeline.extract.extractor import article_id
from pipeline.settings import InputTopicSettings
from pipeline.stream.decode import InvalidRecordError, parse_record

SCHEMAS = {"raw": "raw_page.v1", "articles": "article.v1"}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Converted:
    """A record ready for our entry topic, with the key and schema it is published under."""

    record: dict[str, Any]
    key: bytes
    schema: str


def convert(value: bytes | None, spec: InputTopicSettings, contracts: Contracts, now: datetime) -> Converted:
    """Validate and map one message; raises InvalidRecordError with a short reason and a detail."""
    if value is not None and len(value) > spec.max_record_bytes:
        raise InvalidRecordError("oversize", f"{len(value)} bytes > {spec.max_record_bytes}")
    incoming = parse_record(value, spec.max_record_bytes)
    if not isinstance(incoming, dict):
        raise InvalidRecordError("schema", f"expected a JSON object, got {type(incoming).__name__}")
    if spec.format == "json":
        incoming = _mapped(incoming, spec, now)
    schema = SCHEMAS[spec.stage]
    try:
        contracts.validate(incoming, schema)
    except ContractError as error:
        raise InvalidRecordError("schema", str(error)) from error
    key = incoming["url"] if spec.stage == "raw" else incoming["content_hash"]
    return Converted(incoming, str(key).encode(), schema)


def _mapped(incoming: dict[str, Any], spec: InputTopicSettings, now: datetime) -> dict[str, Any]:
    """Our fields from theirs by the configured mapping; what they lack is derived or defaulted."""
    record: dict[str, Any] = {}
    for ours, path in spec.mapping.items():
        found = _lookup(incoming, path)
        if found is _MISSING:
            raise InvalidRecordError("missing-field", f"{path!r} (for {ours!r}) is not in the record")
        record[ours] = found
    source = f"input:{spec.name}"
    trace_id = record.get("trace_id") or uuid.uuid4().hex
    if spec.stage == "raw":
        html = record["html"]
        digest = hashlib.sha256(html.encode()).hexdigest() if isinstance(html, str) else ""
        return {
            "final_url": record["url"],
            "status": 200,
            "headers": {},
            "fetched_at": now.isoformat(),
            "source": source,
            "content_hash": f"sha256:{digest}",
            **record,
            "trace_id": trace_id,
        }
    url, text = record["url"], record["text"]
    if not isinstance(url, str) or not isinstance(text, str):
        raise InvalidRecordError("schema", "'url' and 'text' must be strings")
    canonical = record.get("canonical_url") or canonical_url(url)
    return {
        "id": article_id(canonical),
        "canonical_url": canonical,
        "published": None,
        "authors": [],
        "language": None,
        "site_name": None,
        "description": None,
        "categories": [],
        "image": None,
        "fetched_at": now.isoformat(),
        "source": source,
        "content_hash": content_hash(text),
        "extractor": source,
        **record,
        "trace_id": trace_id,
    }


def _lookup(record: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(record, dict) and part in record:
            record = record[part]
        elif isinstance(record, list) and part.isdigit() and int(part) < len(record):
            record = record[int(part)]
        else:
            return _MISSING
    return record
