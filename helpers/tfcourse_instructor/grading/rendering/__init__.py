"""How notebooks become the pages students and graders read: feedback HTML and formgrader's
submission pages, both rendered by nbconvert with nbgrader's templates, both readable offline.

- :mod:`.safe_markdown` - what students wrote as inert HTML: no script, no look of the page's
  own content;
- :mod:`.mathml` - math in markdown as MathML Core, written with the page: browsers draw it
  with no script and no network;
- :mod:`.page_templates` - the kit's nbconvert templates, searched before nbgrader's: the pages
  load no MathJax from a CDN; formgrader's page shows the rubrics and hidden cases, feedback
  does not;
- :mod:`.feedback_exporter` - the feedback pages' exporter: nbconvert's, without its second
  pass over each page;
- :mod:`.rubrics` - a written answer's model answer and rubric, read from ``source/``, for
  formgrader's manual grading page;
- :mod:`.hidden_failures` - a test cell's failed hidden cases with their messages and, read
  from the course's test files, their sources, for the same page.
"""
