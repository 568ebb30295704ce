"""A count-based n-gram language model: the baseline a small transformer must beat.

:class:`NGramModel` predicts the next token from the ``order - 1`` tokens before it with
interpolated Witten-Bell smoothing. For a history ``h`` and its shortening ``h'`` (the oldest
token dropped), with ``c(h, w)`` the training count of ``w`` after ``h``, ``c(h)`` their sum
and ``t(h)`` the number of distinct tokens seen after ``h``::

    P(w | h) = (c(h, w) + t(h) * P(w | h')) / (c(h) + t(h))    if c(h) > 0
    P(w | h) = P(w | h')                                         if h was never seen

down to the empty history, whose ``P(w | h')`` is the uniform ``1 / vocab_size``. Every token
therefore keeps a positive probability. Counts are kept as sorted arrays of integer codes
(a history read as a base-``vocab_size`` number), so fitting and scoring are vectorised.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

_CODE_LIMIT = np.iinfo(np.int64).max


@dataclass(frozen=True)
class _Counts:
    """The counts of one history length, each array sorted by its codes."""

    pairs: np.ndarray  # history code * vocab_size + next token
    pair_counts: np.ndarray  # c(h, w)
    histories: np.ndarray  # history codes
    history_counts: np.ndarray  # c(h)
    history_types: np.ndarray  # t(h)


class NGramModel:
    """An order-``order`` n-gram model over ids ``0 .. vocab_size - 1`` (Witten-Bell smoothing).

    >>> model = NGramModel(order=3, vocab_size=4).fit([0, 1, 2, 0, 1, 3, 0, 1, 2])
    >>> model.next_distribution([0, 1]).argmax().item()
    2
    """

    def __init__(self, order: int, vocab_size: int) -> None:
        if order < 1 or vocab_size < 1:
            raise ValueError(f"order and vocab_size must be positive, got {order}, {vocab_size}")
        if vocab_size**order > _CODE_LIMIT:
            raise ValueError(f"vocab_size ** order = {vocab_size}**{order} overflows int64 codes")
        self.order = order
        self.vocab_size = vocab_size
        self._counts: list[_Counts] | None = None

    def __repr__(self) -> str:
        return f"NGramModel(order={self.order}, vocab_size={self.vocab_size})"

    def fit(self, ids: torch.Tensor | Sequence[int] | np.ndarray) -> NGramModel:
        """Count every n-gram of the sequence ``ids`` (replacing earlier counts); returns self.

        Histories of every length ``0 .. order - 1`` are counted at every position that has
        that many tokens before it.
        """
        ids = self._as_ids(ids)
        self._counts = [self._count(ids, length) for length in range(self.order)]
        return self

    def nats_per_token(self, ids: torch.Tensor | Sequence[int] | np.ndarray) -> float:
        """The mean negative log-likelihood (nats) of each token of ``ids`` given those before.

        Each position is conditioned on up to ``order - 1`` preceding ids of the same
        sequence only: scoring a validation split on its own, its first ``order - 1`` tokens
        are predicted from the shorter histories they have (the first from none).
        """
        ids = self._as_ids(ids)
        if len(ids) == 0:
            raise ValueError("cannot score an empty sequence")
        histories = [
            _history_codes(ids, length, self.vocab_size)[:-1] for length in range(self.order)
        ]
        return float(-np.log(self._probabilities(histories, ids)).mean())

    def next_distribution(
        self, context_ids: torch.Tensor | Sequence[int] | np.ndarray
    ) -> torch.Tensor:
        """The distribution of the next token given the last ``order - 1`` of ``context_ids``.

        Returns a float64 tensor of shape ``(vocab_size,)``, positive, summing to 1.
        """
        context = self._as_ids(context_ids)
        context = context[max(len(context) - self.order + 1, 0) :]
        candidates = np.arange(self.vocab_size)
        histories = [
            np.full(self.vocab_size, _history_codes(context, length, self.vocab_size)[-1])
            for length in range(self.order)
        ]
        return torch.from_numpy(self._probabilities(histories, candidates))

    def generate(
        self,
        prompt_ids: torch.Tensor | Sequence[int] | np.ndarray,
        length: int,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The prompt followed by ``length`` sampled ids, as a 1-d ``torch.long`` tensor."""
        ids = self._as_ids(prompt_ids).tolist()
        for _ in range(length):
            # Only the last order - 1 ids matter; the slice spares converting the whole list.
            probabilities = self.next_distribution(ids[1 - self.order :])
            ids.append(int(torch.multinomial(probabilities, 1, generator=generator)))
        return torch.tensor(ids, dtype=torch.long)

    def _probabilities(self, histories: list[np.ndarray], tokens: np.ndarray) -> np.ndarray:
        """P(tokens[i] | history i) where ``histories[m][i]`` codes its last m ids (-1: none)."""
        if self._counts is None:
            raise RuntimeError("the model has no counts yet: call fit(ids) first")
        probabilities = np.full(len(tokens), 1.0 / self.vocab_size)
        for counts, codes in zip(self._counts, histories, strict=True):
            total = _lookup(counts.histories, counts.history_counts, codes)
            types = _lookup(counts.histories, counts.history_types, codes)
            pair = _lookup(counts.pairs, counts.pair_counts, codes * self.vocab_size + tokens)
            seen = total > 0
            smoothed = (pair + types * probabilities) / np.where(seen, total + types, 1)
            probabilities = np.where(seen, smoothed, probabilities)
        return probabilities

    def _count(self, ids: np.ndarray, length: int) -> _Counts:
        codes = _history_codes(ids, length, self.vocab_size)[:-1]
        known = codes >= 0
        pairs, pair_counts = np.unique(
            codes[known] * self.vocab_size + ids[known], return_counts=True
        )
        # Pairs sorted by code are grouped by history: one run of pairs per history.
        histories, starts = np.unique(pairs // self.vocab_size, return_index=True)
        return _Counts(
            pairs=pairs,
            pair_counts=pair_counts,
            histories=histories,
            history_counts=np.add.reduceat(pair_counts, starts) if len(starts) else starts,
            history_types=np.diff(np.append(starts, len(pairs))),
        )

    def _as_ids(self, ids: torch.Tensor | Sequence[int] | np.ndarray) -> np.ndarray:
        if isinstance(ids, torch.Tensor):
            ids = ids.detach().cpu().numpy()
        array = np.asarray(ids)
        if array.size == 0:
            return np.zeros(0, dtype=np.int64)
        if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
            raise ValueError(
                f"expected a 1-d sequence of integer ids, got {array.dtype} {array.shape}"
            )
        if array.min() < 0 or array.max() >= self.vocab_size:
            raise ValueError(
                f"ids must lie in 0 .. {self.vocab_size - 1}, got {array.min()} .. {array.max()}"
            )
        return array.astype(np.int64)


def _history_codes(ids: np.ndarray, length: int, base: int) -> np.ndarray:
    """For each position 0 .. len(ids), the code of the ``length`` ids before it (-1 if fewer).

    The code reads the ids as a base-``base`` number, the oldest id as the leading digit.
    """
    codes = np.full(len(ids) + 1, -1, dtype=np.int64)
    if length <= len(ids):
        positions = len(ids) + 1 - length
        code = np.zeros(positions, dtype=np.int64)
        for offset in range(length):
            code = code * base + ids[offset : offset + positions]
        codes[length:] = code
    return codes


def _lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` at the positions of ``queries`` in the sorted ``keys``; 0 for absent ones."""
    if len(keys) == 0:
        return np.zeros(len(queries), dtype=np.int64)
    where = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[where] == queries, values[where], 0)
