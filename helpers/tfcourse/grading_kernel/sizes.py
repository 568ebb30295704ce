"""The largest message between a grading kernel and the runner of its checks.

A module without torch: the grader's command process states the limit in its reports and
need not load torch for it.
"""

MAX_BYTES = 64 * 2**20
"""Longest encoded text either side accepts."""
