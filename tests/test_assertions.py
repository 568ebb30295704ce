"""Failure messages of tfcourse.assertions name what was checked, expected and returned."""

import pytest
import torch

from tfcourse.assertions import expect_close, expect_number, expect_shape


def test_shape_message():
    with pytest.raises(AssertionError, match=r"output: expected shape \(2, 3\), got \(3, 2\)"):
        expect_shape(torch.zeros(3, 2), (2, 3), "output")


def test_not_a_tensor():
    with pytest.raises(AssertionError, match=r"expected a torch\.Tensor, got list"):
        expect_shape([1, 2], (2,), "weights")


def test_dtype_message():
    with pytest.raises(AssertionError, match=r"expected dtype torch\.float64, got torch\.float32"):
        expect_close(torch.zeros(2), torch.zeros(2, dtype=torch.float64), "x")


def test_value_message_points_at_the_worst_entry():
    expected = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    actual = expected.clone()
    actual[1, 0] = 2.5
    with pytest.raises(AssertionError, match=r"at index \(1, 0\) expected 2, got 2.5"):
        expect_close(actual, expected, "weights")


def test_tolerance_is_respected():
    expected = torch.ones(3)
    expect_close(expected + 0.9e-5, expected, "x", atol=1e-5)
    with pytest.raises(AssertionError, match="values differ by up to"):
        expect_close(expected + 1.1e-5, expected, "x", atol=1e-5)


def test_nan_where_a_number_was_expected():
    with pytest.raises(AssertionError, match="NaN where a number was expected"):
        expect_close(torch.tensor([0.0, float("nan")]), torch.zeros(2), "output")


def test_number_message_gives_the_difference():
    with pytest.raises(AssertionError, match=r"count\(3\): expected 12, got 9 \(off by -3\)"):
        expect_number(9, 12, "count(3)")
    expect_number(12.0, 12, "count(3)")


@pytest.mark.parametrize("answer", [True, "12", None, torch.tensor(12)])
def test_number_must_be_a_real_number(answer):
    with pytest.raises(AssertionError, match=r"count: expected a number, got"):
        expect_number(answer, 12, "count")
