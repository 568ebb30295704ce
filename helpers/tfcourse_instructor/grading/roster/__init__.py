"""Students' names from a roster, for formgrader (``grade --roster CSV``).

- :mod:`.reading` - a roster CSV read and checked whole (nbgrader's columns), before grading;
- :mod:`.names` - the names written into the gradebook with nbgrader's own API, and the id in
  place of a name for a student the roster does not list.
"""
