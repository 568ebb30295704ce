"""Vocabularies and a character tokenizer: what ``torchtext.vocab`` gave, without torchtext.

torchtext's last release no longer imports beside current torch, so the kit keeps its
small vocabulary API here with the same semantics:

>>> vocab = build_vocab_from_iterator([["b", "a"], ["a"]], specials=["<unk>"])
>>> vocab.get_itos()
['<unk>', 'a', 'b']
>>> vocab.set_default_index(vocab["<unk>"])
>>> vocab(["a", "z"])
[1, 0]

:class:`CharTokenizer` is the character-level tokenizer the language-model notebook uses.

:func:`split_words` splits text into the pieces a byte-level BPE tokenizer merges within
(notebook 6): a token is at most one word with its leading space, one number, one run of
punctuation or one run of spaces. The pattern follows GPT-2's pre-tokenizer with Python's own
``re`` (letters are ``[^\\W\\d_]``, digits ``\\d``); on ASCII text such as tiny Shakespeare it
splits exactly as the Hugging Face ``tokenizers`` ``ByteLevel`` pre-tokenizer does
(``use_regex=True``, ``add_prefix_space=False``). The pieces joined give the text back.
"""

from __future__ import annotations

import json
import operator
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

_FORMAT = "tfcourse.vocab/1"


class TokenNotFoundError(KeyError, RuntimeError):
    """A token is not in the vocabulary and no default index is set.

    It is a ``KeyError`` (as for a dict) and a ``RuntimeError`` (what torchtext raised), so
    code written for either keeps working.
    """

    def __str__(self) -> str:
        return str(self.args[0])


class Vocab:
    """A bijection between tokens (strings) and indices ``0 .. len - 1``, in a fixed order.

    ``vocab[token]`` is the token's index; an unknown token gets the default index when one
    is set (:meth:`set_default_index`), and raises :class:`TokenNotFoundError` otherwise.
    """

    def __init__(self, tokens: Iterable[str], default_index: int | None = None) -> None:
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        for token in tokens:
            self.append_token(token)
        self._default_index: int | None = None
        if default_index is not None:
            self.set_default_index(default_index)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __getitem__(self, token: str) -> int:
        index = self._stoi.get(token, self._default_index)
        if index is None:
            raise TokenNotFoundError(
                f"token {token!r} is not in the vocabulary and no default index is set "
                "(call set_default_index, e.g. with the index of '<unk>')"
            )
        return index

    def __call__(self, tokens: Iterable[str]) -> list[int]:
        """The indices of ``tokens`` (same as :meth:`lookup_indices`)."""
        return self.lookup_indices(tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._itos == other._itos and self._default_index == other._default_index

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, default_index={self._default_index})"

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        """The index of each token, in order."""
        return [self[token] for token in tokens]

    def lookup_token(self, index: int) -> str:
        """The token at ``index`` (negative indices are rejected, unlike list indexing)."""
        index = operator.index(index)
        if not 0 <= index < len(self._itos):
            raise IndexError(f"index {index} is out of range for a vocabulary of {len(self)}")
        return self._itos[index]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        """The token at each index, in order."""
        return [self.lookup_token(index) for index in indices]

    def get_itos(self) -> list[str]:
        """A copy of the tokens in index order."""
        return list(self._itos)

    def get_stoi(self) -> dict[str, int]:
        """A copy of the token-to-index mapping."""
        return dict(self._stoi)

    def set_default_index(self, index: int | None) -> None:
        """Return ``index`` for unknown tokens from now on; ``None`` makes them raise again."""
        if index is not None and not 0 <= index < len(self._itos):
            raise IndexError(
                f"default index {index} is out of range for a vocabulary of {len(self)}"
            )
        self._default_index = index

    def get_default_index(self) -> int | None:
        """The index returned for unknown tokens, or ``None`` when they raise."""
        return self._default_index

    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index``; tokens from ``index`` on move up by one."""
        if token in self._stoi:
            raise ValueError(f"token {token!r} is already in the vocabulary")
        if not 0 <= index <= len(self._itos):
            raise IndexError(f"index {index} is out of range for inserting into {len(self)}")
        self._itos.insert(index, token)
        for position in range(index, len(self._itos)):
            self._stoi[self._itos[position]] = position

    def append_token(self, token: str) -> None:
        """Add ``token`` at the end (index ``len(vocab)``)."""
        self.insert_token(token, len(self._itos))

    def save(self, path: str | Path) -> None:
        """Write the vocabulary as readable JSON: the tokens in index order and the default."""
        document = {"format": _FORMAT, "default_index": self._default_index, "itos": self._itos}
        Path(path).write_text(json.dumps(document, ensure_ascii=False, indent=1) + "\n", "utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        document = json.loads(Path(path).read_text("utf-8"))
        if not isinstance(document, dict) or document.get("format") != _FORMAT:
            raise ValueError(f"{path} is not a vocabulary saved by tfcourse ({_FORMAT})")
        return cls(document["itos"], document["default_index"])


def build_vocab_from_iterator(
    iterator: Iterable[Iterable[str]],
    min_freq: int = 1,
    specials: Sequence[str] | None = None,
    special_first: bool = True,
    max_tokens: int | None = None,
) -> Vocab:
    """Build a :class:`Vocab` from an iterable of token sequences, as torchtext did.

    Tokens seen at least ``min_freq`` times are ordered by frequency, most frequent first,
    ties broken by the token's sort order. ``specials`` (e.g. ``["<unk>", "<pad>"]``) are
    placed first (or last when ``special_first`` is false) in the order given, whether or
    not they occur. ``max_tokens`` caps the vocabulary's size, specials included, by keeping
    the most frequent tokens.
    """
    specials = list(specials or [])
    if max_tokens is not None and max_tokens <= len(specials):
        raise ValueError(
            f"max_tokens={max_tokens} leaves no room beside the {len(specials)} specials"
        )
    counts = Counter(token for tokens in iterator for token in tokens)
    for special in specials:
        counts.pop(special, None)
    ranked = sorted(
        (token for token, count in counts.items() if count >= min_freq),
        key=lambda token: (-counts[token], token),
    )
    if max_tokens is not None:
        ranked = ranked[: max_tokens - len(specials)]
    return Vocab(specials + ranked if special_first else ranked + specials)


class CharTokenizer:
    """Characters to ids and back, with an optional unknown token for unseen characters.

    Built by :meth:`from_text`, the ids of the text's characters follow their sorted order,
    as in nanoGPT's character-level data preparation; the unknown token comes last.
    """

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    @classmethod
    def from_text(cls, text: str, unk: str | None = "<unk>") -> CharTokenizer:
        """The tokenizer of the characters in ``text`` (sorted), plus ``unk`` unless ``None``.

        With ``unk``, characters the text lacks (in a validation split or a sampling prompt)
        encode to ``unk_id`` and decode as ``unk``; without it they raise.
        """
        tokens = sorted(set(text))
        if unk is not None and unk not in tokens:
            tokens.append(unk)
        vocab = Vocab(tokens)
        if unk is not None:
            vocab.set_default_index(vocab[unk])
        return cls(vocab)

    @property
    def vocab_size(self) -> int:
        """The number of ids, the unknown token included."""
        return len(self.vocab)

    @property
    def unk_id(self) -> int | None:
        """The id unseen characters encode to, or ``None`` when they raise."""
        return self.vocab.get_default_index()

    def encode(self, text: str) -> torch.Tensor:
        """The ids of ``text``'s characters: a 1-d ``torch.long`` tensor of ``len(text)``."""
        return torch.tensor(self.vocab.lookup_indices(text), dtype=torch.long)

    def decode(self, ids: torch.Tensor | Sequence[int]) -> str:
        """The text of a 1-d tensor or a sequence of ids (list, numpy array)."""
        if isinstance(ids, torch.Tensor):
            if ids.dim() > 1:
                raise ValueError(
                    f"decode expects 1-d ids, got a tensor of shape {tuple(ids.shape)}"
                )
            ids = ids.reshape(-1).tolist()
        return "".join(self.vocab.lookup_tokens(ids))

    def save(self, path: str | Path) -> None:
        """Write the tokenizer's vocabulary as JSON (see :meth:`Vocab.save`)."""
        self.vocab.save(path)

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """Read a tokenizer written by :meth:`save`."""
        return cls(Vocab.load(path))

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size}, unk_id={self.unk_id})"


WORD_PATTERN = re.compile(
    r"'(?:s|t|re|ve|m|ll|d)"  # English contractions
    r"| ?[^\W\d_]+"  # a word, with the space before it
    r"| ?\d+"  # a number
    r"| ?(?:[^\s\w]|_)+"  # punctuation and symbols
    r"|\s+(?!\S)"  # spaces, leaving the last one to the word after them
    r"|\s+"
)


def split_words(text: str) -> list[str]:
    """The pieces of ``text`` that byte-pair encoding merges within, in order."""
    return WORD_PATTERN.findall(text)
