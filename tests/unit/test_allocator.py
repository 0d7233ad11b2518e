"""The worker's allocator: jemalloc preloaded by `newsfeed run` when installed, the system's otherwise."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.ops import allocator
from pipeline.ops.allocator import allocator_in_use, preload_environment, worker_environment
from pipeline.ops.supervisor import roles_for
from pipeline.settings import Settings

LIBRARY = "libjemalloc.so.2"


def test_preload_adds_the_library_after_what_was_preloaded() -> None:
    found = preload_environment({"PATH": "/bin", "LD_PRELOAD": "/opt/libfoo.so"}, LIBRARY)
    assert found == {"PATH": "/bin", "LD_PRELOAD": f"/opt/libfoo.so {LIBRARY}"}


def test_preload_names_the_library_once() -> None:
    found = preload_environment({"LD_PRELOAD": f"{LIBRARY}:/opt/libfoo.so"}, LIBRARY)
    assert found["LD_PRELOAD"] == f"{LIBRARY} /opt/libfoo.so"


def test_jemalloc_is_preloaded_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: LIBRARY)
    assert worker_environment("jemalloc", {"HOME": "/home/x"}) == {"HOME": "/home/x", "LD_PRELOAD": LIBRARY}


def test_system_allocator_leaves_the_environment_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: LIBRARY)
    assert worker_environment("system", {"HOME": "/home/x"}) == {"HOME": "/home/x"}


def test_missing_jemalloc_is_a_warning_not_a_failure(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: None)
    with caplog.at_level(logging.WARNING):
        assert worker_environment("jemalloc", {"HOME": "/home/x"}) == {"HOME": "/home/x"}
    assert "libjemalloc2" in caplog.text


def test_only_the_worker_role_gets_its_own_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(allocator, "jemalloc_library", lambda: LIBRARY)
    settings = Settings(crawl={"feeds": ["https://example.org/feed"]}, store={"sink_in_worker": False})
    roles = {role.name: role for role in roles_for(settings)}
    assert set(roles) == {"crawler", "worker", "sink"}
    environment = roles["worker"].environment
    assert environment is not None
    assert LIBRARY in environment["LD_PRELOAD"].split()
    assert roles["crawler"].environment is None
    assert roles["sink"].environment is None


def test_allocator_in_use_reads_the_process_maps(tmp_path: Path) -> None:
    maps = tmp_path / "maps"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libjemalloc.so.2\n")
    assert allocator_in_use(maps) == "jemalloc"
    maps.write_text("7f00-7f01 r-xp 0 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n")
    assert allocator_in_use(maps) == "system"
    assert allocator_in_use(tmp_path / "absent") == "system"


def test_a_process_started_with_the_environment_runs_on_jemalloc() -> None:
    library = allocator.jemalloc_library()
    if library is None:
        pytest.skip("libjemalloc is not installed (deploy/install-system-packages.sh installs it)")
    code = "from pipeline.ops.allocator import allocator_in_use; print(allocator_in_use())"
    found = subprocess.run(
        [sys.executable, "-c", code],
        env=worker_environment("jemalloc", {"PATH": "/usr/bin:/bin"}),
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "jemalloc"
