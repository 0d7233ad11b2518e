"""Time in one place: the default clock and conversion of ISO 8601 stamps to comparable UTC strings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The wall clock, in UTC; stages take a Clock argument so tests can pass a fixed one."""
    return datetime.now(UTC)


def utc_iso(stamp: str) -> str:
    """The same instant as a UTC ISO string, so text order is time order; naive stamps are taken as UTC.

    Raises ValueError for text that is not ISO 8601.
    """
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()
