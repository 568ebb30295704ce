"""Validation loss of the kit's language-model recipe against nanoGPT's CPU recipe and a 5-gram.

All models see the same corpus and split (first 90% trains, last 10% validates) and are scored
the same way: mean nats per character over the windows that tile the validation split.

- **nanoGPT's CPU recipe** (its README's "I only have a macbook" run), rebuilt with the kit's
  ``CausalLM`` and training loop: 4 layers, 4 heads, width 128, block 64, batch 12, no
  dropout, AdamW at 1e-3 with warm-up 100 then cosine to 1e-4 at 2000 iterations, clipping
  at 1.0, weight decay 0.1 on matrices, betas (0.9, 0.99), tied embeddings. Matched: every
  setting above and pre-norm GELU blocks. Not matched: nanoGPT's linear layers have no biases
  (``bias=False``) and its LayerNorm has no bias; the kit's modules keep theirs (under 1% of
  the parameters).
- **The kit's recipe** (notebook 3's full-mode model): 3 layers, width 128, block 64, batch
  16, AdamW at 3e-3 with warm-up 100 then cosine to 3e-4, trained for as many iterations as
  fit in the wall time nanoGPT's recipe took (step times calibrated side by side first).
- **A 5-gram count model** (``tfcourse.ngram``, Witten-Bell).
- With ``--minutes M``: the kit's recipe again, for as many iterations as fit in M minutes.

Prints validation nats per character for each, and the ratios. One thread by default, so the
figures are those of one laptop core and other programs disturb them less.

    python bench/lm_quality.py [--corpus pydoc|shakespeare] [--minutes 10] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from tfcourse.corpora import load_corpus, read_text_file
from tfcourse.encoder_config import EncoderConfig
from tfcourse.ngram import NGramModel
from tfcourse.optimizer import TrainConfig, make_optimizer
from tfcourse.vocab import CharTokenizer
from tfcourse_instructor.reference.encoder import CausalLM
from tfcourse_instructor.reference.training import (
    evaluate,
    get_batch,
    split_ids,
    train,
    train_step,
)

SHARED_SHAKESPEARE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tiny_shakespeare.txt"
)


@dataclass(frozen=True)
class Recipe:
    """A model and how to train it; ``train.max_iters`` may be replaced to fit a budget."""

    name: str
    model: dict[str, object]
    train: TrainConfig

    def build(self, vocab_size: int) -> CausalLM:
        torch.manual_seed(self.train.seed)
        return CausalLM(EncoderConfig(vocab_size=vocab_size, dropout=0.0, **self.model))  # type: ignore[arg-type]


NANOGPT = Recipe(
    "nanoGPT CPU recipe",
    dict(n_layer=4, n_head=4, d_model=128, d_ff=512, block_size=64),
    TrainConfig(
        max_iters=2000,
        batch_size=12,
        learning_rate=1e-3,
        min_lr=1e-4,
        warmup_iters=100,
        eval_interval=10**9,
    ),
)
KIT = Recipe(
    "kit recipe",
    dict(n_layer=3, n_head=4, d_model=128, d_ff=512, block_size=64),
    TrainConfig(
        max_iters=2000,
        batch_size=16,
        learning_rate=3e-3,
        min_lr=3e-4,
        warmup_iters=100,
        eval_interval=10**9,
    ),
)


def corpus_text(name: str) -> str:
    """The corpus text; tiny Shakespeare from the shared folder when it is there."""
    if name == "shakespeare" and SHARED_SHAKESPEARE.is_file():
        return read_text_file(SHARED_SHAKESPEARE)
    return load_corpus(name).text


def step_seconds(recipes: list[Recipe], data: torch.Tensor, vocab_size: int) -> list[float]:
    """Median seconds per training step of each recipe, measured interleaved (20 steps each)."""
    setups = []
    for recipe in recipes:
        model = recipe.build(vocab_size)
        setups.append((recipe, model, make_optimizer(model, recipe.train), []))
    generator = torch.Generator().manual_seed(0)
    for repeat in range(25):
        for recipe, model, optimizer, times in setups:
            x, y = get_batch(data, recipe.model["block_size"], recipe.train.batch_size, generator)  # type: ignore[arg-type]
            start = time.perf_counter()
            train_step(model, optimizer, x, y, 1e-4)
            if repeat >= 5:  # the first steps warm up allocators and caches
                times.append(time.perf_counter() - start)
    return [statistics.median(times) for *_, times in setups]


def run(recipe: Recipe, train_ids: torch.Tensor, val_ids: torch.Tensor, vocab: int) -> dict:
    """Train and evaluate ``recipe``; its loss, iterations, wall and CPU seconds."""
    model = recipe.build(vocab)
    wall, cpu = time.perf_counter(), time.process_time()
    train(model, train_ids, val_ids, recipe.train, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    loss = evaluate(model, val_ids).loss
    print(
        f"{recipe.name:<28} {recipe.train.max_iters:>6} it  {wall:7.0f} s wall  {cpu:7.0f} s cpu"
        f"  {model.count_parameters() / 1e6:5.2f}M params  val {loss:.4f} nats/char",
        flush=True,
    )
    return {"loss": loss, "wall": wall, "cpu": cpu}


def with_iters(recipe: Recipe, name: str, iters: int) -> Recipe:
    train_config = TrainConfig(**{**recipe.train.__dict__, "max_iters": iters})
    return Recipe(name, recipe.model, train_config)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="pydoc", choices=["pydoc", "shakespeare"])
    parser.add_argument(
        "--minutes", type=float, default=0.0, help="also train the kit recipe this long"
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = corpus_text(args.corpus)
    tokenizer = CharTokenizer.from_text(text, unk=None)
    train_ids, val_ids = split_ids(tokenizer.encode(text), 0.9)
    vocab = tokenizer.vocab_size
    print(
        f"corpus {args.corpus}: {len(text):,} characters, vocabulary {vocab}, "
        f"validation {len(val_ids):,}; {args.threads} thread(s); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )

    start = time.perf_counter()
    five_gram = NGramModel(5, vocab).fit(train_ids)
    ngram_loss = five_gram.nats_per_token(val_ids)
    print(
        f"{'5-gram (Witten-Bell)':<28} {time.perf_counter() - start:>23.1f} s wall"
        f"  val {ngram_loss:.4f} nats/char"
    )

    nano_step, kit_step = step_seconds([NANOGPT, KIT], train_ids, vocab)
    kit_iters = round(NANOGPT.train.max_iters * nano_step / kit_step)
    print(
        f"step time: nanoGPT {1e3 * nano_step:.0f} ms, kit {1e3 * kit_step:.0f} ms "
        f"-> kit gets {kit_iters} iterations for nanoGPT's 2000"
    )
    nano = run(NANOGPT, train_ids, val_ids, vocab)
    kit = run(with_iters(KIT, "kit recipe (equal time)", kit_iters), train_ids, val_ids, vocab)
    results = {"nanoGPT": nano["loss"], "kit": kit["loss"]}
    if args.minutes:
        iters = int(60 * args.minutes / kit_step)
        name = f"kit recipe ({args.minutes:g} min)"
        results["kit long"] = run(with_iters(KIT, name, iters), train_ids, val_ids, vocab)["loss"]

    print()
    print(
        f"kit / nanoGPT at equal time: {results['kit'] / results['nanoGPT']:.3f} "
        f"(wall {kit['wall']:.0f} s vs {nano['wall']:.0f} s; goal below 1)"
    )
    for key, label in [
        ("nanoGPT", "nanoGPT"),
        ("kit", "kit (equal time)"),
        ("kit long", "kit (long)"),
    ]:
        if key in results:
            print(f"{label} / 5-gram: {results[key] / ngram_loss:.3f}")


if __name__ == "__main__":
    main()
