"""Tests for q6_bpe_codec: encode(text, merges) -> ids and decode(ids, merges) -> text.

Merges are written here so that the tokens of small texts are known by construction: the
first merge makes "th", the second "the" from it, the third " the". Public cases check those
tokens, the order in which merges apply, byte fallback for unseen characters and exact round
trips; hidden cases compare with the instructor's reference on merges trained on the Python
documentation, on unseen text, and decoding of ids that cut characters apart.
"""

from collections import Counter

from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.corpora import load_corpus
from tfcourse.vocab import split_words

OK_FORMAT = False
name = "q6_bpe_codec"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]

T, H, E, SPACE = (ord(c) for c in "the ")
TH, THE, SPACE_THE = 256, 257, 258
MERGES = [(T, H), (TH, E), (SPACE, THE)]
UNICODE = "naïve café 🙂, ∮ E⋅da = Q, 日本語\n\t  end"


def check_ids(got, call):
    expect(isinstance(got, list) and all(isinstance(i, int) for i in got),
           f"{call}: expected a list of ints, got {got!r}")


def check_encode(encode, text, merges, expected):
    call = f"encode({text!r}, {merges})"
    got = encode(text, [tuple(m) for m in merges])
    check_ids(got, call)
    expect(got == expected, f"{call}: expected {expected}, got {got}")


def check_round_trip(encode, decode, text, merges):
    ids = encode(text, [tuple(m) for m in merges])
    check_ids(ids, f"encode({text!r}, ...)")
    back = decode(list(ids), [tuple(m) for m in merges])
    expect(back == text, f"decode(encode({text!r})) gave {back!r}")


@test_case(name="no merges: the UTF-8 bytes; with merges: 'the the' is [the, ␣the]", points=1)
def test_known_tokens(encode, decode):
    check_encode(encode, "né 🙂", [], list("né 🙂".encode()))
    check_encode(encode, "the the", MERGES, [THE, SPACE_THE])
    check_encode(encode, "then", MERGES, [THE, ord("n")])
    check_encode(encode, "theth", MERGES, [THE, TH])


@test_case(name="merges apply in the order learned, within pieces only", points=1)
def test_order(encode, decode):
    a, b, c = ord("a"), ord("b"), ord("c")
    # "bc" was learned before "ab": in "abc" the pair (b, c) merges first.
    check_encode(encode, "abc", [(b, c), (a, b)], [a, 256])
    # "a " would merge, but the space belongs to the next piece, " b".
    check_encode(encode, "a b", [(a, SPACE)], [a, SPACE, b])


@test_case(name="decode: merged ids give their bytes; round trips are exact", points=1)
def test_decode(encode, decode):
    got = decode([THE, SPACE_THE, ord("!")], [tuple(m) for m in MERGES])
    expect(got == "the the!", f"decode([{THE}, {SPACE_THE}, 33], merges): expected 'the the!', "
                              f"got {got!r}")
    for text in ("the theatre, then", UNICODE, ""):
        check_round_trip(encode, decode, text, MERGES)
    cut = [*list("🙂".encode())[:2], ord("!")]
    expected = bytes(cut).decode("utf-8", errors="replace")
    got = decode(list(cut), [])
    expect(got == expected, f"decode({cut}, []) cuts an emoji: expected {expected!r}, got {got!r}")


def trained_merges(train_bpe, count):
    text = load_corpus("pydoc").text[:30_000]
    return train_bpe(dict(Counter(split_words(text))), count)


def first_difference(got, expected):
    return next((i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected)))

hidden_points = 2
