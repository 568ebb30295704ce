"""The instructor's side of the course kit: never published, never mounted in a sandbox.

- :mod:`tfcourse_instructor.reference`: reference implementations of graded tasks;
- :mod:`tfcourse_instructor.grading`: building, releasing, publishing and grading.

The student package (:mod:`tfcourse`) is a separate folder: what students install, and the
only part of the kit a grading sandbox can see.
"""
