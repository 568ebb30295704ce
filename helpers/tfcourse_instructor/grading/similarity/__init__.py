"""Near-identical answers in a class.

- :mod:`.copies` - near-identical answers, by copydetect's fingerprints;
- :mod:`.copies_report` - the copy report: summary lines, ``copies.csv`` and ``copies.html``.
"""
