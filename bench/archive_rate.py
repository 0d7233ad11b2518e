"""Archive write MB/s and replay-from-WARC pages/s, each against a baseline measured in the same run.

N generated article pages (15-40 KB, the crawl bench's generator) become raw_page.v1 records in memory, each
with a Kafka position as the archiver gets it. Then:

1. **write**: the archiver's pure writer and files layer (`page_records` -> `ArchiveWriter`: a WARC response
   and a metadata record per page, one gzip member each, fsync every 500 pages as the archiver syncs each
   batch, CDXJ index and rename at close) against the **baseline** of the same records' JSON bytes through
   one plain gzip stream (same level) to a file, fsynced at the same cadence. Alternated, two runs each;
   MB/s of raw_page.v1 JSON in (the bytes the archiver consumes from Kafka);
2. **read**: `read_archive` over the archive just written, alone (pages/s);
3. **replay**: the reader and the stages (extraction on every core, dedup, tagging) against the same stages
   on the same pages from memory (pages/s); the ratio is what reading WARC costs a replay.

No broker is needed. Nothing is asserted.

    .venv/bin/python -m bench.archive_rate              # 1,000 pages, a minute or two
    .venv/bin/python -m bench.archive_rate --smoke      # 20 pages
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    PROJECT_DIR,
    format_table,
    generate_pages,
    machine_info,
    sized_bench_main,
    utc_timestamp,
)
from pipeline.archive.files import ArchiveWriter
from pipeline.archive.reader import TimeRange, read_archive
from pipeline.archive.warc_writer import KafkaPosition, page_records
from pipeline.clock import utc_now
from pipeline.offline import dedup_verdicts, extract_pages
from pipeline.records import Article, RawPage, dumps
from pipeline.settings import load_settings
from pipeline.tag.enrich import enrich_article
from pipeline.tag.taxonomy import load_taxonomy

NAME = "archive_rate"
DEFAULT_PAGES = 1000
SMOKE_PAGES = 20
SEED = 20240503
SYNC_EVERY = 500  # the archiver's batch: it fsyncs once per batch of consumed records
PARTITIONS = 8
TOPIC = "bench.raw-pages.v1"
MB = 1024 * 1024


def raw_pages(count: int, now: datetime) -> list[tuple[KafkaPosition, RawPage]]:
    pages = generate_pages(count, SEED)
    records = []
    for index, page in enumerate(pages):
        url = f"http://bench.example{page.path}"
        moment = now - timedelta(hours=2) + timedelta(seconds=index)
        position = KafkaPosition(
            TOPIC, index % PARTITIONS, index // PARTITIONS, int(moment.timestamp() * 1000)
        )
        records.append(
            (
                position,
                RawPage(
                    url=url,
                    final_url=url,
                    status=200,
                    headers={"content-type": "text/html; charset=utf-8"},
                    fetched_at=moment.isoformat(),
                    source="http://bench.example/sitemap.xml",
                    content_hash="sha256:" + hashlib.sha256(page.html).hexdigest(),
                    html=page.html.decode(),
                    trace_id=uuid.UUID(int=index).hex,
                ),
            )
        )
    return records


def write_archive(
    records: list[tuple[KafkaPosition, RawPage]], directory: Path, level: int
) -> dict[str, Any]:
    directory.mkdir(parents=True)
    started = time.perf_counter()
    writer = ArchiveWriter(
        directory, rotate_bytes=1024**3, rotate_seconds=86400.0, gzip_level=level, next_sequence=0
    )
    for number, (position, page) in enumerate(records, start=1):
        writer.append(page_records(page, position, gzip_level=level))
        if number % SYNC_EVERY == 0:
            writer.sync()
    closed = writer.close()
    seconds = time.perf_counter() - started
    assert closed is not None
    return {"seconds": seconds, "bytes_out": closed.path.stat().st_size + closed.index.stat().st_size}


def write_baseline(
    records: list[tuple[KafkaPosition, RawPage]], directory: Path, level: int
) -> dict[str, Any]:
    directory.mkdir(parents=True)
    path = directory / "pages.jsonl.gz"
    started = time.perf_counter()
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=level, mtime=0) as out:
        for number, (_, page) in enumerate(records, start=1):
            out.write(dumps(page) + b"\n")
            if number % SYNC_EVERY == 0:
                out.flush()
                raw.flush()
                os.fsync(raw.fileno())
        out.close()
        raw.flush()
        os.fsync(raw.fileno())
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "bytes_out": path.stat().st_size}


def stages(pages: list[RawPage], processes: int, timeout_s: float) -> int:
    """What a replay runs after reading: extraction, dedup, tagging; returns the enriched count."""
    taxonomy = load_taxonomy(load_settings().tagging.taxonomy_file)
    latest: dict[str, Article] = {}
    for outcome in extract_pages(pages, processes, timeout_s):
        if isinstance(outcome, dict):
            latest[outcome["id"]] = outcome
    articles = list(latest.values())
    verdicts = dedup_verdicts(articles)
    return len([enrich_article(a, verdicts[a["id"]], taxonomy, utc_now()) for a in articles])


def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    level = settings.archive.gzip_level
    processes, timeout_s = settings.worker.extraction_processes, settings.worker.extraction_timeout_s
    records = raw_pages(args.pages, datetime.now(UTC))
    bytes_in = sum(len(dumps(page)) for _, page in records)
    work_root = PROJECT_DIR / ".state"
    work_root.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-archive-", dir=work_root) as temporary:
        work = Path(temporary)
        write_runs = []
        for round_number in (1, 2):
            for kind, write in (("baseline", write_baseline), ("archive", write_archive)):
                result = write(records, work / f"{kind}-{round_number}", level)
                write_runs.append(
                    {
                        "run": f"{kind} #{round_number}",
                        "kind": kind,
                        "seconds": round(result["seconds"], 3),
                        "mb_in_per_s": round(bytes_in / MB / result["seconds"], 1),
                        "bytes_out": result["bytes_out"],
                    }
                )
        archive = work / "archive-2"

        started = time.perf_counter()
        read = read_archive(archive, TimeRange())
        read_seconds = time.perf_counter() - started
        assert [item.page for item in read.pages] == [page for _, page in records], "read back exactly"

        started = time.perf_counter()
        from_memory = stages([page for _, page in records], processes, timeout_s)
        memory_seconds = time.perf_counter() - started

        started = time.perf_counter()
        from_warc = stages(
            [item.page for item in read_archive(archive, TimeRange()).pages], processes, timeout_s
        )
        warc_seconds = time.perf_counter() - started
    best = {
        kind: max(run["mb_in_per_s"] for run in write_runs if run["kind"] == kind)
        for kind in ("baseline", "archive")
    }
    replay_runs = [
        {"run": "read_archive alone", "pages": len(read.pages), "seconds": round(read_seconds, 3)},
        {"run": "stages, pages from memory", "pages": from_memory, "seconds": round(memory_seconds, 3)},
        {"run": "read_archive + stages", "pages": from_warc, "seconds": round(warc_seconds, 3)},
    ]
    for run in replay_runs:
        run["pages_per_s"] = round(args.pages / run["seconds"], 1)
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {
            "pages": args.pages,
            "mb_in": round(bytes_in / MB, 2),
            "gzip_level": level,
            "sync_every": SYNC_EVERY,
            "extraction_processes": processes,
        },
        "write": {
            "runs": write_runs,
            "best_mb_in_per_s": best,
            "ratio_archive_to_baseline": round(best["archive"] / best["baseline"], 2),
            "archive_bytes_per_page": round(write_runs[-1]["bytes_out"] / args.pages),
            "baseline_bytes_per_page": round(write_runs[-2]["bytes_out"] / args.pages),
        },
        "replay": {
            "runs": replay_runs,
            "enriched": {"memory": from_memory, "warc": from_warc},
            "ratio_warc_to_memory": round(replay_runs[2]["pages_per_s"] / replay_runs[1]["pages_per_s"], 2),
        },
        "machine": machine_info(("warcio", "orjson", "trafilatura")),
    }


def render(result: dict[str, Any]) -> str:
    params, write, replay = result["params"], result["write"], result["replay"]
    write_table = format_table(
        ["write run", "seconds", "MB in/s", "bytes out"],
        [[r["run"], r["seconds"], r["mb_in_per_s"], r["bytes_out"]] for r in write["runs"]],
    )
    replay_table = format_table(
        ["replay run", "pages", "seconds", "pages/s"],
        [[r["run"], r["pages"], r["seconds"], r["pages_per_s"]] for r in replay["runs"]],
    )
    return "\n".join(
        [
            f"archive rate: {params['pages']} pages, {params['mb_in']} MB of raw_page.v1 JSON, gzip level "
            f"{params['gzip_level']}, fsync every {params['sync_every']} pages",
            "",
            write_table,
            "",
            f"archive / plain gzip: {write['ratio_archive_to_baseline']:.2f}   (bytes per page: archive "
            f"{write['archive_bytes_per_page']}, plain gzip {write['baseline_bytes_per_page']})",
            "",
            replay_table,
            "",
            f"replay from WARC / from memory: {replay['ratio_warc_to_memory']:.2f}   "
            f"({params['extraction_processes']} extraction processes)",
            "machine: {cores} cores, {cpu}, {python}".format(**result["machine"]),
        ]
    )


def main(argv: Sequence[str] | None = None) -> int:
    return sized_bench_main(
        NAME,
        __doc__,
        size="pages",
        default=DEFAULT_PAGES,
        smoke=SMOKE_PAGES,
        measure=measure,
        render=render,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
