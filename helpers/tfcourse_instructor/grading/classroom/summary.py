"""What the grading of a class did to each submission, kept between runs.

``grading_summary.json`` at the course root records, per assignment and student, the
fingerprint of the submission that was graded, the issues found and a digest of the gradebook
entries its feedback shows, so that a re-run grades only what changed, still reports every
problem and rewrites only the feedback that is out of date.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission.issues import Issue

SUMMARY_JSON = "grading_summary.json"


@dataclass
class Record:
    """The last grading of one student's submission."""

    fingerprint: str
    graded: bool
    issues: list[Issue] = field(default_factory=list)
    feedback: str = ""
    """Digest of the gradebook entries the student's feedback was written from."""


def load_records(course: Course) -> dict[str, Record]:
    """The records of the previous runs of ``course``'s assignment (empty before the first)."""
    data = _load_all(course).get(course.assignment, {})
    return {
        student: Record(
            item["fingerprint"],
            item["graded"],
            [Issue(**i) for i in item["issues"]],
            item.get("feedback", ""),
        )
        for student, item in data.items()
    }


def save_records(course: Course, records: dict[str, Record]) -> None:
    """Write ``records`` of ``course``'s assignment (sorted by student, so that equal runs
    write equal files), keeping the other assignments'."""
    data = {
        student: {
            "fingerprint": record.fingerprint,
            "graded": record.graded,
            "issues": [issue.to_dict() for issue in record.issues],
            "feedback": record.feedback,
        }
        for student, record in sorted(records.items())
    }
    everything = {**_load_all(course), course.assignment: data}
    path = course.root / SUMMARY_JSON
    text = json.dumps(dict(sorted(everything.items())), indent=1, ensure_ascii=False)
    # Written whole or not at all: a run killed while writing keeps the previous records.
    partial = path.with_suffix(".json.part")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)


def _load_all(course: Course) -> dict[str, dict[str, dict]]:
    """Every assignment's records as stored: assignment -> student -> record."""
    path = course.root / SUMMARY_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def format_summary(assignment: str, records: dict[str, Record]) -> str:
    """Which submissions of ``assignment`` need attention and why, one line per issue."""
    flagged = {student: r for student, r in sorted(records.items()) if r.issues or not r.graded}
    if not flagged:
        return f"{assignment}: all {len(records)} submission(s) graded without problems"
    lines = [f"{assignment}: {len(flagged)} of {len(records)} submission(s) need attention:"]
    width = max(len(student) for student in flagged)
    for student, record in flagged.items():
        if not record.graded:
            lines.append(f"  {student.ljust(width)}  NOT GRADED")
        for issue in record.issues:
            lines.append(f"  {student.ljust(width)}  {issue}")
    return "\n".join(lines)
