"""The WARC archive on the real broker: every page exactly once across a kill -9 and restart, replays from
the archive equal to replays from Kafka, another crawler's WARC processed, and the archive picked on its own
for a range older than the topic holds."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import RecordsToDelete
from aiokafka.structs import OffsetAndMetadata
from warcio.archiveiterator import ArchiveIterator
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.archive.cdxj import read_index
from pipeline.archive.files import index_name, scan_file
from pipeline.archive.warc_writer import KafkaPosition, page_records
from pipeline.cli import main
from pipeline.ops.isolated import start_command, stop_process, with_overrides
from pipeline.ops.kafka import client_options, topic_partitions
from pipeline.ops.topics import admin_client
from pipeline.records import RawPage, dumps, loads
from pipeline.replay.ranges import RetentionError
from pipeline.replay.run import ReplayOptions, run_replay, shadow_topic
from pipeline.settings import Settings
from tests.conftest import IsolatedPipeline
from tests.kafka_helpers import read_topic
from tests.pages import BASE_URL, demo_raw_pages, raw_page

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DAY = timedelta(days=1)
# Within the raw topic's retention (7 days), or the broker would delete the test's records.
FIRST_DAY = (datetime.now(UTC) - 3 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
PAGES = 200
BEFORE_KILL = 120


def _archive_overrides(isolated: IsolatedPipeline, **archive: Any) -> dict[str, Any]:
    run_id = isolated.settings.worker.app_id
    overrides = dict(isolated.overrides)
    overrides["archive"] = {
        "dir": str(isolated.state_dir / "archive"),
        "group_id": f"{run_id}-archiver",
        **archive,
    }
    return overrides


def _settings(isolated: IsolatedPipeline, overrides: dict[str, Any]) -> Settings:
    return with_overrides(isolated.settings, {"archive": overrides["archive"]})


def _many_pages(count: int) -> list[RawPage]:
    demo = demo_raw_pages()
    return [
        raw_page(f"{BASE_URL}/archive-test/{number}.html", demo[number % len(demo)]["html"])
        for number in range(count)
    ]


def _dated_pages() -> list[tuple[datetime, RawPage]]:
    """The demo's eight pages over three days, as in the Kafka replay tests."""
    days = [0, 0, 0, 1, 1, 1, 2, 2]
    return [
        (FIRST_DAY + days[n] * DAY + timedelta(hours=12, minutes=n), page)
        for n, page in enumerate(demo_raw_pages())
    ]


async def _produce(settings: Settings, dated: list[tuple[datetime | None, RawPage]]) -> None:
    producer = AIOKafkaProducer(**client_options(settings.kafka), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for moment, page in dated:
            await producer.send_and_wait(
                settings.topics.raw_pages,
                dumps(page),
                key=page["url"].encode(),
                timestamp_ms=int(moment.timestamp() * 1000) if moment else None,
            )
    finally:
        await producer.stop()


def _wait(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return condition()


def _archived_positions(directory: Path) -> Counter[tuple[int, int]]:
    """(partition, offset) of every page in the archive's files, open ones included, read with warcio as
    any other tool would: each metadata record names the Kafka record it came from."""
    found: Counter[tuple[int, int]] = Counter()
    for path in sorted(directory.glob("*.warc.gz*")):
        with path.open("rb") as handle:
            for record in ArchiveIterator(handle):
                if record.rec_type == "metadata":
                    try:
                        kafka = orjson.loads(record.raw_stream.read())["kafka"]
                    except orjson.JSONDecodeError:
                        continue  # a torn record at the end of an open file
                    found[(kafka["partition"], kafka["offset"])] += 1
    return found


def _pages_in_archive(directory: Path) -> int:
    pages = 0
    for path in directory.glob("*.warc.gz*"):
        try:
            pages += len(scan_file(path).entries)
        except FileNotFoundError:  # renamed by a rotation since the listing: counted at the next look
            continue
    return pages


def _run_archiver_until_idle(overrides: dict[str, Any], log: Path, idle_s: float = 6.0) -> dict[str, int]:
    process = start_command(["archive", "--until-idle", str(idle_s)], overrides, log)
    try:
        process.wait(timeout=300)
    finally:
        stop_process(process)
    assert process.returncode == 0, log.read_text()[-3000:]
    return _outcomes(log)


def _outcomes(log: Path) -> dict[str, int]:
    lines = [line for line in log.read_text().splitlines() if line.startswith('{"outcomes"')]
    assert lines, log.read_text()[-3000:]
    outcomes: dict[str, int] = json.loads(lines[-1])["outcomes"]
    return outcomes


async def _reset_group(settings: Settings, group: str) -> None:
    """Commit offset 0 everywhere: a restart must not lean on Kafka's committed offsets."""
    consumer = AIOKafkaConsumer(**client_options(settings.kafka), group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        topic = settings.topics.raw_pages
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        consumer.assign(partitions)
        await consumer.commit({tp: OffsetAndMetadata(0, "") for tp in partitions})
    finally:
        await consumer.stop()


async def _end_offsets(settings: Settings) -> dict[int, int]:
    consumer = AIOKafkaConsumer(**client_options(settings.kafka))
    await consumer.start()
    try:
        topic = settings.topics.raw_pages
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def _committed(settings: Settings, group: str) -> dict[int, int]:
    async with admin_client(settings) as admin:
        offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


def test_every_page_is_archived_exactly_once_across_a_kill_and_restart(isolated: IsolatedPipeline) -> None:
    overrides = _archive_overrides(isolated, rotate_bytes=150_000)
    settings = _settings(isolated, overrides)
    directory = isolated.state_dir / "archive"
    pages = _many_pages(PAGES)
    asyncio.run(_produce(settings, [(None, page) for page in pages[:BEFORE_KILL]]))

    log = isolated.state_dir / "archiver-1.log"
    first = start_command(["archive"], overrides, log)
    try:
        assert _wait(lambda: _pages_in_archive(directory) >= 40, 180), log.read_text()[-3000:]
        first.kill()  # kill -9: no chance to close the file it is writing
        first.wait(timeout=30)
    finally:
        stop_process(first)
    open_files = list(directory.glob("*.warc.gz.open"))
    assert len(open_files) == 1, "killed in the middle of a file"
    archived_before = _pages_in_archive(directory)
    # The kill can land right after a rotation: a file with no whole page yet is removed, not closed.
    closed_on_recovery = 1 if scan_file(open_files[0]).entries else 0
    # As if the kill had come in the middle of a write: half a page at the end of the open file.
    torn = page_records(pages[0], KafkaPosition(settings.topics.raw_pages, 0, 9_999, 0)).data
    with open_files[0].open("ab") as handle:
        handle.write(torn[: len(torn) // 2])
    # And as if the last batch's commit had not reached Kafka: the archive alone must say where to resume.
    asyncio.run(_reset_group(settings, settings.archive.group_id))

    asyncio.run(_produce(settings, [(None, page) for page in pages[BEFORE_KILL:]]))
    outcomes = _run_archiver_until_idle(overrides, isolated.state_dir / "archiver-2.log")

    assert outcomes["recovered:closed-files"] == closed_on_recovery
    assert outcomes["recovered:truncated-bytes"] == len(torn) // 2
    assert outcomes["archived"] == PAGES - archived_before
    assert not list(directory.glob("*.open")), "a clean stop leaves closed files only"
    ends = asyncio.run(_end_offsets(settings))
    produced = {(partition, offset) for partition, end in ends.items() for offset in range(end)}
    assert len(produced) == PAGES
    positions = _archived_positions(directory)
    assert set(positions) == produced, "every page is in the archive"
    assert set(positions.values()) == {1}, "and none twice"
    files = sorted(directory.glob("*.warc.gz"))
    assert len(files) >= 3, "rotated by size"
    assert asyncio.run(_committed(settings, settings.archive.group_id)) == ends, "progress committed"

    # The CDXJ index finds every page: its offset is the page's response record.
    urls = {page["final_url"] for page in pages}
    indexed = set()
    for path in files:
        entries = read_index(path.with_name(index_name(path.name)))
        assert entries
        with path.open("rb") as handle:
            for entry in entries:
                assert entry.filename == path.name
                handle.seek(entry.offset)
                record = next(iter(ArchiveIterator(handle)))
                assert record.rec_type == "response"
                assert record.rec_headers.get_header("WARC-Target-URI") == entry.url
                assert record.http_headers.get_statuscode() == "200"
                indexed.add(entry.url)
    assert indexed == urls


def _shadow(settings: Settings, into: str, expected: int) -> list[dict[str, Any]]:
    records = asyncio.run(read_topic(settings, shadow_topic(settings, into), expected, timeout_s=60))
    return sorted(
        ({k: v for k, v in loads(record.value).items() if k != "processed_at"} for record in records),
        key=lambda record: record["id"],
    )


def test_a_replay_from_the_archive_equals_a_replay_from_kafka(isolated: IsolatedPipeline) -> None:
    overrides = _archive_overrides(isolated)
    settings = _settings(isolated, overrides)
    dated = _dated_pages()
    asyncio.run(_produce(settings, list(dated)))
    outcomes = _run_archiver_until_idle(overrides, isolated.state_dir / "archiver.log")
    assert outcomes["archived"] == len(dated)

    start = FIRST_DAY + DAY - timedelta(hours=1)
    from_kafka = asyncio.run(run_replay(settings, ReplayOptions(start, None, "raw", "kafka")))
    from_archive = asyncio.run(run_replay(settings, ReplayOptions(start, None, "warc", "archive")))

    assert from_kafka.counts["records"] == from_archive.counts["records"] == 5
    assert from_archive.counts["enriched"] == from_kafka.counts["enriched"] > 0
    assert from_archive.as_json()["source"] == "warc"
    kafka_records = _shadow(settings, "kafka", from_kafka.counts["enriched"])
    archive_records = _shadow(settings, "archive", from_archive.counts["enriched"])
    assert len(archive_records) == from_archive.counts["enriched"]
    assert archive_records == kafka_records


def _other_crawlers_warc(path: Path) -> list[RawPage]:
    """A WARC as another crawler writes one (warcio's writer, CC-NEWS' layout): a request and a response
    per fetch, gzip per record, besides pages a 404, an image and a revisit."""
    pages = demo_raw_pages()
    moment = datetime(2016, 10, 26, 10, 3, 20, tzinfo=UTC)
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=True)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "StormCrawler 1.x"}))

        def fetch(url: str, status: str, content_type: str, body: bytes, at: datetime) -> None:
            response = writer.create_warc_record(
                url,
                "response",
                payload=BytesIO(body),
                length=len(body),
                http_headers=StatusAndHeaders(
                    status, [("Content-Type", content_type), ("Server", "nginx")], protocol="HTTP/1.1"
                ),
                warc_headers_dict={"WARC-Date": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
            )
            request = writer.create_warc_record(
                url,
                "request",
                http_headers=StatusAndHeaders(
                    "GET / HTTP/1.1", [("User-Agent", "another-crawler")], is_http_request=True
                ),
            )
            writer.write_request_response_pair(request, response)

        for number, page in enumerate(pages):
            at = moment + timedelta(minutes=number)
            fetch(page["final_url"], "200 OK", "text/html; charset=utf-8", page["html"].encode(), at)
        fetch(f"{BASE_URL}/gone.html", "404 Not Found", "text/html", b"<html>not here</html>", moment)
        fetch(f"{BASE_URL}/logo.png", "200 OK", "image/png", b"\x89PNG\r\n\x1a\n....", moment)
        writer.write_record(
            writer.create_revisit_record(
                pages[0]["final_url"], "sha1:AAAA", pages[0]["final_url"], "2016-10-26T10:03:20Z"
            )
        )
    return pages


def test_another_crawlers_warc_is_processed(
    isolated: IsolatedPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    foreign = isolated.state_dir / "cc-news"
    foreign.mkdir(parents=True)
    pages = _other_crawlers_warc(foreign / "CC-NEWS-20161026100320-00000.warc.gz")
    config = isolated.state_dir / "settings.yaml"
    config.write_text(json.dumps(isolated.overrides))

    argv = ["--config", str(config), "replay", "--from", "2016-10-01", "--to", "2016-11-01"]
    assert main([*argv, "--source", "warc", "--archive", str(foreign), "--into", "cc-news"]) == 0

    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    counts = report["counts"]
    assert report["source"] == "warc"
    assert counts["records"] == len(pages)
    assert counts["enriched"] == len(pages)
    assert counts["skipped:status-404"] == 1
    assert counts["skipped:not-html"] == 1
    assert counts["skipped:revisit"] == 1
    assert counts["duplicates"] >= 1, "the syndicated copy is found"
    records = _shadow(isolated.settings, "cc-news", len(pages))
    assert {record["url"] for record in records} == {page["final_url"] for page in pages}
    seed = next(record for record in records if record["title"].startswith("Putin advocates"))
    assert [topic["id"] for topic in seed["topics"]] == ["us-russia"]
    assert all(record["source"].startswith("warc:CC-NEWS-") for record in records)


async def _delete_first_day(settings: Settings) -> None:
    """Delete the first day's records, as the broker's retention would."""
    consumer = AIOKafkaConsumer(**client_options(settings.kafka))
    await consumer.start()
    try:
        topic = settings.topics.raw_pages
        partitions = [TopicPartition(topic, p) for p in await topic_partitions(consumer, topic)]
        found = await consumer.offsets_for_times(
            dict.fromkeys(partitions, int((FIRST_DAY + DAY).timestamp() * 1000))
        )
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    cut = {tp: RecordsToDelete(found[tp].offset if found[tp] else ends[tp]) for tp in partitions}
    async with admin_client(settings) as admin:
        await admin.delete_records({tp: spec for tp, spec in cut.items() if spec.before_offset > 0})


def test_a_range_older_than_the_topic_holds_is_read_from_the_archive(
    isolated: IsolatedPipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides = _archive_overrides(isolated)
    settings = _settings(isolated, overrides)
    dated = _dated_pages()
    asyncio.run(_produce(settings, list(dated)))
    _run_archiver_until_idle(overrides, isolated.state_dir / "archiver.log")
    before = asyncio.run(run_replay(settings, ReplayOptions(FIRST_DAY, None, "raw", "before")))
    assert before.counts["records"] == len(dated)

    asyncio.run(_delete_first_day(settings))
    without_archive = with_overrides(settings, {"archive": {"dir": None}})
    with pytest.raises(RetentionError):
        asyncio.run(run_replay(without_archive, ReplayOptions(FIRST_DAY, None, "raw", "refused")))

    config = isolated.state_dir / "settings.yaml"
    config.write_text(json.dumps(overrides))
    capsys.readouterr()
    assert main(["--config", str(config), "replay", "--from", FIRST_DAY.isoformat(), "--into", "after"]) == 0
    captured = capsys.readouterr()
    report = json.loads(captured.out.strip().splitlines()[-1])
    assert "came from the archive" in captured.err
    assert report["archive"] == str(isolated.state_dir / "archive")
    assert "retention" in report["archive_reason"]
    counts = report["counts"]
    assert counts["records:archive"] == 3, "the first day's pages, deleted from the topic"
    assert counts["records:topic"] == len(dated) - 3
    assert counts["records"] == len(dated)
    assert _shadow(settings, "after", before.counts["enriched"]) == _shadow(
        settings, "before", before.counts["enriched"]
    )
