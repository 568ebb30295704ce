"""tfcourse: the student package of the transformer course kit (checks, data, plots, models).

The instructor's references and grading tools are another package, ``tfcourse_instructor``."""

__version__ = "0.1.0"
