"""The class report (``report``, and after every ``grade``): how the class did, from the
gradebook, over every assignment graded so far.

:mod:`.class_report` composes the steps:

- :mod:`.grades` - ``grades.csv``: a row per student, a column per assignment and the total;
- :mod:`.cases` - the test cases each student failed, as their autograded notebooks record;
- :mod:`.questions` - per-question statistics: mean, spread, full points, failed cases;
  ``questions.csv`` and ``cases.csv``;
- :mod:`.figure` - ``scores.png``: the distribution of points per question;
- :mod:`.page` - ``index.html``: the report as a page;
- :mod:`.class_report` - every file of the report, written in one place.
"""
