"""Byte-level byte-pair encoding (notebook 6, section 1): training, encoding, decoding.

Text is split into pieces by :func:`tfcourse.vocab.split_words`; each piece starts as its
UTF-8 bytes (ids 0-255) and merges never cross pieces. Merge ``i`` turns the pair
``merges[i]`` into the new id ``256 + i``. Training picks, at each step, the adjacent pair
with the highest count over the corpus (a piece counts as often as it occurs), ties going
to the smallest pair ``(a, b)``; it keeps the pair counts up to date incrementally, so a
merge costs the pieces it touches, not the corpus.
"""

from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from itertools import pairwise

from tfcourse.vocab import split_words

Pair = tuple[int, int]


def merge(ids: Sequence[int], pair: Pair, new_id: int) -> list[int]:
    """``ids`` with every occurrence of ``pair``, read left to right without overlap,
    replaced by ``new_id``."""
    out: list[int] = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(word_counts: Mapping[str, int], num_merges: int) -> list[Pair]:
    """The first ``num_merges`` merges (fewer if every piece becomes one token) learned from
    pieces and their counts."""
    words = [list(word.encode()) for word in word_counts]
    counts = list(word_counts.values())
    pair_counts: Counter[Pair] = Counter()
    holders: defaultdict[Pair, set[int]] = defaultdict(set)  # pieces that may hold a pair
    for index, ids in enumerate(words):
        for pair in pairwise(ids):
            pair_counts[pair] += counts[index]
            holders[pair].add(index)
    # A max-heap by (count, then smallest pair); entries whose count changed are stale and
    # skipped, since every change pushes the pair again with its new count.
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)
    merges: list[Pair] = []
    while len(merges) < num_merges and heap:
        negative, best = heapq.heappop(heap)
        if pair_counts.get(best, 0) != -negative or negative == 0:
            continue
        new_id = 256 + len(merges)
        merges.append(best)
        changed: set[Pair] = set()
        for index in holders.pop(best):
            old = words[index]
            new = merge(old, best, new_id)
            if len(new) == len(old):
                continue
            for pair in pairwise(old):
                pair_counts[pair] -= counts[index]
                changed.add(pair)
            for pair in pairwise(new):
                pair_counts[pair] += counts[index]
                holders[pair].add(index)
                changed.add(pair)
            words[index] = new
        for pair in changed:
            if pair_counts[pair] > 0:
                heapq.heappush(heap, (-pair_counts[pair], pair))
            else:
                del pair_counts[pair]
    return merges


def encode_word(word: str, ranks: Mapping[Pair, int]) -> list[int]:
    """The ids of one piece: its bytes, then the merges in the order they were learned."""
    ids = list(word.encode())
    while len(ids) > 1:
        pair = min(pairwise(ids), key=lambda p: ranks.get(p, len(ranks)))
        if pair not in ranks:
            break
        ids = merge(ids, pair, 256 + ranks[pair])
    return ids


def encode(text: str, merges: Sequence[Pair]) -> list[int]:
    """The token ids of ``text``: each piece of :func:`split_words` encoded on its own."""
    ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
    cache: dict[str, list[int]] = {}
    ids: list[int] = []
    for word in split_words(text):
        if word not in cache:
            cache[word] = encode_word(word, ranks)
        ids.extend(cache[word])
    return ids


def vocabulary(merges: Sequence[Pair]) -> list[bytes]:
    """The bytes each id stands for: 256 single bytes, then one entry per merge."""
    vocab = [bytes([byte]) for byte in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return vocab


def decode(ids: Sequence[int], merges: Sequence[Pair]) -> str:
    """The text of ``ids``; bytes that are not valid UTF-8 become U+FFFD."""
    vocab = vocabulary(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
