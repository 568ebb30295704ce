"""The trusted runner reaches the verdicts of a check inside the notebook, from outside it.

Parity: notebooks run in a kernel started with jupyter_client; at each chosen test cell the
question is checked inside the kernel and through the runner's proxies, case by case
(:mod:`tfcourse_instructor.grading.selftest.parity`). Then the runner's own promises, on a small
kernel: copies of the test's tensors, write-back, one RNG stream, gradients, callbacks, and a kernel
that answers garbage or nothing.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import torch

from tfcourse.assertions import call_each
from tfcourse_instructor.grading.selftest.parity import Kernel, compare_notebook
from tfcourse_instructor.grading.selftest.samples import UNSCALED
from tfcourse_instructor.grading.submission import remote

from conftest import all_reference_notebooks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def references(repo_course):
    return all_reference_notebooks(repo_course)


@pytest.mark.parametrize(
    ("notebook", "questions", "bug"),
    [
        ("01_attention", {"q1_sdpa", "q1_mha"}, False),
        ("01_attention", {"q1_sdpa"}, True),
        ("02_encoder", {"q2_encoder", "q2_lm"}, False),
        ("04_theory", {"q4_kernel", "q4_bptt"}, False),
    ],
)
def test_remote_checks_give_the_in_kernel_outcomes(
    repo_course, references, notebook, questions, bug
):
    notebooks = {notebook: references[notebook]}
    if bug:
        UNSCALED.apply(notebooks)
    found = compare_notebook(notebooks[notebook], repo_course[notebook], questions)
    assert {parity.question for parity in found} == questions
    for parity in found:
        assert parity.same, (parity.question, parity.messages)
        assert any(passed for _, passed in parity.remote)
        if bug:
            assert not all(passed for _, passed in parity.remote)


NOTEBOOK = """
import torch, torch.nn.functional as F

def zeroing_attention(query, key, value):
    query.zero_(); key.zero_()
    weights = torch.softmax(query @ key.transpose(-2, -1), dim=-1)
    return weights @ value, weights

def train(model, steps, generator):
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        x = torch.randn(4, model.in_features, generator=generator)
        model(x).square().mean().backward()
        optimizer.step()
    model.eval()
    return steps

def noisy(x):
    return F.dropout(x, 0.5, training=True)

def steering(x):
    torch.manual_seed(0)  # a state the notebook chose, so that the test's draws are known
    return x

def apply(function, x):
    return function(x) * 2

class Liar:
    def __eq__(self, other):
        return True

def scale_(linear, factor):
    with torch.no_grad():
        linear.weight.mul_(factor)
    return factor

consumed = []

def counted(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise KeyError("no more")
        consumed.append(i)
        yield torch.zeros(2, dtype=torch.uint16) if i == 0 and fail_at == -1 else i

class Box:
    def __init__(self, size):
        self.size = size
        self.weight = torch.nn.Parameter(torch.ones(size))
    def scaled(self, x):
        return self.weight * x
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    kernel = Kernel(Path(tmp_path_factory.mktemp("kernel")))
    kernel.run(NOTEBOOK)
    yield remote.Session(remote.blocking_transport(kernel.client), 10**12), kernel
    kernel.stop()


@pytest.fixture
def fresh(tmp_path):
    """A kernel of the test's own (whose agent it may change), and a transport to it."""
    kernel = Kernel(tmp_path)
    yield kernel, remote.blocking_transport(kernel.client)
    kernel.stop()


def test_the_test_keeps_its_tensors_whatever_the_student_does_to_them(session):
    env = remote.RemoteGlobals(session[0])
    query, key, value = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 6)
    kept = query.clone(), key.clone()
    out, weights = env["zeroing_attention"](query, key, value)
    assert torch.equal(query, kept[0]) and torch.equal(key, kept[1])
    assert type(out) is torch.Tensor and torch.allclose(weights, torch.full((2, 3, 5), 0.2))


def test_what_student_code_does_to_the_tests_objects_is_written_back(session):
    env = remote.RemoteGlobals(session[0])
    model = torch.nn.Linear(3, 2)
    before = model.weight.detach().clone()
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    assert env["train"](model, 3, generator) == 3
    assert not torch.equal(model.weight, before) and model.weight.grad is not None
    assert not model.training
    assert not torch.equal(generator.get_state(), state)


def test_seeding_the_runner_seeds_the_notebook_and_each_call_draws_anew(session):
    env = remote.RemoteGlobals(session[0])
    torch.manual_seed(5)
    first, second = env["noisy"](torch.ones(1000)), env["noisy"](torch.ones(1000))
    torch.manual_seed(5)
    again = env["noisy"](torch.ones(1000))
    assert torch.equal(first, again) and not torch.equal(first, second)
    assert set(first.unique().tolist()) == {0.0, 2.0}  # dropout ran in the kernel


def test_equality_with_a_notebook_object_is_decided_here(session):
    env = remote.RemoteGlobals(session[0])
    liar = env["Liar"]()
    same = liar
    assert liar == same
    assert (liar == "the expected text") is False  # its __eq__ says True
    assert liar != [1, 2, 3] and "the expected text" != liar  # noqa: SIM300 (reflected)


def test_the_kernel_never_sets_the_tests_random_stream(session):
    """A notebook function that sets its RNG to a state it chose: the test's next draws are
    those of its own stream, advanced by one draw for the call's seed."""
    env = remote.RemoteGlobals(session[0])
    torch.manual_seed(6)
    env["steering"](torch.ones(3))
    after_call = torch.rand(3)
    torch.manual_seed(6)
    torch.randint(0, 2**62, (), dtype=torch.int64)
    assert torch.equal(after_call, torch.rand(3))
    torch.manual_seed(0)
    assert not torch.equal(after_call, torch.rand(3))


def test_gradients_flow_through_remote_calls_into_tests_and_notebook_objects(session):
    env = remote.RemoteGlobals(session[0])
    box = env["Box"](3)
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (box.scaled(x) * torch.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert torch.equal(x.grad, torch.tensor([1.0, 10.0, 100.0]))
    assert torch.equal(box.weight.grad, torch.tensor([1.0, 20.0, 300.0]))
    inputs = (torch.randn(3, dtype=torch.float64, requires_grad=True),)
    scaled = lambda t: box.scaled(t.float()).double()  # noqa: E731
    assert torch.autograd.gradcheck(scaled, inputs, eps=1e-2, atol=1e-3)


def test_the_notebook_calls_back_the_tests_functions_with_data(session):
    env = remote.RemoteGlobals(session[0])

    def plus_one(x):
        return x + 1

    assert torch.equal(env["apply"](plus_one, torch.zeros(2)), torch.full((2,), 2.0))


def test_a_notebook_object_is_one_proxy_and_answers_isinstance(session):
    env = remote.RemoteGlobals(session[0])
    box = env["Box"](2)
    assert box is not env["Box"](2) and env["Box"] is env["Box"]
    assert isinstance(box, env["Box"]) and box.size == 2
    assert "Box" in env and "Missing" not in env and env.get("Missing") is None
    with pytest.raises(AttributeError):
        _ = box.missing


def test_many_calls_go_in_one_request_as_if_made_one_by_one(session):
    runner, _ = session
    env = remote.RemoteGlobals(runner)
    noisy, scale_ = env["noisy"], env["scale_"]
    x = torch.ones(1000)
    torch.manual_seed(5)
    one_by_one = [noisy(x), noisy(x)]
    torch.manual_seed(5)
    before = runner.round_trips
    together = call_each(noisy, [(x,), (x,)])
    assert runner.round_trips - before == 1
    assert all(torch.equal(a, b) for a, b in zip(one_by_one, together, strict=True))
    first, second = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    weights = first.weight.detach().clone(), second.weight.detach().clone()
    assert call_each(scale_, [(first, 2.0), (second, 3.0)]) == [2.0, 3.0]
    assert torch.equal(first.weight, 2 * weights[0]) and torch.equal(second.weight, 3 * weights[1])
    box = env["Box"](3)
    x = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    sum(call_each(box.scaled, [(x,), (2 * x,)])).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), 3.0))
    assert call_each(lambda v: v + 1, [(1,), (2,)]) == [2, 3]  # a function of the test: here


def test_a_kernel_that_answers_more_results_than_calls_breaks_the_check(fresh):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    kernel.run(
        "import tfcourse.grading_kernel.agent as agent\n"
        "agent._OPS['call'] = lambda target, calls, grad, seeds, trusted: "
        "{'v': [4, 6], 'graphs': [None, None], 'states': []}"
    )
    result, session = remote.check_remotely("q", TEST_FILE, transport, 60)
    assert result.score == 0 and "results miscounted" in session.broken


def test_a_notebook_iterator_is_read_in_chunks_and_fails_where_it_failed(session):
    runner, _ = session
    env = remote.RemoteGlobals(runner)
    before = runner.round_trips
    assert list(env["counted"](100)) == list(range(100))
    # a lookup, the call, list()'s len probe, iter, then chunks of 1, 2, 4, ..., 64 items
    assert runner.round_trips - before == 4 + 7
    env["consumed"] = []
    for item in env["counted"](100):
        if item == 2:
            break
    assert env["consumed"] == [0, 1, 2]  # chunks of 1 and 2: the kernel ran no further
    items = []
    with pytest.raises(KeyError):
        for item in env["counted"](10, fail_at=5):
            items.append(item)
    assert items == [0, 1, 2, 3, 4]  # the items before the error, then the error
    first, *rest = env["counted"](4, fail_at=-1)  # uint16 does not cross as data
    assert type(first) is remote.Proxy and rest == [1, 2, 3]


def test_an_iterator_that_answers_more_items_than_asked_fails_its_case(fresh):
    source = TEST_FILE.replace(
        "def test_first(double):\n    assert double(2) == 4",
        "def test_first(upto):\n    assert list(upto(4)) == [0, 1, 2, 3]",
    )
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x\nupto = lambda n: range(n)")
    result, _ = remote.check_remotely("q", source, transport, 60)
    assert result.score == 2
    kernel.run(
        "import tfcourse.grading_kernel.agent as agent\n"
        "agent._OPS['next'] = lambda target, count, trusted: [list(range(count + 1)), True]"
    )
    result, session = remote.check_remotely("q", source, transport, 60)
    assert [case.passed for case in result.cases] == [False, True] and session.broken is None
    assert "malformed" in result.cases[0].message


WATCHED_TEST_FILE = textwrap.dedent(
    """
    import threading
    import torch
    from otter.test_files import test_case
    OK_FORMAT = False
    name = "q"

    @test_case(name="sends what cannot be sent", points=1)
    def test_unsendable(env):
        env["lock"] = threading.Lock()

    @test_case(name="attends", points=1)
    def test_attends(attend):
        attend(torch.ones(1, 2, 4))
    """
)


def test_calls_are_watched_from_the_first_request_that_reaches_the_kernel(fresh):
    """Watching for forbidden calls goes with the first request sent: a case whose request
    could not be sent (an object the test cannot pickle) leaves it to the next one."""
    forbidden = "torch.nn.functional.scaled_dot_product_attention"
    kernel, transport = fresh
    kernel.run(
        "import torch.nn.functional as F\n"
        "def attend(x):\n    return F.scaled_dot_product_attention(x, x, x)"
    )
    result, session = remote.check_remotely("q", WATCHED_TEST_FILE, transport, 60, [forbidden])
    assert [case.passed for case in result.cases] == [False, True]
    assert "cannot send" in result.cases[0].message
    assert session.called == [forbidden] and session.broken is None


TEST_FILE = textwrap.dedent(
    """
    from otter.test_files import test_case
    OK_FORMAT = False
    name = "q"

    @test_case(name="first", points=1)
    def test_first(double):
        assert double(2) == 4

    @test_case(name="second", points=1)
    def test_second(double):
        assert double(3) == 6
    """
)


@pytest.mark.parametrize(
    "agent",
    [
        '\'{"ok": {"$": "evil", "v": 1}}\'',
        "'[' * 10**6",
        "__import__('time').sleep(10**6)",
    ],
)
def test_a_kernel_that_answers_garbage_or_nothing_fails_the_rest_of_the_question(fresh, agent):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    result, session = remote.check_remotely("q", TEST_FILE, transport, 60)
    assert result.score == 2 and session.broken is None
    kernel.run(
        f"import tfcourse.grading_kernel.agent as agent\nagent.serve = lambda *args: {agent}"
    )
    result, session = remote.check_remotely("q", TEST_FILE, transport, 3)
    assert result.score == 0 and session.broken
    assert all("did not answer properly" in case.message for case in result.cases)


REPLACED_HANDLER = """
from IPython import get_ipython
kernel = get_ipython().kernel
def forged(stream, ident, parent):
    kernel.session.send(stream, {msg_type!r}, {content!r}, parent, ident=ident)
kernel.shell_handlers["tfcourse_request"] = forged
"""


@pytest.mark.parametrize(
    ("msg_type", "content"),
    [
        ("execute_reply", {"answer": '{"ok": 6}'}),  # a right answer, in the wrong message
        ("tfcourse_reply", {"answer": 6}),
        ("tfcourse_reply", {"text": '{"ok": 6}'}),
    ],
)
def test_a_kernel_whose_request_handler_is_replaced_fails_the_rest_of_the_question(
    fresh, msg_type, content
):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    kernel.run(REPLACED_HANDLER.format(msg_type=msg_type, content=content))
    result, session = remote.check_remotely("q", TEST_FILE, transport, 10)
    assert result.score == 0 and session.broken
    assert all("did not answer properly" in case.message for case in result.cases)


def test_a_kernel_without_a_request_handler_fails_the_question_when_its_time_is_up(fresh):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    kernel.run("del get_ipython().kernel.shell_handlers['tfcourse_request']")
    result, session = remote.check_remotely("q", TEST_FILE, transport, 2)
    assert result.score == 0 and "no answer within 2 s" in session.broken


def test_a_figure_drawn_during_a_check_is_not_shown_in_the_next_cell(fresh):
    """The request runs between a silent cell's events: matplotlib's inline backend shows
    (to no one) and closes the figure then, instead of at the end of the next cell."""
    kernel, transport = fresh
    kernel.run(
        "import matplotlib.pyplot as plt\n"
        "def double(x):\n"
        "    plt.plot([x, 2 * x])\n"
        "    return 2 * x\n"
    )
    result, _ = remote.check_remotely("q", TEST_FILE, transport, 60)
    assert result.score == 2
    shown = []
    kernel.client.execute_interactive(
        "print(len(plt.get_fignums()))", output_hook=shown.append, timeout=60
    )
    kinds = [msg["msg_type"] for msg in shown]
    texts = [msg["content"].get("text", "") for msg in shown if msg["msg_type"] == "stream"]
    assert "display_data" not in kinds and texts == ["0\n"]


LOOKUPS_FILE = textwrap.dedent(
    """
    from otter.test_files import test_case
    OK_FORMAT = False
    name = "q"

    @test_case(name="first", points=1)
    def test_first(double, values):
        values.append(99)
        assert double(2) == 4 and values == [1, 2, 99]

    @test_case(name="second", points=1)
    def test_second(double, values, missing):
        pass

    @test_case(name="third", points=1)
    def test_third(values, double):
        assert values == [1, 2] and double(3) == 6
    """
)


def test_the_names_the_cases_take_are_looked_up_once_per_check_each_case_getting_its_own_copy(
    fresh,
):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x\nvalues = [1, 2]")
    result, session = remote.check_remotely("q", LOOKUPS_FILE, transport, 60)
    assert [case.passed for case in result.cases] == [True, False, True]
    assert "`missing` is not defined" in result.cases[1].message
    # One lookup for all three names, two calls, and the release at the end.
    assert session.round_trips == 4 and session.broken is None


@pytest.mark.parametrize(
    "answer",
    [
        "lambda names, trusted: ['1']",  # fewer values than names
        "lambda names, trusted: ['[', None]",  # a value that is not a wire message
        'lambda names, trusted: [\'{"$": "pickle", "v": 0}\', None]',  # a pickle
        "lambda names, trusted: [1, None]",  # a value that is not text
    ],
)
def test_a_malformed_answer_to_the_lookups_fails_the_rest_of_the_question(fresh, answer):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    kernel.run(f"import tfcourse.grading_kernel.agent as agent\nagent._OPS['globals'] = {answer}")
    result, session = remote.check_remotely("q", LOOKUPS_FILE, transport, 60)
    assert result.score == 0 and "malformed" in session.broken


def test_a_test_binds_several_names_in_one_request_and_then_reads_what_it_bound(fresh):
    kernel, transport = fresh
    kernel.run("double = lambda x: 2 * x")
    session = remote.Session(transport, 10**12)
    env = remote.RemoteGlobals(session, ["double", "values"])
    assert env["double"](2) == 4 and "values" not in env
    before = session.round_trips
    env.update({"double": 5}, values=[1, 2])
    assert session.round_trips - before == 1
    assert env["double"] == 5 and env["values"] == [1, 2]
    assert kernel.evaluate("(double, values)") == (5, [1, 2])


def test_a_tested_name_that_cannot_be_read_costs_only_the_cases_that_use_it(fresh):
    """All tested names are looked up together: one whose value raises when the agent reads
    it crosses as a handle, and the case that does not use it is checked as usual."""
    kernel, transport = fresh
    kernel.run(
        "class Weird:\n"
        "    @property\n"
        "    def __class__(self):\n"
        "        raise RuntimeError('no')\n"
        "values = Weird()\n"
        "double = lambda x: 2 * x\n"
    )
    test_file = textwrap.dedent(
        """
        from otter.test_files import test_case
        OK_FORMAT = False
        name = "q"

        @test_case(name="double", points=1)
        def test_double(double):
            assert double(2) == 4

        @test_case(name="values", points=1)
        def test_values(values):
            assert values == [1, 2]
        """
    )
    result, session = remote.check_remotely("q", test_file, transport, 60)
    assert [case.passed for case in result.cases] == [True, False]
    assert session.broken is None
