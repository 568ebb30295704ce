"""The grading wire: plain data round-trips exactly; anything else is refused, strictly."""

import json
import math

import pytest
import torch

from tfcourse.grading_kernel import wire
from tfcourse.grading_kernel.wire import WireError


def round_trip(value, **decode):
    return wire.decode(wire.encode(value), **decode)


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**70),
        1.5,
        "tëxt",
        b"\x00\xff",
        3 + 4j,
        [1, [2.0, None]],
        (1, ("a",)),
        {"a": 1, 2: "b", (3, "c"): [None], None: 0.5},
        torch.Size([2, 3]),
        torch.float64,
        {"history": {"train_loss": [2.5, 2.25], "eval_steps": [4, 8]}},
    ],
)
def test_plain_data_round_trips_exactly(value):
    back = round_trip(value)
    assert back == value
    assert type(back) is type(value)


def test_floats_keep_every_bit_and_non_finite_values():
    values = [0.1, 1e-320, -0.0, math.inf, -math.inf]
    back = round_trip(values)
    assert [v.hex() for v in back] == [v.hex() for v in values]
    assert math.isnan(round_trip(math.nan))


@pytest.mark.parametrize("dtype", list(wire.DTYPES.values()))
def test_tensors_of_every_dtype_come_back_as_exact_tensors(dtype):
    source = (torch.randn(2, 3, 4) * 5).to(dtype)
    back = round_trip(source)
    assert type(back) is torch.Tensor
    assert back.dtype == dtype and back.shape == source.shape
    assert torch.equal(back, source)


def test_tensor_edge_cases_views_empty_scalars_and_gradients():
    base = torch.arange(24.0).reshape(4, 6)
    for source in (base.t(), base[:, ::2], torch.empty(0, 3), torch.tensor(7.0)):
        assert torch.equal(round_trip(source), source)
    leaf = torch.ones(3, requires_grad=True)
    (leaf * 2).sum().backward()
    back = round_trip(leaf)
    assert back.requires_grad and back.is_leaf and torch.equal(back.grad, torch.full((3,), 2.0))
    assert round_trip(torch.nn.Parameter(torch.ones(2))).__class__ is torch.Tensor
    no_grads = wire.decode(wire.encode(leaf, grads=False))
    assert no_grads.requires_grad and no_grads.grad is None


def test_subclasses_are_sent_as_their_plain_values():
    class Cheat(torch.Tensor):
        def __sub__(self, other):
            return torch.zeros(self.shape)

        def __eq__(self, other):
            return True

    back = round_trip(torch.ones(2).as_subclass(Cheat))
    assert type(back) is torch.Tensor and torch.equal(back, torch.ones(2))
    with pytest.raises(WireError):
        wire.encode(type("Everything", (float,), {"__eq__": lambda s, o: True})(1.0))
    with pytest.raises(WireError):
        wire.encode(object())


def test_other_values_go_through_the_callers_choice():
    handles = wire.encode([object()], other=lambda value: wire.tree(wire.Handle(4)))
    assert wire.decode(handles) == [wire.Handle(4)]
    assert wire.decode(handles, handle=lambda h: ("proxy", h.number)) == [("proxy", 4)]


def test_pickles_and_callbacks_are_refused_unless_the_decoder_takes_them():
    text = json.dumps([{"$": "pickle", "v": 0}])
    with pytest.raises(WireError, match="tag"):
        wire.decode(text)
    assert wire.decode(text, pickled=lambda p: p.index) == [0]
    with pytest.raises(WireError, match="tag"):
        wire.decode(json.dumps({"$": "callback", "v": 0}))


def tensor(**changes):
    fields = wire.tree(torch.ones(2, 2))
    fields.update(changes)
    return json.dumps(fields)


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        b"\xff\xfe",
        '{"plain": "object"}',
        '{"$": "tuple", "v": [], "extra": 1}',
        '{"$": "evil", "v": 1}',
        '{"$": "dict", "v": [[[1, 2], 3]]}',  # a list as a key
        '{"$": "dict", "v": [[1]]}',
        '{"$": "complex", "v": [1, "2"]}',
        '{"$": "bytes", "v": "***"}',
        '{"$": "dtype", "v": "object"}',
        '{"$": "handle", "v": -1}',
        '{"$": "size", "v": [2, -1]}',
        tensor(dtype="float128"),
        tensor(shape=[3, 3]),
        tensor(shape=[2, 2.0]),
        tensor(data="AAAA"),
        tensor(grad="yes"),
        tensor(g=json.loads(tensor(shape=[1], data="AACAPw=="))),
        json.dumps({**wire.tree(torch.ones(2, dtype=torch.long)), "grad": True}),
        "[" * 100 + "]" * 100,
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_malformed_messages_raise_a_wire_error(text):
    with pytest.raises(WireError):
        wire.decode(text)


def test_oversized_messages_are_refused_before_parsing():
    with pytest.raises(WireError, match="limit"):
        wire.decode("[" + "1," * (wire.MAX_BYTES // 2) + "1]")
    too_many = json.dumps([0] * 10)
    original = wire.MAX_ITEMS
    try:
        wire.MAX_ITEMS = 5
        with pytest.raises(WireError, match="values"):
            wire.decode(too_many)
    finally:
        wire.MAX_ITEMS = original
