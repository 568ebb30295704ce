"""Splitting text into the pieces a byte-level BPE tokenizer merges within (notebook 6).

Byte-pair encoding never merges across the boundaries of these pieces, so a token is at most
one word with its leading space, one number, one run of punctuation or one run of spaces.
The pattern follows GPT-2's pre-tokenizer with Python's own ``re``: letters are
``[^\\W\\d_]``, digits ``\\d``; on ASCII text such as tiny Shakespeare it splits exactly as
the Hugging Face ``tokenizers`` ``ByteLevel`` pre-tokenizer does (``use_regex=True``,
``add_prefix_space=False``).

The pieces of a text joined together give the text back: every character belongs to one.
"""

from __future__ import annotations

import re

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
