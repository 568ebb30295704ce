"""Tests for q6_bpe_merge: merge(ids, pair, new_id) -> list of ids.

Public cases check what any correct merge must satisfy: replacing each new id by the pair
gives the input back, no occurrence of the pair is left among the original ids, occurrences
are taken from the left. Hidden cases compare with the instructor's reference on random
lists, with ids that already exceed 255 and a pair of one id twice.
"""

from itertools import pairwise

from otter.test_files import test_case

from tfcourse.assertions import expect

OK_FORMAT = False
name = "q6_bpe_merge"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def check_list(got, call):
    expect(isinstance(got, list), f"{call}: expected a list, got {type(got).__name__}")
    expect(all(isinstance(i, int) for i in got), f"{call}: every id must be an int, got {got}")


def unmerge(ids, pair, new_id):
    out = []
    for i in ids:
        out.extend(pair if i == new_id else [i])
    return out


def check_properties(merge, ids, pair, new_id):
    call = f"merge({ids}, {pair}, {new_id})"
    got = merge(list(ids), tuple(pair), new_id)
    check_list(got, call)
    expect(unmerge(got, pair, new_id) == list(ids),
           f"{call} = {got}: putting the pair back in place of {new_id} must give the input")
    for a, b in pairwise(got):
        expect((a, b) != tuple(pair), f"{call} = {got}: the pair {pair} is still there")
    return got


@test_case(name="replaces each occurrence: [1, 2, 3, 1, 2] with (1, 2) -> 256", points=1)
def test_occurrences(merge):
    got = check_properties(merge, [1, 2, 3, 1, 2], (1, 2), 256)
    expect(len(got) == 3, f"merge([1, 2, 3, 1, 2], (1, 2), 256): expected 3 ids, got {got}")
    check_properties(merge, [7, 8, 9], (1, 2), 256)  # no occurrence: unchanged
    check_properties(merge, [], (1, 2), 256)


@test_case(name="overlapping occurrences are taken from the left: [5, 5, 5] with (5, 5)", points=1)
def test_overlap(merge):
    got = check_properties(merge, [5, 5, 5], (5, 5), 9)
    expect(got[0] == 9, f"merge([5, 5, 5], (5, 5), 9): the first two must merge, got {got}")
    got = check_properties(merge, [5, 5, 5, 5], (5, 5), 9)
    expect(len(got) == 2, f"merge([5, 5, 5, 5], (5, 5), 9): expected 2 ids, got {got}")

hidden_points = 2
