"""The course file: one assignment per notebook, released or not, each with its due date; and
the late penalty nbgrader applies from it."""

from datetime import UTC, datetime

import pytest

from tfcourse_instructor.grading.classroom.merge import PenaltyPerDay
from tfcourse_instructor.grading.schedule import (
    COURSE_FILE,
    ScheduleError,
    assignment_names,
    read_schedule,
    select,
)

from conftest import REPO

DAY = 24 * 3600


def write(tmp_path, text):
    (tmp_path / COURSE_FILE).write_text(text, encoding="utf-8")
    return tmp_path


def test_the_committed_course_lists_every_notebook_in_order():
    names = assignment_names(REPO)
    assert names == sorted(path.name for path in (REPO / "source").iterdir())
    assert all((REPO / "authoring" / name / f"{name}.py").is_file() for name in names)
    dues = [a.due for a in read_schedule(REPO)]
    assert all(dues) and dues == sorted(dues)


def test_released_and_due_are_read_and_selection_follows_them(tmp_path):
    root = write(
        tmp_path,
        '[[assignment]]\nname = "01_a"\nreleased = true\ndue = 2027-01-25T23:59:00Z\n'
        '[[assignment]]\nname = "02_b"\n',
    )
    first, second = read_schedule(root)
    assert (first.released, first.due) == (True, datetime(2027, 1, 25, 23, 59, tzinfo=UTC))
    assert (second.released, second.due) == (False, None)
    assert select(root, None) == ["01_a", "02_b"]
    assert select(root, None, released_only=True) == ["01_a"]
    assert select(root, ["02_b"], released_only=True) == ["02_b"]  # named: graded on request
    with pytest.raises(ScheduleError, match=r"not in course\.toml: 03_c"):
        select(root, ["03_c"])


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[[assignment]]\nname = "../x"\n', "not an assignment name"),
        ('[[assignment]]\nname = "01_a"\ndue = 2027-01-25T23:59:00\n', "needs a time zone"),
        ('[[assignment]]\nname = "01_a"\n[[assignment]]\nname = "01_a"\n', "each assignment once"),
        ("", "each assignment once"),
        ("[[assignment]\n", r"course\.toml"),
    ],
    ids=["bad-name", "naive-due", "duplicate", "empty", "not-toml"],
)
def test_a_course_file_the_kit_cannot_use_is_refused_with_the_reason(tmp_path, text, error):
    with pytest.raises(ScheduleError, match=error):
        read_schedule(write(tmp_path, text))


@pytest.mark.parametrize(
    ("seconds_late", "penalty"),
    [(1, 1.0), (DAY, 1.0), (DAY + 1, 2.0), (36 * 3600, 2.0), (9.5 * DAY, 10.0), (30 * DAY, 10.0)],
)
def test_the_late_penalty_is_a_tenth_per_started_day_and_never_more_than_the_score(
    seconds_late, penalty
):
    assert PenaltyPerDay().late_submission_penalty("s", 10.0, seconds_late) == pytest.approx(
        penalty
    )
