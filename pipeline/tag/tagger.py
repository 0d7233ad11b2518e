"""Assign taxonomy topics to an article's title and body text, with the sentences that justify each tag."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pipeline.records import TopicTag
from pipeline.tag.taxonomy import EXCLUDE_SLOT, IGNORE_SLOT, Taxonomy, TermHit, TopicSpec

TAGGER_VERSION = "1.0.0"

MAX_EVIDENCE_WINDOWS = 3
MAX_EVIDENCE_CHARS = 300
MAX_EVIDENCE_TERMS = 12

# Terminal punctuation, optional closing quotes/brackets, then whitespace: a candidate sentence break.
_SENTENCE_BREAK = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")
_OPENING_PUNCTUATION = "\"'“‘«(["
_INITIALISM = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")
_ABBREVIATIONS = frozenset(
    {
        "adm", "apr", "aug", "brig", "capt", "cmdr", "co", "col", "corp", "cpl", "dec", "dept", "dr", "etc",
        "feb", "fig", "gen", "gov", "hon", "inc", "jan", "jr", "jul", "jun", "lt", "ltd", "maj", "mar", "mr",
        "mrs", "ms", "mt", "no", "nov", "oct", "prof", "pvt", "rep", "rev", "rs", "sen", "sep", "sept", "sgt",
        "sr", "st", "vs",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    paragraph: int


@dataclass(frozen=True, slots=True)
class _WindowMatch:
    label: str
    text: str
    hits: list[TermHit]


@dataclass(frozen=True, slots=True)
class TopicScore:
    """A topic with at least one qualifying window, whether or not its score reaches the threshold."""

    id: str
    score: float
    threshold: float
    evidence: list[str]

    @property
    def tagged(self) -> bool:
        return self.score >= self.threshold


def tag_article(title: str, text: str, taxonomy: Taxonomy) -> list[TopicTag]:
    """Topics of one article, best first.

    A topic's score is the number of body windows (sentences, or paragraphs for `window: paragraph`
    topics) in which every one of its groups has a term and none of its `exclude` terms occurs, plus its
    `title_weight` when the title on its own qualifies the same way, plus its `lede_weight` when the
    body's first window qualifies. It is a raw count, not a probability;
    a topic is returned when the score reaches its `threshold`.
    """
    return [
        TopicTag(id=scored.id, score=scored.score, evidence=scored.evidence)
        for scored in score_topics(title, text, taxonomy)
        if scored.tagged
    ]


def score_topics(title: str, text: str, taxonomy: Taxonomy) -> list[TopicScore]:
    """Every topic with a qualifying window, best first; `tag_article` keeps those at their threshold."""
    title = " ".join(title.split())
    body, sentences = _split_sentences(text)
    title_hits = _hits_by_topic(taxonomy.matcher.find(title)) if title else {}
    body_hits = _hits_by_topic(taxonomy.matcher.find(body)) if body else {}
    sentence_starts = [sentence.start for sentence in sentences]

    def sentence_of(offset: int) -> int:
        return bisect_right(sentence_starts, offset) - 1

    def paragraph_of(offset: int) -> int:
        return sentences[sentence_of(offset)].paragraph

    scores: list[TopicScore] = []
    for topic_index in sorted(title_hits.keys() | body_hits.keys()):
        topic = taxonomy.topics[topic_index]
        title_match = _qualifying_windows(title_hits.get(topic_index, []), lambda _offset: 0, topic)
        window_of = paragraph_of if topic.window == "paragraph" else sentence_of
        body_matches = _qualifying_windows(body_hits.get(topic_index, []), window_of, topic)
        score = float(len(body_matches)) + (topic.title_weight if title_match else 0.0)
        if topic.lede_weight and sentences and window_of(sentences[0].start) in body_matches:
            score += topic.lede_weight  # a news story states its subject in its first sentence
        if not title_match and not body_matches:
            continue
        windows = [_WindowMatch("title", title, hits) for hits in title_match.values()]
        for window, hits in sorted(body_matches.items()):
            start, end = _window_span(window, topic, sentences)
            windows.append(_WindowMatch(topic.window, body[start:end], _shift(hits, -start)))
        scores.append(TopicScore(topic.id, score, topic.threshold, _evidence(windows)))
    scores.sort(key=lambda scored: (-scored.score, scored.id))
    return scores


def _split_sentences(text: str) -> tuple[str, list[_Sentence]]:
    """Normalise whitespace (one paragraph per line) and find sentence spans in the resulting body."""
    paragraphs = [" ".join(line.split()) for line in text.splitlines()]
    body = "\n".join(paragraph for paragraph in paragraphs if paragraph)
    sentences: list[_Sentence] = []
    offset = 0
    for paragraph_index, paragraph in enumerate(body.split("\n") if body else []):
        start = 0
        for candidate in _SENTENCE_BREAK.finditer(paragraph):
            next_char = paragraph[candidate.end() : candidate.end() + 1]
            if next_char.islower() or _ends_with_abbreviation(paragraph, candidate):
                continue
            # Normalisation left exactly one space in the break; the sentence stops just before it.
            sentences.append(_Sentence(offset + start, offset + candidate.end() - 1, paragraph_index))
            start = candidate.end()
        sentences.append(_Sentence(offset + start, offset + len(paragraph), paragraph_index))
        offset += len(paragraph) + 1
    return body, sentences


def _ends_with_abbreviation(paragraph: str, candidate: re.Match[str]) -> bool:
    if candidate.group().count(".") != 1 or not candidate.group().startswith("."):
        return False
    token = paragraph[paragraph.rfind(" ", 0, candidate.start()) + 1 : candidate.start()]
    token = token.lstrip(_OPENING_PUNCTUATION)
    return bool(_INITIALISM.fullmatch(token)) or token.lower() in _ABBREVIATIONS


def _hits_by_topic(hits: list[TermHit]) -> dict[int, list[TermHit]]:
    grouped: dict[int, list[TermHit]] = {}
    for hit in hits:
        grouped.setdefault(hit.topic_index, []).append(hit)
    return grouped


def _qualifying_windows(
    hits: list[TermHit], window_of: Callable[[int], int], topic: TopicSpec
) -> dict[int, list[TermHit]]:
    """Windows where every group has a surviving term and no exclude term occurs."""
    masks = [(hit.start, hit.end) for hit in hits if hit.slot == IGNORE_SLOT]
    by_window: dict[int, list[TermHit]] = {}
    for hit in hits:
        if hit.slot == IGNORE_SLOT:
            continue
        if masks and any(hit.start < end and start < hit.end for start, end in masks):
            continue
        by_window.setdefault(window_of(hit.start), []).append(hit)
    all_groups = (1 << len(topic.groups)) - 1
    qualifying: dict[int, list[TermHit]] = {}
    for window, window_hits in by_window.items():
        if any(hit.slot == EXCLUDE_SLOT for hit in window_hits):
            continue
        present = 0
        for hit in window_hits:
            present |= 1 << hit.slot
        if present == all_groups:
            qualifying[window] = window_hits
    return qualifying


def _window_span(window: int, topic: TopicSpec, sentences: Sequence[_Sentence]) -> tuple[int, int]:
    if topic.window == "sentence":
        return sentences[window].start, sentences[window].end
    in_paragraph = [sentence for sentence in sentences if sentence.paragraph == window]
    return in_paragraph[0].start, in_paragraph[-1].end


def _shift(hits: list[TermHit], delta: int) -> list[TermHit]:
    return [TermHit(hit.topic_index, hit.slot, hit.term, hit.start + delta, hit.end + delta) for hit in hits]


def _evidence(windows: list[_WindowMatch]) -> list[str]:
    """`terms: …` (the words as matched, first seen first) followed by up to three labelled excerpts."""
    terms: dict[str, str] = {}
    for window in windows:
        for hit in window.hits:
            matched = window.text[hit.start : hit.end]
            terms.setdefault(matched.casefold(), matched)
    summary = "terms: " + ", ".join(list(terms.values())[:MAX_EVIDENCE_TERMS])
    if len(summary) > MAX_EVIDENCE_CHARS:
        summary = summary[: MAX_EVIDENCE_CHARS - 1] + "…"
    return [summary, *(_excerpt(window) for window in windows[:MAX_EVIDENCE_WINDOWS])]


def _excerpt(window: _WindowMatch) -> str:
    prefix = f"{window.label}: "
    budget = MAX_EVIDENCE_CHARS - len(prefix)
    text = window.text
    if len(text) <= budget:
        return prefix + text
    # Centre a long window on its first matched term so the excerpt still shows why it qualified.
    first_hit = min(hit.start for hit in window.hits)
    start = max(0, min(first_hit - budget // 3, len(text) - budget))
    excerpt = text[start : start + budget]
    if start > 0:
        excerpt = "…" + excerpt[1:]
    if start + budget < len(text):
        excerpt = excerpt[:-1] + "…"
    return prefix + excerpt
