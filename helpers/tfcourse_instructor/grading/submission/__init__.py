"""Grading one submission: a scratch course, checks outside its kernel, a sandbox.

- :mod:`.workspace` - a scratch course per submission: autograde with limits, its kernels
  forked inside its sandbox and reached through sockets (:class:`.workspace.Limits`);
- :mod:`.execution` - nbgrader's Execute step with time limits, and test cells a
  submission cannot rig;
- :mod:`.remote` - the trusted test runner: a question's checks run in the grader's
  process on proxies of the notebook's objects, over the kernel's wire;
- :mod:`.issues` - what went wrong with a submission, in words a grader can act on;
- :mod:`.shown_outputs` - what a graded notebook shows: the outputs the student submitted,
  in safe types and sizes;
- :mod:`.graded_outputs` - what grading writes into a graded notebook for the rest of the
  kit to read (the errors a limit leaves, the metadata of the kit's outputs);
- :mod:`.preloaded` - nbgrader's runs, forked from a process that imported it once;
- :mod:`.served` - the grader's handle on such a process, reached through a socket pair;
- :mod:`.warm` - the processes a grading run forks from (that one and the zygote), shared by
  the assignments a command grades;
- :mod:`.folders` - scratch folders named after the process that made them, removed by the
  next run when that process was killed;
- :mod:`.timings` - how long each phase took, for the grading benchmark;
- :mod:`.sandbox` - bubblewrap by allowlist (:mod:`.sandbox.bwrap`), the launch as an
  unprivileged user (:mod:`.sandbox.launch`), control groups (:mod:`.sandbox.resources`),
  the zygote that starts each sandbox's fork server already imported (:mod:`.sandbox.zygote`).

It imports only :mod:`tfcourse_instructor.grading.course` and the student package
(:mod:`tfcourse.grading_kernel`): nothing of a class, a release or a command. (The preloaded
process imports, to have it loaded once for every run, the late-penalty plugin that the
course's ``nbgrader_config.py`` names, in :mod:`tfcourse_instructor.grading.classroom.merge`.)
"""
