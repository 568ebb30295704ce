"""The grading run's phase timings: written only when asked for, read back as recorded."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tfcourse_instructor.grading.submission import timings


def test_phases_are_appended_to_the_named_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "timings.jsonl"
    monkeypatch.setenv(timings.VARIABLE, str(log))
    with timings.phase("checks") as counts:
        counts["round_trips"] = 7
    before = time.time()
    timings.record("merge", 1.5)
    found = timings.read(log)
    assert [entry["phase"] for entry in found] == ["checks", "merge"]
    assert found[0]["round_trips"] == 7 and found[0]["seconds"] >= 0
    assert found[1]["seconds"] == 1.5
    assert found[0]["ended"] <= before <= found[1]["ended"] <= time.time()


def test_nothing_is_written_unless_a_file_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(timings.VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    with timings.phase("cells"):
        pass
    assert os.listdir(tmp_path) == []
    assert timings.read(tmp_path / "absent.jsonl") == []


def test_a_link_in_place_of_the_file_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("", encoding="utf-8")
    log = tmp_path / "timings.jsonl"
    log.symlink_to(target)
    monkeypatch.setenv(timings.VARIABLE, str(log))
    with pytest.raises(OSError):
        timings.record("merge", 1.0)
    assert target.read_text(encoding="utf-8") == ""
