"""The `newsfeed` command: one entry point for every role and operation."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from pipeline.settings import Settings, load_settings

Handler = Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsfeed",
        description="Crawl news sites into Kafka, extract, de-duplicate and tag articles.",
    )
    parser.add_argument("--config", type=Path, help="YAML settings file (also NEWSFEED_CONFIG_FILE)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    broker = commands.add_parser("broker", help="run the local single-node Kafka broker (KRaft)")
    broker.add_argument(
        "action",
        choices=["start", "stop", "status", "reset"],
        help="reset: stop it and delete its topics and logs (a fresh, empty broker on the next start)",
    )
    broker.set_defaults(handler=_broker)

    topics = commands.add_parser("topics", help="create or describe the catalogue's topics")
    topics.add_argument("action", choices=["create", "describe"])
    topics.set_defaults(handler=_topics)

    crawl = commands.add_parser("crawl", help="fetch pages announced by feeds and publish them to Kafka")
    crawl.add_argument("--feed", action="append", default=[], help="feed URL (repeatable; default: settings)")
    crawl.add_argument("--once", action="store_true", help="one pass over the feeds, then exit")
    crawl.set_defaults(handler=_crawl)

    worker = commands.add_parser("worker", help="run the Faust worker: extract, dedup, tag, sink")
    worker.set_defaults(handler=_worker)

    run = commands.add_parser("run", help="every role (crawler, worker, sink, ingest) in one process group")
    run.set_defaults(handler=_run)

    stats = commands.add_parser("stats", help="records per topic, lag per consumer group, store contents")
    stats.add_argument("--json", action="store_true", help="one JSON object")
    stats.set_defaults(handler=_stats)

    sink = commands.add_parser("sink", help="write the enriched topic to the stores (store.backends)")
    sink.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit after this long without records"
    )
    sink.set_defaults(handler=_sink)

    ingest = commands.add_parser(
        "ingest", help="feed other teams' topics (settings: inputs) into the pipeline"
    )
    ingest.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit after this long without records"
    )
    ingest.set_defaults(handler=_ingest)

    search = commands.add_parser("search", help="full-text search of the article store")
    search.add_argument("query", help="words that must all occur in the title or body")
    search.add_argument("--topic", help="only articles tagged with this topic id")
    search.add_argument("--since", help="only articles published on or after this ISO date or time")
    search.add_argument("--limit", type=int, default=20)
    search.add_argument("--store", choices=["sqlite", "postgres"], help="default: first of store.backends")
    search.add_argument("--json", action="store_true", help="one JSON object per hit")
    search.set_defaults(handler=_search)

    dlq = commands.add_parser("dlq", help="list dead letters, or send them back after a fix")
    dlq.add_argument("action", choices=["list", "replay"])
    dlq.add_argument("--reason", help="only letters with this reason (e.g. schema, invalid-json)")
    dlq.add_argument("--stage", help="only letters from this stage (extract, sink, input:NAME, …)")
    dlq.add_argument("--source-topic", help="only letters that failed on this topic")
    dlq.add_argument("--at", action="append", default=[], metavar="PARTITION:OFFSET", help="this letter")
    dlq.add_argument("--limit", type=int, help="list: at most this many")
    dlq.add_argument("--json", action="store_true", help="list: one JSON object per letter")
    dlq.add_argument("--to", help="replay: send here instead of where each letter failed")
    dlq.add_argument("--all", action="store_true", help="replay: every letter (no filter needed)")
    dlq.add_argument("--dry-run", action="store_true", help="replay: show what would be sent")
    dlq.set_defaults(handler=_dlq)

    replay = commands.add_parser(
        "replay", help="re-run the stages over a past time range beside live work, or rewind the live group"
    )
    replay.add_argument(
        "--from", dest="start", required=True, metavar="TIME", help="ISO time, e.g. 2019-12-30T00:00Z"
    )
    replay.add_argument("--to", dest="end", metavar="TIME", help="end of the range, exclusive (default: now)")
    replay.add_argument(
        "--source",
        choices=["raw", "articles", "warc"],
        default="raw",
        help="topic to read, or warc: the WARC files of --archive (default raw)",
    )
    replay.add_argument(
        "--archive",
        type=Path,
        metavar="DIR",
        help="WARC archive (ours or another crawler's files, e.g. CC-NEWS; default: archive.dir); a raw "
        "replay reads what retention deleted from it",
    )
    replay.add_argument("--into", metavar="NAME", help="shadow target name (default: from the start time)")
    replay.add_argument(
        "--main-store",
        action="store_true",
        help="upsert the main stores instead of shadow ones (newest wins)",
    )
    replay.add_argument(
        "--rewind-live", action="store_true", help="instead: move the live worker group's offsets to --from"
    )
    replay.add_argument("--dry-run", action="store_true", help="with --rewind-live: print the offsets only")
    replay.add_argument("--yes", action="store_true", help="with --rewind-live: do not ask for confirmation")
    replay.set_defaults(handler=_replay)

    archive = commands.add_parser(
        "archive", help="write the raw-pages topic to WARC files (for replays past Kafka's retention)"
    )
    archive.add_argument("--dir", type=Path, metavar="DIR", help="archive directory (default: archive.dir)")
    archive.add_argument(
        "--until-idle", type=float, metavar="SECONDS", help="exit after this long without records"
    )
    archive.set_defaults(handler=_archive)

    postgres = commands.add_parser("postgres", help="run the local PostgreSQL server (Debian's packages)")
    postgres.add_argument("action", choices=["start", "stop", "status"])
    postgres.set_defaults(handler=_postgres)

    site = commands.add_parser("demo-site", help="serve the bundled local news site")
    site.add_argument("--host", default="127.0.0.1")
    site.add_argument("--port", type=int, default=8080)
    site.set_defaults(handler=_demo_site)

    demo = commands.add_parser(
        "demo", help="run the whole pipeline once on the local news site and print results"
    )
    demo.add_argument("--output", type=Path, help="also write the enriched records to this JSONL file")
    demo.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for the records")
    demo.set_defaults(handler=_demo)

    process = commands.add_parser(
        "process",
        help="run extraction, dedup and tagging over a JSONL file (no Kafka), one line out per line in",
    )
    process.add_argument("--input", type=Path, required=True, help="JSONL: {url, html} or {url, title, text}")
    process.add_argument("--output", type=Path, required=True, help="JSONL of enriched records")
    process.set_defaults(handler=_process)

    evaluate = commands.add_parser(
        "evaluate-tags",
        help="score the tagger on labelled articles: per-topic precision, recall, F1 and the misses",
    )
    evaluate.add_argument(
        "--labels",
        type=Path,
        action="append",
        required=True,
        help="JSONL of {id, title, text, topics: [ids]} (repeatable)",
    )
    evaluate.add_argument("--taxonomy", type=Path, help="taxonomy file (default: tagging.taxonomy_file)")
    evaluate.add_argument("--misses", type=int, default=50, help="misses to show (default 50)")
    evaluate.add_argument("--json", type=Path, help="also write the full report as JSON here")
    evaluate.add_argument("--min-precision", type=float, help="exit 1 when a topic's precision is lower")
    evaluate.add_argument("--min-recall", type=float, help="exit 1 when a topic's recall is lower")
    evaluate.set_defaults(handler=_evaluate_tags)

    ping = commands.add_parser("ping", help="exit 0 when the Kafka cluster answers")
    ping.set_defaults(handler=_ping)

    config = commands.add_parser("config", help="show the effective settings (secrets masked)")
    config.add_argument("action", choices=["show"])
    config.set_defaults(handler=_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
    except (ValueError, FileNotFoundError) as error:
        print(f"newsfeed: invalid settings: {error}", file=sys.stderr)
        return 2
    from pipeline.ops.logs import configure_logging  # noqa: PLC0415

    configure_logging(settings.log_level, settings.log_format)
    handler: Handler = args.handler
    try:
        return handler(args, settings)
    except KeyboardInterrupt:
        return 130


def _broker(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.broker import BrokerError, LocalBroker  # noqa: PLC0415 - keep `--help` fast

    broker = LocalBroker(settings.broker)
    try:
        if args.action == "start":
            print(broker.start().describe())
        elif args.action == "stop":
            print("broker stopped" if broker.stop() else "broker was not running")
        elif args.action == "reset":
            stopped = "broker stopped; " if broker.reset() else ""
            print(f"{stopped}topics and logs deleted from {broker.data_dir.parent}")
        else:
            status = broker.status()
            print(status.describe())
            return 0 if status.answering else 1
    except BrokerError as error:
        print(f"newsfeed broker: {error}", file=sys.stderr)
        return 1
    return 0


def _topics(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.topics import create_topics, describe_topics  # noqa: PLC0415

    if args.action == "create":
        created = asyncio.run(create_topics(settings))
        print(f"created {len(created)} topic(s): {', '.join(created)}" if created else "all topics exist")
        return 0
    for row in asyncio.run(describe_topics(settings)):
        print(orjson.dumps(row).decode())
    return 0


def _crawl(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.crawl.service import crawl  # noqa: PLC0415

    feeds = args.feed or settings.crawl.feeds
    if not feeds and settings.crawl.sources_file is None:
        print(
            "newsfeed crawl: nothing to crawl; pass --feed URL, or set crawl.sources_file or crawl.feeds",
            file=sys.stderr,
        )
        return 2
    import uvloop  # noqa: PLC0415 - only the crawler's I/O-heavy loop gains from it

    counters = uvloop.run(crawl(settings, feeds, once=args.once))
    print(orjson.dumps({"outcomes": dict(counters.outcomes)}).decode())
    return 0


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.stream.worker import run_worker  # noqa: PLC0415

    run_worker(settings)
    return 0


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.supervisor import Supervisor, roles_for  # noqa: PLC0415
    from pipeline.ops.topics import create_topics  # noqa: PLC0415

    roles = roles_for(settings)
    if roles[0].name != "crawler":
        print(
            "newsfeed run: no crawler (set crawl.sources_file or crawl.feeds); running the rest",
            file=sys.stderr,
        )
    asyncio.run(create_topics(settings))
    print(f"newsfeed run: {', '.join(role.name for role in roles)}; Ctrl-C stops them all", file=sys.stderr)
    return Supervisor(roles, args.config or settings.config_file).run()


def _stats(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.stats import group_stats, store_stats, topic_stats  # noqa: PLC0415

    report: dict[str, Any] = {
        "topics": asyncio.run(topic_stats(settings)),
        "groups": asyncio.run(group_stats(settings)),
        "store": store_stats(settings),
    }
    if args.json:
        print(orjson.dumps(report).decode())
        return 0
    for row in report["topics"]:
        held = (
            f"{row['offsets_held']:>10} records  {row['partitions']} partitions"
            if row["exists"]
            else "missing"
        )
        print(f"{row['topic']:<45} {held}")
    for row in report["groups"]:
        print(f"group {row['group']:<39} lag {row['lag']}")
    store = report["store"]
    tags = ", ".join(f"{topic} {count}" for topic, count in store["topics"].items())
    counts = f"{store['articles']} articles, {store['clusters']} clusters, {store['duplicates']} copies"
    print(f"store: {counts}; {tags}")
    return 0


def _sink(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.sink.service import run_sink  # noqa: PLC0415

    counts = asyncio.run(run_sink(settings, idle_exit_s=args.until_idle))
    print(orjson.dumps({"outcomes": dict(counts)}).decode())
    return 0


def _ingest(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.inputs.bridge import run_inputs  # noqa: PLC0415

    if not settings.inputs:
        print(
            "newsfeed ingest: no inputs configured; declare them under `inputs` in the settings",
            file=sys.stderr,
        )
        return 2
    counts = asyncio.run(run_inputs(settings, idle_exit_s=args.until_idle))
    print(orjson.dumps({"outcomes": dict(counts)}).decode())
    return 0


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.clock import utc_iso  # noqa: PLC0415
    from pipeline.sink.writer import open_article_store  # noqa: PLC0415

    since = None
    if args.since:
        try:
            since = utc_iso(args.since)
        except ValueError:
            print(f"newsfeed search: --since {args.since!r} is not an ISO date or time", file=sys.stderr)
            return 2
    store = open_article_store(settings, args.store)
    try:
        hits = store.search(args.query, topic=args.topic, since=since, limit=args.limit)
    finally:
        store.close()
    for hit in hits:
        if args.json:
            print(orjson.dumps(hit).decode())
            continue
        copy = f"  (copy of {hit.duplicate_of})" if hit.duplicate_of else ""
        print(f"{(hit.published or '')[:10]:<10}  {hit.title}{copy}")
        print(f"            {hit.url}  [{', '.join(hit.topics)}]")
        print(f"            {hit.snippet}")
    if not args.json:
        print(f"{len(hits)} article(s)", file=sys.stderr)
    return 0


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops import dlq  # noqa: PLC0415

    chosen = dlq.LetterFilter(args.reason, args.stage, args.source_topic, frozenset(args.at))
    if args.action == "list":
        letters = asyncio.run(dlq.read_letters(settings, chosen, args.limit))
        for stored in letters:
            print(dlq.as_json(stored).decode() if args.json else dlq.describe(stored))
        if not args.json:
            print(f"{len(letters)} dead letter(s) in {settings.topics.dead_letter}", file=sys.stderr)
        return 0
    if chosen == dlq.LetterFilter() and not args.all:
        print(
            "newsfeed dlq replay: choose letters (--reason, --stage, --source-topic, --at) or pass --all",
            file=sys.stderr,
        )
        return 2
    plans = dlq.plan_replay(settings, asyncio.run(dlq.read_letters(settings, chosen)), args.to)
    for plan in plans:
        target = plan.topic or f"not replayed: {plan.problem}"
        print(f"{plan.stored.position:>8}  {plan.stored.letter['reason']:<16} -> {target}")
    if args.dry_run:
        print(
            f"dry run: {sum(plan.topic is not None for plan in plans)} of {len(plans)} would be sent",
            file=sys.stderr,
        )
        return 0
    counts = asyncio.run(dlq.replay(settings, plans))
    print(orjson.dumps(dict(counts)).decode())
    return 0 if not counts.get("not replayed") else 1


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.replay.ranges import ReplayRangeError, parse_time  # noqa: PLC0415
    from pipeline.replay.run import ReplayOptions, run_replay  # noqa: PLC0415

    try:
        start = parse_time(args.start)
        end = parse_time(args.end) if args.end else None
        if args.rewind_live:
            return _rewind_live(args, settings, start)
        into = args.into or "from-" + start.strftime("%Y%m%dt%H%M")
        options = ReplayOptions(
            start, end, args.source, into, main_store=args.main_store, archive=args.archive
        )
        report = asyncio.run(run_replay(settings, options))
    except (ReplayRangeError, ValueError) as error:
        print(f"newsfeed replay: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(report.as_json()).decode())
    if report.archive_reason:
        print(
            f"newsfeed replay: {report.counts['records:archive']} page(s) came from the archive "
            f"{report.archive}, since {report.topic} no longer holds the start of the range",
            file=sys.stderr,
        )
    if not report.counts["records"]:
        print(
            f"newsfeed replay: no records in {report.topic} between {args.start} and {args.end or 'now'}",
            file=sys.stderr,
        )
    return 0


def _rewind_live(args: argparse.Namespace, settings: Settings, start: datetime) -> int:
    from pipeline.replay.rewind import RewindError, apply_rewind, plan_rewind  # noqa: PLC0415

    if args.source == "warc":
        print("newsfeed replay: --rewind-live moves offsets on a topic, not in an archive", file=sys.stderr)
        return 2
    topic = settings.topics.raw_pages if args.source == "raw" else settings.topics.articles
    moves = asyncio.run(plan_rewind(settings, topic, start))
    print(f"rewind consumer group {settings.worker.app_id} on {topic} to {start.isoformat()}:")
    for move in moves:
        print(f"  {move.describe()}")
    if args.dry_run:
        print("dry run: nothing changed", file=sys.stderr)
        return 0
    if not args.yes:
        if not sys.stdin.isatty():
            print("newsfeed replay: --rewind-live needs --yes when not run from a terminal", file=sys.stderr)
            return 2
        if input("type 'rewind' to set these offsets: ").strip() != "rewind":
            print("not rewound", file=sys.stderr)
            return 1
    try:
        asyncio.run(apply_rewind(settings, moves))
    except RewindError as error:
        print(f"newsfeed replay: {error}", file=sys.stderr)
        return 1
    print(f"rewound {len(moves)} partition(s)")
    return 0


def _archive(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.archive.archiver import ArchiveConfigError, run_archiver  # noqa: PLC0415
    from pipeline.archive.files import ArchiveLockedError  # noqa: PLC0415

    if args.dir is not None:
        settings = settings.model_copy(
            update={"archive": settings.archive.model_copy(update={"dir": args.dir})}
        )
    try:
        counts = asyncio.run(run_archiver(settings, idle_exit_s=args.until_idle))
    except (ArchiveConfigError, ArchiveLockedError) as error:
        print(f"newsfeed archive: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps({"outcomes": dict(counts)}).decode())
    return 0


def _postgres(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.postgres import postgres_command  # noqa: PLC0415

    return postgres_command(args.action, settings)


def _demo_site(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.demo.site import run_site  # noqa: PLC0415

    run_site(host=args.host, port=args.port)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.demo.runner import run_demo  # noqa: PLC0415

    return run_demo(settings, output=args.output, timeout_s=args.timeout)


def _process(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.clock import utc_now  # noqa: PLC0415
    from pipeline.offline import process_lines  # noqa: PLC0415
    from pipeline.tag.taxonomy import load_taxonomy  # noqa: PLC0415

    if not args.input.is_file():
        print(f"newsfeed process: {args.input} does not exist", file=sys.stderr)
        return 2
    with args.input.open("rb") as source:
        lines = [line for line in source if line.strip()]
    taxonomy = load_taxonomy(settings.tagging.taxonomy_file)
    counts = {"records": 0, "skipped": 0, "errors": 0}
    with args.output.open("wb") as output:
        for record in process_lines(
            lines,
            taxonomy,
            utc_now,
            processes=settings.worker.extraction_processes,
            timeout_s=settings.worker.extraction_timeout_s,
        ):
            output.write(orjson.dumps(record) + b"\n")
            kind = "skipped" if "skipped" in record else "errors" if "error" in record else "records"
            counts[kind] += 1
    print(orjson.dumps({"input_lines": len(lines), **counts, "output": str(args.output)}).decode())
    return 0


def _evaluate_tags(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.tag.evaluate import LabelsError, as_json, evaluate, read_labels, render  # noqa: PLC0415
    from pipeline.tag.taxonomy import TaxonomyError, load_taxonomy  # noqa: PLC0415

    try:
        taxonomy = load_taxonomy(args.taxonomy or settings.tagging.taxonomy_file)
        articles = read_labels(args.labels)
    except (TaxonomyError, LabelsError) as error:
        print(f"newsfeed evaluate-tags: {error}", file=sys.stderr)
        return 2
    evaluation = evaluate(articles, taxonomy)
    print(render(evaluation, max_misses=args.misses))
    if args.json:
        args.json.write_bytes(orjson.dumps(as_json(evaluation), option=orjson.OPT_INDENT_2))
    if args.min_precision is None and args.min_recall is None:
        return 0
    return 0 if evaluation.meets(args.min_precision or 0.0, args.min_recall or 0.0) else 1


def _ping(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.ops.kafka import cluster_answers  # noqa: PLC0415

    answering = asyncio.run(cluster_answers(settings.kafka, timeout_s=10.0))
    print(f"{settings.kafka.bootstrap_servers}: {'answering' if answering else 'not answering'}")
    return 0 if answering else 1


def _config(args: argparse.Namespace, settings: Settings) -> int:
    print(settings.model_dump_json(indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
