"""The soak test's options: how long it runs (`--soak-minutes`), its time limit, and its summary table."""

from __future__ import annotations

import pytest

DEFAULT_SOAK_MINUTES = 15.0
# Beyond the load itself: start-up, the restart, the drain after the load stops, and the final stop.
OVERHEAD_S = 1800
SUMMARY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak-minutes",
        type=float,
        default=DEFAULT_SOAK_MINUTES,
        help=f"minutes of steady load in the soak test (default {DEFAULT_SOAK_MINUTES:g})",
    )


def soak_minutes(config: pytest.Config) -> float:
    minutes: float = config.getoption("--soak-minutes", default=DEFAULT_SOAK_MINUTES)
    return minutes


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    limit_s = soak_minutes(config) * 60 + OVERHEAD_S
    for item in items:
        if item.get_closest_marker("soak") is not None:
            item.add_marker(pytest.mark.timeout(limit_s))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    summary = config.stash.get(SUMMARY, None)
    if summary is not None:
        terminalreporter.write_sep("=", "soak")
        terminalreporter.write_line(summary)
