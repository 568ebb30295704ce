"""The instructor's command line: every command is described where `--help` lists them."""

import re
import subprocess
import sys


def test_help_describes_every_command():
    result = subprocess.run(
        [sys.executable, "-m", "tfcourse_instructor.grading", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    commands = re.search(r"\{([a-z,]+)\}", result.stdout)[1].split(",")
    described = {line.split()[0] for line in result.stdout.splitlines() if re.match(r"[a-z]", line)}
    aliases = {"autograde"}  # named in grade's description
    assert {"gradescope", "parity", "grade", "mutants"} <= set(commands)
    assert set(commands) - aliases <= described, set(commands) - aliases - described


def test_the_commands_start_without_loading_torch():
    """Checks, the only work that needs torch, run in each submission's nbgrader process and
    in `parity`: the command's own process starts without torch (seconds sooner)."""
    code = "import sys, tfcourse_instructor.grading.cli; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
