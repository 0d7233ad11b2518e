"""Records per second into the stores: the sink's batched upserts against one transaction per record.

For each store (SQLite with its FTS5 index, and PostgreSQL when its local server can be started), the
same N enriched records (about 3 KB of body each) are written twice into a fresh store:

1. **baseline**: one `apply([record])` per record, i.e. one transaction (and one fsync) per record,
   what a naive consumer-to-database loop does;
2. **sink**: `apply(batch)` with `store.batch_size` records per transaction, as `newsfeed sink` does;

then the sink pass is repeated over the same records (a redelivery after a crash: every row exists, the
newest-fetch rule keeps them). Rates are printed as ratios to the baseline; nothing is asserted.

    .venv/bin/python -m bench.sink_throughput                 # 20,000 records; PostgreSQL if available
    .venv/bin/python -m bench.sink_throughput --smoke         # 200 records, SQLite only
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    RESULTS_DIR,
    format_table,
    machine_info,
    run_bench,
    utc_timestamp,
)
from pipeline.records import EnrichedArticle
from pipeline.settings import Settings, load_settings
from pipeline.sink.sqlite_store import SqliteStore
from pipeline.sink.store import ArticleStore

NAME = "sink_throughput"
DEFAULT_RECORDS = 20_000
SMOKE_RECORDS = 200
WORDS = (
    "talks", "sanctions", "summit", "minister", "treaty", "strike", "army", "navy", "border", "trade",
    "market", "election", "court", "budget", "rain", "ports", "exports", "pipeline", "embassy", "reform",
)  # fmt: skip


def records(count: int, seed: int = 7) -> list[EnrichedArticle]:
    rng = random.Random(seed)
    made = []
    for index in range(count):
        article_id = f"{index:032x}"
        text = "\n".join(" ".join(rng.choices(WORDS, k=60)).capitalize() + "." for _ in range(8))
        made.append(
            EnrichedArticle(
                id=article_id,
                url=f"https://news.example/{index}.html",
                canonical_url=f"https://news.example/{index}.html",
                title=" ".join(rng.choices(WORDS, k=8)).capitalize(),
                text=text,
                published=f"2019-12-{1 + index % 28:02d}T10:00:00+00:00",
                authors=["A. Writer"],
                language="en",
                site_name="News Example",
                description=None,
                categories=["World"],
                image=None,
                fetched_at="2026-01-01T00:00:00+00:00",
                source="https://news.example/rss.xml",
                content_hash="sha256:" + f"{index:064x}",
                trace_id=uuid.UUID(int=index).hex,
                extractor="trafilatura-2/nf1",
                topics=[{"id": "us-russia", "score": 2.0, "evidence": ["terms: Putin, Trump"]}],
                dedup={
                    "content_hash": "sha256:" + f"{index:064x}",
                    "cluster_id": article_id,
                    "duplicate_of": None,
                    "similarity": 1.0,
                    "method": "first",
                },
                versions={"extractor": "x", "tagger": "1.0.0", "taxonomy": "t", "dedup": "d"},
                processed_at="2026-01-01T00:00:01+00:00",
            )
        )
    return made


def timed(store: ArticleStore, batches: Sequence[Sequence[EnrichedArticle]]) -> tuple[float, float]:
    started = time.perf_counter()
    for batch in batches:
        store.apply(batch, ())
    seconds = time.perf_counter() - started
    return seconds, sum(len(batch) for batch in batches) / seconds


def measure_store(
    label: str, open_store: Callable[[], ArticleStore], data: list[EnrichedArticle], batch_size: int
) -> list[dict[str, Any]]:
    rows = []
    plans = [
        ("baseline: one transaction per record", [[record] for record in data], True),
        (
            f"sink: batches of {batch_size}",
            [data[i : i + batch_size] for i in range(0, len(data), batch_size)],
            True,
        ),
        (
            "sink again (redelivery, rows exist)",
            [data[i : i + batch_size] for i in range(0, len(data), batch_size)],
            False,
        ),
    ]
    store: ArticleStore | None = None
    for name, batches, fresh in plans:
        if fresh or store is None:
            if store is not None:
                store.close()
            store = open_store()
        seconds, rate = timed(store, batches)
        assert store.count() == len(data)
        rows.append(
            {
                "store": label,
                "run": name,
                "records": len(data),
                "seconds": round(seconds, 2),
                "records_per_s": round(rate, 1),
            }
        )
    if store is not None:
        store.close()
    baseline = rows[0]["records_per_s"]
    for row in rows:
        row["x_baseline"] = round(row["records_per_s"] / baseline, 2)
    return rows


def postgres_opener(settings: Settings) -> Callable[[], ArticleStore] | str:
    """A function opening a fresh PostgreSQL store, or why PostgreSQL is not measured."""
    try:
        import psycopg  # noqa: PLC0415

        from pipeline.ops.postgres import LocalPostgres  # noqa: PLC0415
        from pipeline.sink.postgres_store import PostgresStore  # noqa: PLC0415
    except ImportError as error:
        return f"not available: {error}"
    server = LocalPostgres(settings.postgres)
    try:
        server.start()
    except Exception as error:  # the bench reports and goes on with SQLite
        return f"server did not start: {error}"
    dsn = server.dsn()

    def fresh() -> ArticleStore:
        name = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return PostgresStore(dsn.rsplit("/", 1)[0] + f"/{name}")

    return fresh


def measure(args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings()
    data = records(args.records)
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-sink-") as temporary:
        counter = iter(range(1_000_000))
        rows += measure_store(
            "sqlite",
            lambda: SqliteStore(Path(temporary) / f"store-{next(counter)}.sqlite3"),
            data,
            settings.store.batch_size,
        )
    if args.postgres:
        opener = postgres_opener(settings)
        if isinstance(opener, str):
            notes.append(f"postgres {opener}")
        else:
            rows += measure_store("postgres", opener, data, settings.store.batch_size)
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {"records": args.records, "batch_size": settings.store.batch_size},
        "mean_text_bytes": round(sum(len(r["text"]) for r in data) / len(data)),
        "runs": rows,
        "notes": notes,
        "machine": machine_info(packages=("psycopg",)),
    }


def render(result: dict[str, Any]) -> str:
    table = format_table(
        ["store", "run", "records", "seconds", "records/s", "x baseline"],
        [
            [r["store"], r["run"], r["records"], r["seconds"], r["records_per_s"], r["x_baseline"]]
            for r in result["runs"]
        ],
    )
    lines = [
        "sink throughput: {records} enriched records (~{size} B of body each)".format(
            records=result["params"]["records"], size=result["mean_text_bytes"]
        ),
        "",
        table,
        *result["notes"],
        "",
        "machine: {cores} cores, {cpu}, {python}".format(**result["machine"]),
    ]
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=None, help=f"default {DEFAULT_RECORDS}")
    parser.add_argument(
        "--smoke", action="store_true", help=f"tiny run ({SMOKE_RECORDS} records), SQLite only"
    )
    parser.add_argument("--no-postgres", dest="postgres", action="store_false", help="SQLite only")
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if args.records is None:
        args.records = SMOKE_RECORDS if args.smoke else DEFAULT_RECORDS
    if args.smoke:
        args.postgres = False
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(parse_args(argv), measure, render)


if __name__ == "__main__":
    sys.exit(main())
