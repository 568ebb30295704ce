"""Testing the tests: do the graders give the points they should?

- :mod:`.samples` - the sample submissions the main job grades, derived from ``source/``
  and ``release/`` (``samples``);
- :mod:`.mutants` - every wrong answer in ``authoring/mutants/`` loses points, every
  correct alternative keeps them (``mutants``);
- :mod:`.parity` - the trusted runner reaches the verdicts a check inside the notebook
  reaches (``python -m tfcourse_instructor.grading.selftest.parity``).
"""
