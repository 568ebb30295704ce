"""What a test file declares besides its cases, and how the checks enforce it.

- :mod:`.shortcuts` - ``forbidden = [...]``: the calls a question's solution may not make,
  found in its code;
- :mod:`.callwatch` - those calls recorded while the question is checked;
- :mod:`.hidden_points` - ``hidden_points = N``: the points of the hidden cases a student's
  copy of the test file no longer holds.
"""
