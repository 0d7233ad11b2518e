"""Score the tagger on labelled articles: per-topic precision, recall and F1, and every miss explained."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from pipeline.tag.tagger import TopicScore, score_topics
from pipeline.tag.taxonomy import EXCLUDE_SLOT, Taxonomy

MAX_LABEL_LINE_BYTES = 10 * 1024 * 1024


class LabelsError(ValueError):
    """A labels file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class LabelledArticle:
    id: str
    title: str
    text: str
    topics: frozenset[str]


@dataclass(slots=True)
class TopicReport:
    id: str
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def support(self) -> int:
        return self.true_positives + self.false_negatives

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        # Nothing predicted means nothing predicted wrongly; recall shows what was missed.
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.support if self.support else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass(frozen=True, slots=True)
class Miss:
    """A wrong or missing tag and why the tagger decided as it did."""

    article_id: str
    title: str
    topic: str
    kind: str  # "false positive" or "false negative"
    score: float
    threshold: float
    explanation: list[str]


@dataclass(slots=True)
class Evaluation:
    taxonomy_version: str
    articles: int
    topics: list[TopicReport]
    misses: list[Miss] = field(default_factory=list)
    unknown_labels: set[str] = field(default_factory=set)

    def micro(self) -> TopicReport:
        total = TopicReport("all topics")
        for report in self.topics:
            total.true_positives += report.true_positives
            total.false_positives += report.false_positives
            total.false_negatives += report.false_negatives
        return total

    def meets(self, min_precision: float, min_recall: float) -> bool:
        return all(
            report.precision >= min_precision and report.recall >= min_recall
            for report in self.topics
            if report.support or report.false_positives
        )


def read_labels(paths: Sequence[Path]) -> list[LabelledArticle]:
    """Labelled articles from JSONL files: `title`, `text` and `topics` (ids, or objects with an `id`)."""
    articles: list[LabelledArticle] = []
    seen: set[str] = set()
    for path in paths:
        try:
            lines = path.read_bytes().splitlines()
        except OSError as error:
            raise LabelsError(f"{path}: cannot read: {error.strerror or error}") from error
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            article = _labelled(line, f"{path}:{number}")
            if article.id in seen:
                raise LabelsError(f"{path}:{number}: id {article.id!r} appears more than once")
            seen.add(article.id)
            articles.append(article)
    if not articles:
        raise LabelsError(f"no labelled articles in {', '.join(map(str, paths))}")
    return articles


def _labelled(line: bytes, where: str) -> LabelledArticle:
    if len(line) > MAX_LABEL_LINE_BYTES:
        raise LabelsError(f"{where}: line is larger than {MAX_LABEL_LINE_BYTES} bytes")
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise LabelsError(f"{where}: not JSON: {error}") from error
    if not isinstance(record, dict):
        raise LabelsError(f"{where}: expected a JSON object, got {type(record).__name__}")
    for name in ("title", "text"):
        if not isinstance(record.get(name), str):
            raise LabelsError(f"{where}: field {name!r} must be a string")
    topics = record.get("topics")
    if not isinstance(topics, list):
        raise LabelsError(f"{where}: field 'topics' must be a list of topic ids (empty for none)")
    ids: set[str] = set()
    for topic in topics:
        topic_id = topic.get("id") if isinstance(topic, dict) else topic
        if not isinstance(topic_id, str) or not topic_id:
            raise LabelsError(f"{where}: 'topics' entries must be topic ids or objects with an 'id'")
        ids.add(topic_id)
    article_id = record.get("id", where)
    return LabelledArticle(str(article_id), record["title"], record["text"], frozenset(ids))


def evaluate(articles: Iterable[LabelledArticle], taxonomy: Taxonomy) -> Evaluation:
    """Tag every article and compare with its labels, topic by topic."""
    known = [topic.id for topic in taxonomy.topics]
    reports = {topic_id: TopicReport(topic_id) for topic_id in known}
    evaluation = Evaluation(taxonomy.version, 0, [])
    for article in articles:
        evaluation.articles += 1
        evaluation.unknown_labels |= article.topics - reports.keys()
        scores = {scored.id: scored for scored in score_topics(article.title, article.text, taxonomy)}
        predicted = {topic_id for topic_id, scored in scores.items() if scored.tagged}
        for topic_id, report in reports.items():
            expected = topic_id in article.topics
            if expected and topic_id in predicted:
                report.true_positives += 1
            elif topic_id in predicted:
                report.false_positives += 1
                miss = _miss(article, topic_id, "false positive", scores[topic_id], taxonomy)
                evaluation.misses.append(miss)
            elif expected:
                report.false_negatives += 1
                evaluation.misses.append(
                    _miss(article, topic_id, "false negative", scores.get(topic_id), taxonomy)
                )
    evaluation.topics = list(reports.values())
    return evaluation


def _miss(
    article: LabelledArticle, topic_id: str, kind: str, scored: TopicScore | None, taxonomy: Taxonomy
) -> Miss:
    topic = next(topic for topic in taxonomy.topics if topic.id == topic_id)
    if scored is not None:
        evidence = scored.evidence
        return Miss(article.id, article.title, topic_id, kind, scored.score, scored.threshold, evidence)
    # No window qualified: say which groups the article has at all and what vetoed the rest.
    index = taxonomy.topics.index(topic)
    everything = f"{article.title}\n{article.text}"
    hits = [hit for hit in taxonomy.matcher.find(everything) if hit.topic_index == index]
    found: dict[int, list[str]] = {}
    for hit in hits:
        found.setdefault(hit.slot, [])
        if hit.term not in found[hit.slot]:
            found[hit.slot].append(hit.term)
    explanation = []
    for slot, name in enumerate(topic.groups):
        terms = found.get(slot)
        explanation.append(f"group {name}: {', '.join(terms[:6]) if terms else 'no term found'}")
    if all(slot in found for slot in range(len(topic.groups))):
        explanation.append("every group occurs, but never together in one " + topic.window)
    if EXCLUDE_SLOT in found:
        explanation.append(f"exclusion terms present: {', '.join(found[EXCLUDE_SLOT][:6])}")
    return Miss(article.id, article.title, topic_id, kind, 0.0, topic.threshold, explanation)


def render(evaluation: Evaluation, *, max_misses: int = 50) -> str:
    """The report as a table followed by the misclassified articles with their evidence."""
    rows = [*evaluation.topics, evaluation.micro()]
    width = max(len(report.id) for report in rows)
    lines = [
        f"taxonomy {evaluation.taxonomy_version}, {evaluation.articles} labelled articles",
        "",
        f"{'topic':<{width}}  support  tagged  precision  recall     F1",
    ]
    for report in rows:
        tagged = report.true_positives + report.false_positives
        lines.append(
            f"{report.id:<{width}}  {report.support:>7}  {tagged:>6}  {report.precision:>9.3f}  "
            f"{report.recall:>6.3f}  {report.f1:>5.3f}"
        )
    if evaluation.unknown_labels:
        unknown = ", ".join(sorted(evaluation.unknown_labels))
        lines += ["", f"labels name topics the taxonomy lacks: {unknown}"]
    lines += ["", f"misclassified: {len(evaluation.misses)}"]
    for miss in evaluation.misses[:max_misses]:
        lines.append(
            f"- {miss.kind} {miss.topic}: {miss.article_id} {miss.title!r} "
            f"(score {miss.score:g}, threshold {miss.threshold:g})"
        )
        lines += [f"    {line}" for line in miss.explanation]
    if len(evaluation.misses) > max_misses:
        lines.append(f"… and {len(evaluation.misses) - max_misses} more (raise --misses to see them)")
    return "\n".join(lines)


def as_json(evaluation: Evaluation) -> dict[str, Any]:
    def figures(report: TopicReport) -> dict[str, Any]:
        return {
            "support": report.support,
            "true_positives": report.true_positives,
            "false_positives": report.false_positives,
            "false_negatives": report.false_negatives,
            "precision": round(report.precision, 4),
            "recall": round(report.recall, 4),
            "f1": round(report.f1, 4),
        }

    return {
        "taxonomy": evaluation.taxonomy_version,
        "articles": evaluation.articles,
        "topics": {report.id: figures(report) for report in evaluation.topics},
        "micro": figures(evaluation.micro()),
        "unknown_labels": sorted(evaluation.unknown_labels),
        "misses": [
            {
                "article": miss.article_id,
                "title": miss.title,
                "topic": miss.topic,
                "kind": miss.kind,
                "score": miss.score,
                "threshold": miss.threshold,
                "explanation": miss.explanation,
            }
            for miss in evaluation.misses
        ],
    }
