"""The near-duplicate index as pure functions: bucket matching, the per-article join, precedence.

The agents in `pipeline/stream/agents.py` only move records between topics and tables; everything they
decide is decided here, so these tests drive the functions the way the agents do, message by message.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from pipeline.dedup.clusters import precedence_rank
from pipeline.dedup.fingerprint import content_hash
from pipeline.dedup.index import (
    BandRecord,
    PendingJoin,
    absorb,
    band_records,
    canonical_message,
    corrected,
    event_time,
    later_copies,
    match_bucket,
    new_pending,
    settled,
    verdict_if_complete,
)
from pipeline.dedup.near import BANDS, fingerprint, similarity
from pipeline.demo.content import (
    FLU_SEASON,
    GAS_TRANSIT,
    SEED_ARTICLE,
    SMART_SPEAKERS,
    SYNDICATED_COPY,
)
from pipeline.records import Article, DedupVerdict, EnrichedArticle, Versions

DAY = 86400.0
WINDOW = 30 * DAY
CAP = 64
NOT_EDITED = (
    "(This story has not been edited by Daily Ledger staff and is auto-generated from a syndicated feed.)"
)
SEED_TEXT = "\n".join(SEED_ARTICLE.body_paragraphs)
OTHER_TEXT = "\n".join(GAS_TRANSIT.body_paragraphs)


def article(
    article_id: str,
    text: str = SEED_TEXT,
    published: str | None = "2019-12-30T16:30:00+00:00",
    *,
    fetched_at: str = "2019-12-30T18:00:00+00:00",
    body_hash: str | None = None,
) -> Article:
    return Article(
        id=article_id,
        url=f"https://news.example/{article_id}.html",
        canonical_url=f"https://news.example/{article_id}.html",
        title=f"Headline of {article_id}",
        text=text,
        published=published,
        authors=[],
        language="en",
        site_name="News Example",
        description=None,
        categories=[],
        image=None,
        fetched_at=fetched_at,
        source="https://news.example/rss.xml",
        content_hash=body_hash or content_hash(text),
        trace_id=f"trace-{article_id}",
        extractor="test",
    )


def band(item: Article, index: int = 0) -> BandRecord:
    """The record the fingerprint agent sends for one band of the article."""
    return band_records(item)[1][index][1]


def at(record: BandRecord, when: float) -> BandRecord:
    return BandRecord(**{**record, "t": when})


def match(
    match_id: str, rank: str, *, body_hash: str = "sha256:other", similarity: float = 0.9
) -> dict[str, Any]:
    return {"id": match_id, "rank": rank, "hash": body_hash, "similarity": similarity}


def messages(item: Article, band_matches: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The article message and one band message per band, as the join receives them."""
    rank = precedence_rank(item)
    return [
        {"kind": "article", "article": item, "rank": rank},
        *({"kind": "band", "band": index, "matches": band_matches.get(index, [])} for index in range(BANDS)),
    ]


def join(sequence: list[dict[str, Any]]) -> tuple[PendingJoin, list[DedupVerdict | None]]:
    """Fold messages one at a time; the verdict after each, as the join agent sees it."""
    pending = new_pending()
    verdicts = []
    for message in sequence:
        pending = absorb(pending, message)
        verdicts.append(verdict_if_complete(pending))
    return pending, verdicts


# --- match_bucket -----------------------------------------------------------------------------------


class TestMatchBucket:
    def test_an_article_never_matches_itself(self) -> None:
        record = band(article("seed"))
        matches, members = match_bucket([], record, window_s=WINDOW, max_entries=CAP)
        assert matches == []
        assert members == [record]
        matches, members = match_bucket(members, record, window_s=WINDOW, max_entries=CAP)
        assert matches == []

    def test_a_replayed_article_is_kept_once(self) -> None:
        first, copy = band(article("seed")), band(article("copy"))
        _, members = match_bucket([], first, window_s=WINDOW, max_entries=CAP)
        _, members = match_bucket(members, copy, window_s=WINDOW, max_entries=CAP)
        for _ in range(3):
            matches, members = match_bucket(members, first, window_s=WINDOW, max_entries=CAP)
            assert [m["id"] for m in matches] == ["copy"]
        assert [member["id"] for member in members] == ["seed", "copy"]

    def test_members_older_than_the_window_are_dropped(self) -> None:
        incoming = band(article("new"))
        now = incoming["t"]
        stale = at(band(article("stale")), now - WINDOW - 1)
        edge = at(band(article("edge")), now - WINDOW)
        matches, members = match_bucket([stale, edge], incoming, window_s=WINDOW, max_entries=CAP)
        assert [m["id"] for m in matches] == ["edge"]
        assert [member["id"] for member in members] == ["edge", "new"]

    def test_the_window_is_in_event_time_of_the_incoming_article(self) -> None:
        # A late-crawled older article does not expire newer members, and is matched against them.
        recent = band(article("recent", published="2019-12-30T16:30:00+00:00"))
        older = band(article("older", published="2019-12-01T09:00:00+00:00"))
        assert recent["t"] - older["t"] > 28 * DAY
        matches, members = match_bucket([recent], older, window_s=WINDOW, max_entries=CAP)
        assert [m["id"] for m in matches] == ["recent"]
        assert [member["id"] for member in members] == ["recent", "older"]

    def test_event_time_falls_back_to_the_fetch_time(self) -> None:
        undated = article("undated", published=None, fetched_at="2020-01-02T00:00:00+00:00")
        garbled = article("garbled", published="last Tuesday", fetched_at="2020-01-02T00:00:00+00:00")
        assert event_time(undated) == event_time(garbled) == 1577923200.0

    def test_max_entries_caps_the_bucket_keeping_the_most_canonical_and_the_newest(self) -> None:
        members = [band(article(f"copy-{index}")) for index in range(5)]
        incoming = band(article("latest"))
        matches, kept = match_bucket(members, incoming, window_s=WINDOW, max_entries=3)
        assert len(matches) == 5  # matched against every member before the cap applies
        assert [member["id"] for member in kept] == ["copy-0", "copy-4", "latest"]

    def test_exact_hash_match_counts_with_similarity_one(self) -> None:
        # Same body hash, but a member whose signature is of another text: the hash alone decides.
        member = BandRecord(**{**band(article("other", OTHER_TEXT)), "hash": content_hash(SEED_TEXT)})
        matches, _ = match_bucket([member], band(article("seed")), window_s=WINDOW, max_entries=CAP)
        assert matches == [
            {"id": "other", "rank": member["rank"], "hash": content_hash(SEED_TEXT), "similarity": 1.0}
        ]

    def test_near_copy_matches_with_its_estimated_similarity(self) -> None:
        shortened = "\n".join(SEED_ARTICLE.body_paragraphs[:-1])
        member = band(article("seed"))
        matches, _ = match_bucket([member], band(article("cut", shortened)), window_s=WINDOW, max_entries=CAP)
        measured = similarity(fingerprint(shortened), fingerprint(SEED_TEXT))
        assert measured.near_duplicate
        assert matches == [
            {
                "id": "seed",
                "rank": member["rank"],
                "hash": member["hash"],
                "similarity": max(measured.jaccard, measured.containment),
            }
        ]
        assert member["hash"] != content_hash(shortened)

    def test_unrelated_member_of_the_same_bucket_is_not_a_match(self) -> None:
        unrelated = band(article("gas", OTHER_TEXT))
        matches, members = match_bucket([unrelated], band(article("seed")), window_s=WINDOW, max_entries=CAP)
        assert matches == []
        assert [member["id"] for member in members] == ["gas", "seed"]

    def test_band_records_carry_one_band_each_and_the_same_signature(self) -> None:
        rank, records = band_records(article("seed"))
        assert [record["band"] for _, record in records] == list(range(BANDS))
        assert len({key for key, _ in records}) == BANDS
        assert {record["sig"] for _, record in records} == {records[0][1]["sig"]}
        assert all(record["rank"] == rank for _, record in records)


# --- absorb and verdict_if_complete -----------------------------------------------------------------

SEED = article("seed", published="2019-12-30T16:30:00+00:00")
EARLIER = precedence_rank(article("wire", published="2019-12-30T15:00:00+00:00"))
EARLIEST = precedence_rank(article("agency", published="2019-12-30T12:00:00+00:00"))
LATER = precedence_rank(article("late", published="2019-12-30T20:00:00+00:00"))


class TestJoin:
    @pytest.mark.parametrize("article_at", [0, 1, 17, BANDS])
    def test_incomplete_until_the_article_and_every_band_arrived(self, article_at: int) -> None:
        sequence = messages(SEED, {})
        sequence.insert(article_at, sequence.pop(0))
        _, verdicts = join(sequence)
        assert verdicts[:-1] == [None] * BANDS
        assert verdicts[-1] is not None

    def test_a_repeated_band_does_not_stand_in_for_a_missing_one(self) -> None:
        sequence = messages(SEED, {})
        missing = sequence.pop(5)
        sequence.append(sequence[1])  # band 0 delivered twice
        pending, verdicts = join(sequence)
        assert verdicts[-1] is None
        assert sorted(pending["bands"]) == sorted(set(range(BANDS)) - {missing["band"]})
        assert verdict_if_complete(absorb(pending, missing)) is not None

    def test_the_earliest_ranked_match_is_canonical(self) -> None:
        _, verdicts = join(
            messages(
                SEED,
                {
                    0: [match("late", LATER)],
                    3: [match("wire", EARLIER, similarity=0.7)],
                    9: [match("agency", EARLIEST, similarity=0.83), match("wire", EARLIER, similarity=0.7)],
                },
            )
        )
        assert verdicts[-1] == DedupVerdict(
            content_hash=SEED["content_hash"],
            cluster_id="agency",
            duplicate_of="agency",
            similarity=0.83,
            method="near",
        )

    def test_an_article_whose_matches_all_rank_later_is_canonical(self) -> None:
        _, verdicts = join(messages(SEED, {2: [match("late", LATER, body_hash=SEED["content_hash"])]}))
        assert verdicts[-1] == DedupVerdict(
            content_hash=SEED["content_hash"],
            cluster_id="seed",
            duplicate_of=None,
            similarity=1.0,
            method="first",
        )

    def test_a_match_on_itself_is_ignored(self) -> None:
        _, verdicts = join(messages(SEED, {0: [match("seed", EARLIEST, body_hash=SEED["content_hash"])]}))
        assert verdicts[-1] is not None
        assert verdicts[-1]["method"] == "first"

    def test_exact_when_the_canonical_copy_has_the_same_body_hash(self) -> None:
        exact = match("wire", EARLIER, body_hash=SEED["content_hash"], similarity=1.0)
        _, verdicts = join(messages(SEED, {4: [exact]}))
        assert verdicts[-1] is not None
        assert (verdicts[-1]["method"], verdicts[-1]["similarity"]) == ("exact", 1.0)

    def test_near_similarity_is_the_best_seen_rounded(self) -> None:
        _, verdicts = join(
            messages(
                SEED,
                {
                    1: [match("wire", EARLIER, similarity=0.612345)],
                    7: [match("wire", EARLIER, similarity=0.7766666)],
                    8: [match("wire", EARLIER, similarity=0.5)],
                },
            )
        )
        assert verdicts[-1] is not None
        assert (verdicts[-1]["method"], verdicts[-1]["similarity"]) == ("near", 0.7767)

    def test_the_same_messages_in_any_order_give_the_same_verdict(self) -> None:
        sequence = messages(
            SEED,
            {
                0: [match("late", LATER, similarity=0.95)],
                5: [match("wire", EARLIER, similarity=0.66)],
                11: [match("agency", EARLIEST, body_hash=SEED["content_hash"], similarity=1.0)],
                30: [match("wire", EARLIER, similarity=0.71)],
            },
        )
        _, verdicts = join(sequence)
        expected = verdicts[-1]
        assert expected is not None
        assert (expected["duplicate_of"], expected["method"]) == ("agency", "exact")
        rng = random.Random(11)
        for _ in range(25):
            shuffled = rng.sample(sequence, len(sequence))
            _, verdicts = join(shuffled)
            assert verdicts[-1] == expected
            assert verdicts[:-1] == [None] * BANDS


# --- the band index and the join together, without Kafka ---------------------------------------------


class Index:
    """The band-index and join agents' decisions over in-memory tables, one article at a time."""

    def __init__(self, max_entries: int = CAP) -> None:
        self.buckets: dict[str, list[BandRecord]] = {}
        self.max_entries = max_entries
        self.pending: dict[str, PendingJoin] = {}

    def add(self, item: Article) -> DedupVerdict:
        rank, records = band_records(item)
        sequence: list[dict[str, Any]] = [{"kind": "article", "article": item, "rank": rank}]
        for key, record in records:
            matches, self.buckets[key] = match_bucket(
                self.buckets.get(key, []), record, window_s=WINDOW, max_entries=self.max_entries
            )
            sequence.append({"kind": "band", "band": record["band"], "matches": matches})
        self.pending[item["id"]], verdicts = join(sequence)
        verdict = verdicts[-1]
        assert verdict is not None
        return verdict


class TestIndex:
    def test_demo_syndicated_copy_is_an_exact_duplicate_of_the_seed(self) -> None:
        index = Index()
        seed = article("seed", SEED_TEXT, SEED_ARTICLE.published)
        copy = article("copy", "\n".join(SYNDICATED_COPY.body_paragraphs), SYNDICATED_COPY.published)
        assert index.add(seed)["method"] == "first"
        verdict = index.add(copy)
        assert (verdict["duplicate_of"], verdict["method"], verdict["similarity"]) == ("seed", "exact", 1.0)

    def test_unrelated_stories_are_all_first(self) -> None:
        index = Index()
        for number, story in enumerate((SEED_ARTICLE, GAS_TRANSIT, SMART_SPEAKERS, FLU_SEASON)):
            verdict = index.add(article(f"story-{number}", "\n".join(story.body_paragraphs), story.published))
            assert (verdict["duplicate_of"], verdict["method"]) == (None, "first")

    def test_a_story_copied_by_more_sites_than_a_bucket_holds_keeps_one_canonical_copy(self) -> None:
        index = Index()
        original = article("original", SEED_TEXT, "2019-12-30T16:30:00+00:00")
        assert index.add(original)["method"] == "first"
        for number in range(1, 66):
            published = f"2019-12-30T{17 + number // 60:02d}:{number % 60:02d}:00+00:00"
            verdict = index.add(article(f"copy-{number:02d}", SEED_TEXT, published))
            assert verdict["duplicate_of"] == "original", f"copy {number}: {verdict}"


def enriched(item: Article, verdict: DedupVerdict) -> EnrichedArticle:
    versions = Versions(extractor="test", tagger="test", taxonomy="test", dedup="test")
    return EnrichedArticle(
        **item, topics=[], dedup=verdict, versions=versions, processed_at="2020-01-01T00:00:00+00:00"
    )


class TestLateCanonicalCopy:
    """A copy fetched before its original is first decided as canonical; the original, when it arrives,
    names it among its later copies and the join re-points it (what the join agent does with these)."""

    def test_the_original_re_points_a_copy_that_was_decided_first(self) -> None:
        index = Index()
        copy = article("copy", SEED_TEXT + "\n" + NOT_EDITED, SYNDICATED_COPY.published)
        seed = article("seed", SEED_TEXT, SEED_ARTICLE.published)
        copy_verdict = index.add(copy)
        assert (copy_verdict["duplicate_of"], copy_verdict["method"]) == (None, "first")
        seed_verdict = index.add(seed)
        assert seed_verdict["method"] == "first"
        assert later_copies(index.pending["seed"]) == ["copy"]
        copy_rank = index.pending["copy"]["rank"]
        entry = settled(enriched(copy, copy_verdict), index.pending["copy"], copy_rank, expires=0.0)
        message = canonical_message(enriched(seed, seed_verdict), index.pending["seed"]["rank"], 1.0)
        updated = corrected(entry, message["match"])
        assert updated is not None
        assert updated["dedup"] == DedupVerdict(
            content_hash=copy["content_hash"], cluster_id="seed", duplicate_of="seed", similarity=1.0,
            method="exact",
        )  # fmt: skip
        entry["record"], entry["canonical_rank"] = updated, message["match"]["rank"]
        assert corrected(entry, message["match"]) is None  # already points at it


# --- precedence_rank --------------------------------------------------------------------------------


class TestPrecedenceRank:
    def test_earlier_published_wins_across_time_zones(self) -> None:
        # 22:00 in New Delhi is 16:30 UTC, before 17:05 UTC, although "22:00" > "17:05" as text.
        seed = article("zzz-seed", published=SEED_ARTICLE.published)
        copy = article("aaa-copy", published=SYNDICATED_COPY.published)
        assert SEED_ARTICLE.published > SYNDICATED_COPY.published
        assert precedence_rank(seed) < precedence_rank(copy)

    def test_naive_stamps_are_taken_as_utc(self) -> None:
        naive = article("b", published="2019-12-30T16:30:00")
        aware = article("a", published="2019-12-30T16:30:00+00:00")
        assert precedence_rank(naive).split("|")[0] == precedence_rank(aware).split("|")[0]

    @pytest.mark.parametrize("published", [None, "", "30 December 2019", "not a date"])
    def test_undated_ranks_after_every_dated_article(self, published: str | None) -> None:
        undated = article("aaa", published=published)
        far_future = article("zzz", published="2999-01-01T00:00:00+00:00")
        assert precedence_rank(far_future) < precedence_rank(undated)

    def test_undated_articles_tie_on_id(self) -> None:
        assert precedence_rank(article("a", published=None)) < precedence_rank(article("b", published=None))

    @pytest.mark.parametrize("boilerplate", [NOT_EDITED, "(With inputs from PTI)"])
    def test_syndication_boilerplate_loses_a_tie(self, boilerplate: str) -> None:
        clean = article("zzz-clean", SEED_TEXT)
        syndicated = article("aaa-syndicated", SEED_TEXT + "\n" + boilerplate)
        assert clean["content_hash"] == syndicated["content_hash"]
        assert precedence_rank(clean) < precedence_rank(syndicated)

    def test_syndication_boilerplate_does_not_beat_an_earlier_time(self) -> None:
        syndicated = article("syndicated", SEED_TEXT + "\n" + NOT_EDITED, "2019-12-30T16:00:00+00:00")
        clean = article("clean", SEED_TEXT, "2019-12-30T16:01:00+00:00")
        assert precedence_rank(syndicated) < precedence_rank(clean)

    def test_a_full_tie_goes_to_the_smaller_id(self) -> None:
        assert precedence_rank(article("a1")) < precedence_rank(article("b0"))

    def test_a_date_only_copy_does_not_outrank_the_timestamped_original_of_the_same_day(self) -> None:
        original = article("original", published="2019-12-30T16:30:00+00:00")
        date_only_copy = article("copy", SEED_TEXT + "\n" + NOT_EDITED, published="2019-12-30T00:00:00")
        assert precedence_rank(original) < precedence_rank(date_only_copy)
