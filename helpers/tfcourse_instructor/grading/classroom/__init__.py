"""Grading a class: every submission in, grades, feedback and reports out.

:mod:`.pipeline` composes the steps; each submission is graded by
:mod:`tfcourse_instructor.grading.submission`, on this machine or on a Dask cluster
(:mod:`tfcourse_instructor.grading.cluster`); near-identical answers are found by
:mod:`tfcourse_instructor.grading.similarity`.

- :mod:`.intake` - submissions from an LMS download, or already in ``submitted/``;
- :mod:`.archive` - reading an LMS download within limits: nothing a zip says is trusted;
- :mod:`.preflight` - pre-flight checks: each notebook made safe for nbgrader, and what was
  fixed;
- :mod:`.pipeline` - the class pipeline, composed in one place (``grade``);
- :mod:`.merge` - the grades of scratch courses written into the class gradebook;
- :mod:`.autogrades` - what nbgrader's autograde records for executed notebooks, a batch of
  submissions per transaction;
- :mod:`.summary` - what grading did to each submission, kept between runs;
- :mod:`.feedback` - feedback HTML per student, kept in step with the gradebook;
- :mod:`.scores` - per-student, per-question scores: a table and a CSV;
- :mod:`.reproduce` - does a submission's code produce the outputs it was saved with
  (``reproduce``);
- :mod:`.doors` - what plain ``nbgrader autograde`` and ``zip_collect`` do here: they stop;
- :mod:`.formgrader` - the Jupyter server extension that serves nbgrader's formgrader behind
  the kit's answer to its *Autograde* button.
"""
