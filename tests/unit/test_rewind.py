"""When a partition's fetched records count as dropped, and when they are only on their way."""

from __future__ import annotations

from pipeline.stream.rewind import ConsumerProgress, RewindDetector

AFTER_S = 20.0


def progress(resume_at: int, position: int, on_the_way: int = 0) -> ConsumerProgress:
    return ConsumerProgress(resume_at=resume_at, position=position, on_the_way=on_the_way)


def test_a_partition_fetched_past_its_commit_with_nothing_on_the_way_is_reread_after_the_wait() -> None:
    detector = RewindDetector(AFTER_S)
    assert detector.observe({"raw[5]": progress(1, 3)}, now=0.0) == {}
    assert detector.observe({"raw[5]": progress(1, 3)}, now=AFTER_S - 1) == {}
    assert detector.observe({"raw[5]": progress(1, 3)}, now=AFTER_S) == {"raw[5]": 1}


def test_once_reported_the_wait_starts_again() -> None:
    detector = RewindDetector(AFTER_S)
    detector.observe({"raw[5]": progress(1, 3)}, now=0.0)
    assert detector.observe({"raw[5]": progress(1, 3)}, now=AFTER_S) == {"raw[5]": 1}
    assert detector.observe({"raw[5]": progress(1, 3)}, now=AFTER_S + 1) == {}
    assert detector.observe({"raw[5]": progress(1, 3)}, now=2 * AFTER_S + 1) == {"raw[5]": 1}


def test_records_queued_for_or_in_a_stream_are_not_dropped() -> None:
    detector = RewindDetector(AFTER_S)
    for now in (0.0, AFTER_S, 10 * AFTER_S):
        assert detector.observe({"raw[5]": progress(1, 3, on_the_way=1)}, now=now) == {}


def test_a_caught_up_partition_is_never_reread() -> None:
    detector = RewindDetector(AFTER_S)
    for now in (0.0, AFTER_S, 10 * AFTER_S):
        assert detector.observe({"raw[5]": progress(3, 3)}, now=now) == {}


def test_progress_between_samples_restarts_the_wait() -> None:
    detector = RewindDetector(AFTER_S)
    detector.observe({"raw[5]": progress(1, 3)}, now=0.0)
    detector.observe({"raw[5]": progress(2, 3)}, now=AFTER_S / 2)
    assert detector.observe({"raw[5]": progress(2, 3)}, now=AFTER_S) == {}
    assert detector.observe({"raw[5]": progress(2, 3)}, now=AFTER_S * 1.5) == {"raw[5]": 2}


def test_a_moment_on_the_way_restarts_the_wait() -> None:
    detector = RewindDetector(AFTER_S)
    detector.observe({"raw[5]": progress(1, 3)}, now=0.0)
    detector.observe({"raw[5]": progress(1, 3, on_the_way=2)}, now=AFTER_S / 2)
    assert detector.observe({"raw[5]": progress(1, 3)}, now=AFTER_S) == {}


def test_a_reset_or_a_partition_that_went_away_forgets_what_was_seen() -> None:
    detector = RewindDetector(AFTER_S)
    detector.observe({"raw[5]": progress(1, 3), "raw[7]": progress(0, 2)}, now=0.0)
    detector.observe({"raw[5]": progress(1, 3)}, now=1.0)  # raw[7] moved to another worker
    detector.reset()
    assert detector.observe({"raw[5]": progress(1, 3), "raw[7]": progress(0, 2)}, now=AFTER_S) == {}
    assert detector.observe({"raw[5]": progress(1, 3), "raw[7]": progress(0, 2)}, now=2 * AFTER_S) == {
        "raw[5]": 1,
        "raw[7]": 0,
    }
