"""The scratch course a submission is graded in holds nothing of other students: their code
runs there and could print what it finds into their own feedback."""

import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.workspace import Limits, Workspace

pytestmark = pytest.mark.slow


def test_the_template_gradebook_knows_the_assignment_and_no_student(graded_samples, tmp_path):
    course, _ = graded_samples
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        students = [student.id for student in gradebook.students]
    assert len(students) >= 8  # the class gradebook the template is copied from

    workspace = Workspace(course, tmp_path, Limits())
    workspace.prepare()
    workspace.close()
    template = Course(tmp_path / "template", course.assignment)
    with Gradebook(f"sqlite:///{template.gradebook}") as gradebook:
        assert gradebook.students == []
        notebooks = [
            notebook.name for notebook in gradebook.find_assignment(course.assignment).notebooks
        ]
    assert sorted(notebooks) == sorted(course.notebook_names())
    # Ids that occur nowhere in the notebooks, so finding one means a student's rows.
    sources = "".join(path.read_text() for path in course.source_dir.glob("*.ipynb"))
    distinctive = [student for student in students if student not in sources]
    assert distinctive and all(s.encode() in course.gradebook.read_bytes() for s in distinctive)
    raw = template.gradebook.read_bytes()  # deleted rows must not linger in free pages
    assert not [student for student in distinctive if student.encode() in raw]
