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
- :mod:`.preloaded` - nbgrader's runs, forked from a process that imported it once;
- :mod:`.served` - the grader's handle on such a process, reached through a socket pair;
- :mod:`.sandbox` - bubblewrap by allowlist (:mod:`.sandbox.bwrap`), the launch as an
  unprivileged user (:mod:`.sandbox.launch`), control groups (:mod:`.sandbox.resources`),
  the zygote that starts each sandbox's fork server already imported (:mod:`.sandbox.zygote`).

It imports only :mod:`tfcourse_instructor.grading.course` and the student package
(:mod:`tfcourse.grading_kernel`): nothing of a class, a release or a command.
"""
