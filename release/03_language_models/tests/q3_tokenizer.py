"""Tests for q3_tokenizer: CharTokenizer(text) with itos, stoi, vocab_size, encode, decode."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape

OK_FORMAT = False
name = "q3_tokenizer"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse.vocab",
    "tfcourse_instructor.reference",
]

TEXT = "def f(x):\n    return x + 1  # the answer\n"


@test_case(name="decode(encode(s)) == s; encode gives a 1-d torch.long tensor of len(s)", points=1)
def test_round_trip(CharTokenizer):
    tokenizer = CharTokenizer(TEXT)
    for s in (TEXT, "return f(x)", "x"):
        ids = tokenizer.encode(s)
        expect_shape(ids, (len(s),), f"encode({s!r})")
        expect(ids.dtype == torch.long, f"encode({s!r}): expected torch.long, got {ids.dtype}")
        back = tokenizer.decode(ids)
        expect(back == s, f"decode(encode({s!r})): expected {s!r}, got {back!r}")


@test_case(name="itos = sorted distinct characters, stoi its inverse, vocab_size", points=1)
def test_vocabulary(CharTokenizer):
    tokenizer = CharTokenizer(TEXT)
    expected = sorted(set(TEXT))
    expect(tokenizer.itos == expected, f"itos: expected {expected}, got {tokenizer.itos}")
    inverse = {char: index for index, char in enumerate(expected)}
    expect(tokenizer.stoi == inverse, f"stoi: expected {inverse}, got {tokenizer.stoi}")
    expect(
        tokenizer.vocab_size == len(expected),
        f"vocab_size: expected {len(expected)}, got {tokenizer.vocab_size}",
    )
    got = tokenizer.encode("de").tolist()
    expect(got == [inverse["d"], inverse["e"]], f"encode('de'): expected ids by itos, got {got}")

hidden_points = 1
