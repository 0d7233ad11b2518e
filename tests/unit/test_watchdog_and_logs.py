"""The stall watchdog's rule and the log formats, without a broker."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from aiokafka import TopicPartition

from pipeline.ops.logs import configure_logging, current_trace_id
from pipeline.ops.watchdog import PartitionLag, StallDetector

TP = TopicPartition("newsfeed.raw-pages.v1", 3)


def lag(committed: int | None, end: int) -> list[PartitionLag]:
    return [PartitionLag(TP, committed, end)]


class TestStallDetector:
    def test_a_partition_stalls_when_its_offset_stands_still_while_lag_grows(self) -> None:
        detector = StallDetector(stall_after_s=60)
        assert detector.observe(lag(10, 20), now=0) == ([], [])
        assert detector.observe(lag(10, 25), now=30) == ([], [])
        assert detector.observe(lag(10, 30), now=61) == ([TP], [])
        assert detector.is_stalled(TP)
        assert detector.observe(lag(10, 31), now=90) == ([], []), "reported once"

    def test_moving_again_recovers(self) -> None:
        detector = StallDetector(stall_after_s=10)
        detector.observe(lag(10, 20), now=0)
        detector.observe(lag(10, 20), now=11)
        assert detector.is_stalled(TP)
        assert detector.observe(lag(11, 20), now=12) == ([], [TP])
        assert not detector.is_stalled(TP)

    def test_no_lag_is_never_a_stall(self) -> None:
        detector = StallDetector(stall_after_s=10)
        for now in range(0, 100, 10):
            assert detector.observe(lag(50, 50), now=now) == ([], [])

    def test_a_shrinking_lag_is_not_a_stall(self) -> None:
        # The offset is committed at intervals; between commits the lag may stand, but the end does not
        # run away: only a lag that keeps growing (or stands) with no commit counts.
        detector = StallDetector(stall_after_s=10)
        detector.observe(lag(None, 40), now=0)
        assert detector.observe(lag(None, 30), now=20) == ([], [])


class TestLogs:
    @pytest.fixture(autouse=True)
    def _restore_root_logger(self) -> Iterator[None]:
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        yield
        root.handlers[:] = handlers
        root.setLevel(level)

    def test_json_lines_carry_the_trace_id_and_extras(self) -> None:
        stream = io.StringIO()
        configure_logging("INFO", "json", stream)
        token = current_trace_id.set("trace-abc")
        try:
            logging.getLogger("pipeline.test").info("fetched %s", "a page", extra={"url": "http://x"})
        finally:
            current_trace_id.reset(token)
        logging.getLogger("pipeline.test").warning("no trace here")
        first, second = (json.loads(line) for line in stream.getvalue().splitlines())
        assert first["message"] == "fetched a page"
        assert first["trace_id"] == "trace-abc"
        assert first["url"] == "http://x"
        assert first["level"] == "info"
        assert first["logger"] == "pipeline.test"
        assert "trace_id" not in second

    def test_text_for_people(self) -> None:
        stream = io.StringIO()
        configure_logging("INFO", "text", stream)
        token = current_trace_id.set("trace-xyz")
        try:
            logging.getLogger("pipeline.test").info("hello")
        finally:
            current_trace_id.reset(token)
        line = stream.getvalue().strip()
        assert line.endswith("pipeline.test: hello [trace trace-xyz]")

    @pytest.mark.parametrize(("tty", "expect_json"), [(True, False), (False, True)])
    def test_auto_picks_text_on_a_terminal(self, tty: bool, expect_json: bool) -> None:
        class Stream(io.StringIO):
            def isatty(self) -> bool:
                return tty

        stream = Stream()
        configure_logging("INFO", "auto", stream)
        logging.getLogger("pipeline.test").info("hi")
        assert stream.getvalue().startswith("{") is expect_json

    def test_exceptions_are_kept(self) -> None:
        stream = io.StringIO()
        configure_logging("INFO", "json", stream)
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("pipeline.test").exception("failed")
        entry = json.loads(stream.getvalue())
        assert "ValueError: boom" in entry["exception"]
