"""tfcourse: helpers, reference implementations and grading tools for the transformer course kit."""

__version__ = "0.1.0"
