"""Grading a class on a Dask cluster: one task per submission, one writer of the gradebook.

The coordinator (:mod:`.coordinator`, the kit's ``grade --scheduler``) keeps intake, the
pre-flight checks, the gradebook, feedback and export; each worker grades the submissions it is
sent exactly as one machine does, in a sandbox of their own, from a bundle of the course's
grading inputs (:mod:`.bundle`) identified by a digest (:mod:`.worker`). Results computed from
other inputs, another kit or other pinned packages are refused. The plugin the coordinator
registers on every worker (:mod:`.plugin`) removes what killed runs left on it.
"""
