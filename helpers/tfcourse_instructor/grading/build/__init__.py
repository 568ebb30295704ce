"""Building and releasing: from the instructor's text twins to what students receive.

    authoring/ twins ──build──▶ source/ ──release──▶ release/ ──publish──▶ student/

- :mod:`.authoring` - source notebooks from their text twins (``build``);
- :mod:`.cells` - the cells the build adds to every source notebook (Colab set-up, submit
  check), written once;
- :mod:`.public_tests` - students' copies of the test files, with the hidden cases cut out;
- :mod:`.release` - ``release/`` from ``source/``: nbgrader's student notebooks plus the
  public test files (``release``);
- :mod:`.publish` - the student distribution: everything a student may see, and nothing
  else (``publish``);
- :mod:`.answers` - the graded answers (solutions, references, hidden cases, model answers)
  searched for in a folder: one found in the distribution stops its publication;
- :mod:`.gradescope` - Otter autograders for Gradescope from the same test files
  (``python -m tfcourse_instructor.grading.build.gradescope``).
"""
