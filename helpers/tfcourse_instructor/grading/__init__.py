"""The instructor's commands: building, releasing, grading and testing the tests.

``python -m tfcourse_instructor.grading COMMAND`` (:mod:`.cli`) maps each command to the
sub-package that does it; a newcomer who knows the command knows the folder:

- :mod:`.build` - ``build``, ``release``, ``publish``: authoring twins to source notebooks,
  public tests, the release, the student distribution and its scan for graded answers,
  Gradescope zips;
- :mod:`.classroom` - ``grade``, ``reproduce``: grading a class, from an LMS download to
  the gradebook, feedback and scores;
- :mod:`.cluster` - ``grade --scheduler``: the submissions of a class graded on a Dask
  cluster, one task each, the gradebook kept by the coordinator;
- :mod:`.similarity` - the end of ``grade``: near-identical answers and the copy report;
- :mod:`.report` - ``report`` (and the end of ``grade``): ``grades.csv`` over every
  assignment graded so far and the class report: per-question statistics, failed test
  cases, a figure;
- :mod:`.submission` - grading one submission: its scratch course, its checks run outside
  its kernel by the trusted runner, its sandbox (``sandbox`` explains it);
- :mod:`.rendering` - the pages nbgrader renders from notebooks (feedback, formgrader), with
  their math as MathML: readable offline;
- :mod:`.selftest` - ``samples``, ``mutants``: testing the tests with sample submissions,
  mutants and the trusted runner's parity with the notebook;
- :mod:`.course` - where things live in a course directory, used by all of them.

Imports point one way: :mod:`.cli` -> :mod:`.selftest` or :mod:`.report` ->
:mod:`.classroom` or :mod:`.build` -> :mod:`.submission` -> :mod:`.course` and the student package
(:mod:`tfcourse`), :mod:`.classroom` -> :mod:`.cluster` -> :mod:`.submission`, :mod:`.classroom`
-> :mod:`.rendering`, the commands -> :mod:`.similarity`; no sub-package imports another's
private names.
"""
