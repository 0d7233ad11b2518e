"""Articles per second through the tagger, against a naive keyword co-occurrence tagger in the same run.

The articles are the labelled development set (`tests/data/tagging/dev.jsonl`), repeated until the run
holds N articles. Both taggers see the same title and body text:

1. **project tagger** (`pipeline.tag.tagger.tag_article`): one Aho–Corasick pass over the text for every
   term of every topic, then sentence windows, exclusions, title weight and thresholds;
2. **naive baseline**: per topic and group, one case-insensitive whole-word regular expression over the
   whole article; a topic is tagged when every group occurs anywhere (what a first hand-written
   keyword filter does).

Each runs with the shipped three-topic taxonomy and with the same taxonomy plus 27 renamed copies of its
topics (30 topics), to show how the cost grows with the number of topics. Quality (per-topic precision,
recall, F1) on the labelled set is reported for both, from one pass each. Rates are printed as ratios to
the baseline; nothing is asserted.

    .venv/bin/python -m bench.tag_throughput            # 20,000 articles
    .venv/bin/python -m bench.tag_throughput --smoke    # 200 articles, a second
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    PROJECT_DIR,
    RESULTS_DIR,
    format_table,
    machine_info,
    run_bench,
    utc_timestamp,
)
from pipeline.tag.evaluate import LabelledArticle, TopicReport, read_labels
from pipeline.tag.tagger import tag_article
from pipeline.tag.taxonomy import DEFAULT_TAXONOMY_PATH, Taxonomy, TermSyntax, TopicSpec, parse_taxonomy

NAME = "tag_throughput"
DEFAULT_LABELS = PROJECT_DIR / "tests" / "data" / "tagging" / "dev.jsonl"
DEFAULT_ARTICLES = 20_000
SMOKE_ARTICLES = 200
EXTRA_TOPIC_COPIES = 9  # 3 topics x (1 + 9) = 30 topics

Tagger = Callable[[str, str], set[str]]


class NaiveTagger:
    """A topic when each of its groups has a term anywhere in title or body; no windows, no exclusions."""

    def __init__(self, topics: Sequence[TopicSpec]) -> None:
        self.rules = [
            (topic.id, [_group_pattern(terms) for terms in topic.groups.values()]) for topic in topics
        ]

    def __call__(self, title: str, text: str) -> set[str]:
        document = f"{title}\n{text}"
        return {
            topic_id for topic_id, groups in self.rules if all(pattern.search(document) for pattern in groups)
        }


def _group_pattern(terms: Sequence[str]) -> re.Pattern[str]:
    alternatives = []
    for written in terms:
        syntax = TermSyntax.parse(written)
        words = r"[\s-]+".join(re.escape(word) for word in syntax.words)
        alternatives.append(words + (r"\w*" if syntax.prefix else r"\w{0,3}"))
    return re.compile(r"(?<!\w)(?:" + "|".join(alternatives) + r")(?!\w)", re.IGNORECASE)


def project_tagger(taxonomy: Taxonomy) -> Tagger:
    def tag(title: str, text: str) -> set[str]:
        return {tag["id"] for tag in tag_article(title, text, taxonomy)}

    return tag


def widened_taxonomy(path: Path, copies: int) -> Taxonomy:
    """The shipped taxonomy plus `copies` renamed copies of each topic (same terms, more topics)."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    topics = document["topics"]
    document["topics"] = topics + [
        {**topic, "id": f"{topic['id']}-copy{number}"} for number in range(1, copies + 1) for topic in topics
    ]
    return parse_taxonomy(yaml.safe_dump(document, sort_keys=False), source=f"{path} (+{copies} copies)")


def timed(tagger: Tagger, articles: Sequence[LabelledArticle], count: int) -> float:
    """Articles per second over `count` articles (the list cycled)."""
    started = time.perf_counter()
    for index in range(count):
        article = articles[index % len(articles)]
        tagger(article.title, article.text)
    return count / (time.perf_counter() - started)


def quality(tagger: Tagger, articles: Sequence[LabelledArticle], topic_ids: Sequence[str]) -> dict[str, Any]:
    reports = {topic_id: TopicReport(topic_id) for topic_id in topic_ids}
    for article in articles:
        predicted = tagger(article.title, article.text)
        for topic_id, report in reports.items():
            expected = topic_id in article.topics
            if expected and topic_id in predicted:
                report.true_positives += 1
            elif topic_id in predicted:
                report.false_positives += 1
            elif expected:
                report.false_negatives += 1
    return {
        report.id: {
            "support": report.support,
            "precision": round(report.precision, 3),
            "recall": round(report.recall, 3),
            "f1": round(report.f1, 3),
        }
        for report in reports.values()
    }


def measure(args: argparse.Namespace) -> dict[str, Any]:
    articles = read_labels([args.labels])
    words = sum(len(article.title.split()) + len(article.text.split()) for article in articles)
    shipped = parse_taxonomy(DEFAULT_TAXONOMY_PATH.read_text(encoding="utf-8"), str(DEFAULT_TAXONOMY_PATH))
    wide = widened_taxonomy(DEFAULT_TAXONOMY_PATH, EXTRA_TOPIC_COPIES)
    contenders: list[tuple[str, int, Tagger]] = [
        ("naive baseline", len(shipped.topics), NaiveTagger(shipped.topics)),
        ("project tagger", len(shipped.topics), project_tagger(shipped)),
        ("naive baseline", len(wide.topics), NaiveTagger(wide.topics)),
        ("project tagger", len(wide.topics), project_tagger(wide)),
    ]
    for _, _, tagger in contenders:  # warm caches (regex compilation is lazy in places)
        timed(tagger, articles, min(len(articles), 50))
    runs = []
    for label, topics, tagger in contenders:
        rates = [timed(tagger, articles, args.articles) for _ in range(args.repeats)]
        runs.append(
            {"tagger": label, "topics": topics, "articles_per_s": round(max(rates), 1), "runs": rates}
        )
    by_topics: dict[int, float] = {
        run["topics"]: run["articles_per_s"] for run in runs if run["tagger"] == "naive baseline"
    }
    for run in runs:
        run["x_baseline"] = round(run["articles_per_s"] / by_topics[run["topics"]], 2)
    topic_ids = [topic.id for topic in shipped.topics]
    return {
        "name": NAME,
        "timestamp": utc_timestamp(),
        "smoke": args.smoke,
        "params": {"articles": args.articles, "repeats": args.repeats, "labels": str(args.labels)},
        "labelled_set": {"articles": len(articles), "mean_words": round(words / len(articles), 1)},
        "taxonomy": shipped.version,
        "runs": runs,
        "quality": {
            "project tagger": quality(project_tagger(shipped), articles, topic_ids),
            "naive baseline": quality(NaiveTagger(shipped.topics), articles, topic_ids),
        },
        "machine": machine_info(packages=("pyahocorasick",)),
    }


def render(result: dict[str, Any]) -> str:
    speed = format_table(
        ["tagger", "topics", "articles/s", "x naive baseline"],
        [[run["tagger"], run["topics"], run["articles_per_s"], run["x_baseline"]] for run in result["runs"]],
    )
    quality_rows = [
        [tagger, topic, figures["support"], figures["precision"], figures["recall"], figures["f1"]]
        for tagger, topics in result["quality"].items()
        for topic, figures in topics.items()
    ]
    labelled = result["labelled_set"]
    return "\n".join(
        [
            f"tagger throughput: {result['params']['articles']} articles "
            f"(labelled set of {labelled['articles']}, {labelled['mean_words']} words each, cycled), "
            f"best of {result['params']['repeats']}, taxonomy {result['taxonomy']}",
            "",
            speed,
            "",
            "quality on the labelled set (one pass):",
            format_table(["tagger", "topic", "support", "precision", "recall", "F1"], quality_rows),
            "",
            "machine: {cores} cores, {cpu}, {python}".format(**result["machine"]),
        ]
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m bench.{NAME}", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--articles", type=int, default=None, help=f"articles per run (default {DEFAULT_ARTICLES})"
    )
    parser.add_argument("--repeats", type=int, default=3, help="runs per tagger; the best counts (default 3)")
    parser.add_argument(
        "--labels", type=Path, default=DEFAULT_LABELS, help="labelled JSONL to draw articles from"
    )
    parser.add_argument(
        "--smoke", action="store_true", help=f"tiny run ({SMOKE_ARTICLES} articles) for tests"
    )
    parser.add_argument("--json", type=Path, default=None, help=f"result file (default {RESULTS_DIR}/…)")
    args = parser.parse_args(argv)
    if args.articles is None:
        args.articles = SMOKE_ARTICLES if args.smoke else DEFAULT_ARTICLES
    if args.smoke:
        args.repeats = 1
    if args.json is None:
        args.json = RESULTS_DIR / (f"{NAME}.smoke.json" if args.smoke else f"{NAME}.json")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(parse_args(argv), measure, render)


if __name__ == "__main__":
    sys.exit(main())
