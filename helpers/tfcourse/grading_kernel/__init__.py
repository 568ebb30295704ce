"""What runs inside a submission's grading sandbox, and the encoding it answers in.

- :mod:`~tfcourse.grading_kernel.kernel`: the grading kernel (limits, then ipykernel);
- :mod:`~tfcourse.grading_kernel.forkserver`: forks kernels from a process that has already
  imported torch and the rest;
- :mod:`~tfcourse.grading_kernel.zygote`: imports that once per grading run, outside every
  sandbox, and starts each sandbox's fork server by entering the sandbox;
- :mod:`~tfcourse.grading_kernel.confinement`: the Linux calls that enter a sandbox and give up
  what entering gave;
- :mod:`~tfcourse.grading_kernel.served`: the request loop and exit statuses the zygote shares
  with nbgrader's preloaded process;
- :mod:`~tfcourse.grading_kernel.requests_kernel`: the kernel class, which passes the trusted
  test runner's requests to the agent;
- :mod:`~tfcourse.grading_kernel.agent`: answers the trusted test runner's requests;
- :mod:`~tfcourse.grading_kernel.wire`: the plain-data encoding of those requests and answers;
- :mod:`~tfcourse.grading_kernel.attempts`: the record of what a submission tried.

These modules are part of the student package because a sandbox mounts that package and
nothing else of the kit; they hold no test, answer or secret. Points are never computed here.
"""
