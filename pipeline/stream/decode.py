"""Decode and validate an incoming record against its contract, or say precisely why not."""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.contracts import ContractError, Contracts


class InvalidRecordError(ValueError):
    """A record that breaks its contract; `reason` is a short counted label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_record(value: bytes | None, max_bytes: int) -> Any:
    """The record's JSON, parsed; raises InvalidRecordError for no value, too many bytes, or bad JSON."""
    if not value:
        raise InvalidRecordError("empty", "record has no value")
    if len(value) > max_bytes:
        raise InvalidRecordError("oversize", f"{len(value)} bytes > {max_bytes}")
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise InvalidRecordError("invalid-json", str(error)) from error


def decode_record(value: bytes | None, schema: str, contracts: Contracts, max_bytes: int) -> Any:
    """The parsed record, valid against `schema`; raises InvalidRecordError otherwise."""
    record = parse_record(value, max_bytes)
    try:
        contracts.validate(record, schema)
    except ContractError as error:
        raise InvalidRecordError("schema", str(error)) from error
    return record
