"""Tests for q6_bpe_train: train_bpe(word_counts, num_merges) -> list of pairs.

Public cases check what can be read off the pair counts before any merge: the first merge
is the pair of highest count, each piece weighted by its count and overlapping pairs counted
twice, ties going to the smallest pair; training stops when no piece has two tokens left;
a shorter training is a prefix of a longer one. Hidden cases compare every merge with the
instructor's reference on pieces of the Python documentation (always available, no
download) and on text with multi-byte characters.
"""

from collections import Counter
from itertools import pairwise

from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.vocab import split_words

OK_FORMAT = False
name = "q6_bpe_train"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def as_pairs(got, call):
    expect(isinstance(got, list), f"{call}: expected a list of pairs, got {type(got).__name__}")
    pairs = []
    for item in got:
        expect(isinstance(item, (tuple, list)) and len(item) == 2
               and all(isinstance(i, int) for i in item),
               f"{call}: every merge must be a pair of ints, got {item!r}")
        pairs.append(tuple(item))
    return pairs


def first_merge(word_counts):
    """The pair of highest weighted count (ties: the smallest pair) before any merge."""
    counts = Counter()
    for word, count in word_counts.items():
        for pair in pairwise(word.encode()):
            counts[pair] += count
    return max(counts, key=lambda p: (counts[p], -p[0], -p[1]))


def check_first(train_bpe, word_counts):
    call = f"train_bpe({word_counts}, 1)"
    got = as_pairs(train_bpe(dict(word_counts), 1), call)
    expected = first_merge(word_counts)
    expect(got == [expected], f"{call}: expected [{expected}], got {got}")


@test_case(name="the first merge: highest count, pieces weighted by their counts", points=1)
def test_first_merge(train_bpe):
    check_first(train_bpe, {"low": 5, "lower": 2, "newest": 6, "widest": 3})
    check_first(train_bpe, {"ab": 1, "cd": 3})


@test_case(name="ties go to the smallest pair; a pair twice in a piece counts twice", points=1)
def test_ties_and_overlap(train_bpe):
    check_first(train_bpe, {"ba": 1, "dc": 1})
    check_first(train_bpe, {"dc": 2, "ba": 2, "ca": 2})
    check_first(train_bpe, {"zzz": 1, "ab": 1})


@test_case(name="stops when every piece is one token; a shorter training is a prefix", points=1)
def test_stop_and_prefix(train_bpe):
    call = "train_bpe({'ab': 1, 'c': 4}, 5)"
    got = as_pairs(train_bpe({"ab": 1, "c": 4}, 5), call)
    expect(got == [(97, 98)], f"{call}: expected [(97, 98)] (then nothing is left), got {got}")
    pieces = {"the": 9, " the": 7, " then": 3, " they": 2, " other": 2}
    short = as_pairs(train_bpe(dict(pieces), 3), "train_bpe(pieces, 3)")
    long = as_pairs(train_bpe(dict(pieces), 6), "train_bpe(pieces, 6)")
    expect(len(short) == 3 and len(long) == 6,
           f"expected 3 and 6 merges, got {len(short)} and {len(long)}")
    expect(long[:3] == short, f"3 merges {short} must be the first 3 of 6 merges {long}")
    for index, (a, b) in enumerate(long):
        expect(a < 256 + index and b < 256 + index,
               f"merge {index} = {(a, b)} uses an id that does not exist yet")


def check_reference(train_bpe, expected_train, text, num_merges):
    pieces = dict(Counter(split_words(text)))
    expected = expected_train(dict(pieces), num_merges)
    call = f"train_bpe({len(pieces)} pieces, {num_merges})"
    got = as_pairs(train_bpe(dict(pieces), num_merges), call)
    expect(len(got) == len(expected), f"{call}: expected {len(expected)} merges, got {len(got)}")
    for index, (ours, theirs) in enumerate(zip(got, expected, strict=False)):
        expect(ours == theirs, f"{call}: merge {index} should be {theirs}, got {ours} "
                               f"(the merges before it agree)")

hidden_points = 3
