"""Grading glue around nbgrader and otter: build, release, samples, autograde, scores.

Each module is one step; :mod:`tfcourse_instructor.grading.cli` composes them.
"""
