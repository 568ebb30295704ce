"""Notebook 6's byte-pair encoding against Hugging Face ``tokenizers`` on tiny Shakespeare.

Trains the reference BPE (``tfcourse_instructor.reference.bpe``) and ``tokenizers``' own
``BpeTrainer`` (byte-level pre-tokenizer, GPT-2's pattern, no prefix space, no special
tokens) with the same number of merges on the same text, then prints how many merges the two
share, how long their common prefix is, how many tokens each gives the last tenth of the
text, and the training times. The two pick the same pair whenever the highest count is
unique; they differ only in how they break ties (the reference takes the smallest pair of
byte values, ``tokenizers`` the smallest pair of its own ids, which order the bytes
otherwise), so a tie between pairs of one count can swap the order of two merges and, later,
what they build on.

    python bench/bpe_agreement.py [--merges 1792] [--corpus shakespeare]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from tfcourse.corpora import load_corpus
from tfcourse.vocab import split_words
from tfcourse_instructor.reference import bpe


def byte_level_alphabet() -> dict[str, int]:
    """The character ``tokenizers``' byte-level models write for each byte (GPT-2's table):
    printable bytes stand for themselves, the others for the characters from U+0100 on."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    table = {chr(byte): byte for byte in printable}
    extra = 0
    for byte in range(256):
        if byte not in printable:
            table[chr(256 + extra)] = byte
            extra += 1
    return table


def huggingface_merges(text: str, num_merges: int) -> tuple[list[tuple[bytes, bytes]], object]:
    """Merges learned by ``tokenizers``' BpeTrainer, as pairs of byte strings, and the tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=256 + num_merges,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tokenizer.train_from_iterator([text], trainer)
    alphabet = byte_level_alphabet()

    def as_bytes(token: str) -> bytes:
        return bytes(alphabet[character] for character in token)

    merges = json.loads(tokenizer.to_str())["model"]["merges"]
    pairs = [m.split(" ") if isinstance(m, str) else m for m in merges]
    return [(as_bytes(a), as_bytes(b)) for a, b in pairs], tokenizer


def agreement(text: str, num_merges: int) -> dict[str, float]:
    """Figures comparing the reference with ``tokenizers`` on ``text``."""
    cut = int(len(text) * 0.9)
    train, held_out = text[:cut], text[cut:]
    start = time.perf_counter()
    ours = bpe.train_bpe(Counter(split_words(train)), num_merges)
    ours_seconds = time.perf_counter() - start
    vocab = bpe.vocabulary(ours)
    ours_pairs = [(vocab[a], vocab[b]) for a, b in ours]
    start = time.perf_counter()
    theirs_pairs, tokenizer = huggingface_merges(train, num_merges)
    theirs_seconds = time.perf_counter() - start
    prefix = next(
        (i for i, (a, b) in enumerate(zip(ours_pairs, theirs_pairs, strict=False)) if a != b),
        min(len(ours_pairs), len(theirs_pairs)),
    )
    return {
        "merges": len(ours_pairs),
        "huggingface merges": len(theirs_pairs),
        "common prefix": prefix,
        "shared merges": len(set(ours_pairs) & set(theirs_pairs)),
        "tokens (ours)": len(bpe.encode(held_out, ours)),
        "tokens (tokenizers)": len(tokenizer.encode(held_out).ids),
        "training seconds (ours)": ours_seconds,
        "training seconds (tokenizers)": theirs_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--merges", type=int, default=1792)
    parser.add_argument("--corpus", default="shakespeare")
    args = parser.parse_args()
    figures = agreement(load_corpus(args.corpus).text, args.merges)
    for label, value in figures.items():
        print(f"{label:>30}: {value:.2f}" if isinstance(value, float) else f"{label:>30}: {value}")


if __name__ == "__main__":
    main()
