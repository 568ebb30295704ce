"""Quick mode is on exactly when a notebook is graded or run by the kit."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import tfcourse
from tfcourse.runmode import AUTOGRADER_MARKER, GRADING_VARIABLE, QUICK_VARIABLE, quick_mode


def test_a_students_run_is_full_size(monkeypatch):
    monkeypatch.delenv(GRADING_VARIABLE, raising=False)
    monkeypatch.delenv(QUICK_VARIABLE, raising=False)
    assert not quick_mode()


@pytest.mark.parametrize("variable", [GRADING_VARIABLE, QUICK_VARIABLE])
def test_nbgrader_and_the_kit_turn_quick_mode_on(monkeypatch, variable):
    monkeypatch.delenv(GRADING_VARIABLE, raising=False)
    monkeypatch.delenv(QUICK_VARIABLE, raising=False)
    monkeypatch.setenv(variable, "1")
    assert quick_mode()


def shipped_quick_mode(folder: Path) -> str:
    """What ``quick_mode()`` says in a kernel started in ``folder``, with no grading variable
    set: the helpers next to the notebook are imported before the installed ones."""
    env = {k: v for k, v in os.environ.items() if k not in (GRADING_VARIABLE, QUICK_VARIABLE)}
    code = "import tfcourse.runmode as m; print(m.__file__, m.quick_mode())"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=folder, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_helpers_shipped_with_the_marker_turn_quick_mode_on(tmp_path):
    shipped = tmp_path / "tfcourse"
    shutil.copytree(Path(tfcourse.__file__).parent, shipped)
    assert shipped_quick_mode(tmp_path) == f"{shipped / 'runmode.py'} False\n"
    (shipped / AUTOGRADER_MARKER).write_text("graded on Gradescope\n")
    assert shipped_quick_mode(tmp_path) == f"{shipped / 'runmode.py'} True\n"
