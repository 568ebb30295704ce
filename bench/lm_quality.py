"""Validation loss of the kit's language-model recipe against nanoGPT's CPU recipe and a 5-gram.

All models see the same corpus and split (first 90% trains, last 10% validates) and are scored
the same way: mean nats per character over the windows of the model's block size that tile
the validation split. Both transformers are notebook 3's model (``language_model.CausalLM``,
given with the notebook) trained by the kit's training step.

- **nanoGPT's CPU recipe** (its README's "I only have a macbook" run): 4 layers, 4 heads,
  width 128, block 64, batch 12, no dropout, AdamW at 1e-3 with warm-up 100 then cosine to
  1e-4 at 2000 iterations, clipping at 1.0, weight decay 0.1 on matrices, betas (0.9, 0.99),
  tied embeddings. Matched: every setting above and pre-norm GELU blocks. Not matched:
  nanoGPT's linear layers and LayerNorms have no biases (``bias=False``); the kit's keep
  theirs (under 1% of the parameters).
- **The kit's recipe** (notebook 3's full mode, read from the notebook's source): 3 layers,
  4 heads, width 128, block 128, batch 16, no dropout, AdamW at 3e-3 with warm-up 100 then
  cosine to 3e-4, the rest as nanoGPT's.
- **A 5-gram count model** (``tfcourse.ngram``, Witten-Bell).

First nanoGPT's recipe runs as published (2000 iterations), to compare with the loss nanoGPT
reports for it. Then both recipes train for the same wall-clock budget (``--minutes``),
**side by side**: one step of each in turn, so that whatever else the machine does slows both
alike. Each recipe's schedule (warm-up, then cosine) is laid over its own training time, so a
run ends with its learning rate decayed whatever the machine's speed; each is evaluated on the
whole validation split at every whole minute of its training time (evaluations are not
counted). Prints the curve, nats per character per minute, and the goals: the kit's recipe at
most 1.45 nats/char at 10 minutes on tiny Shakespeare, and below nanoGPT's at every minute.
The loss at minute m is that of a run planned for the whole budget, so the early points of
both curves are those of runs still at a high learning rate.

How hard the validation split is for any model shows in the 5-gram's loss on each tenth of the
corpus, fitted on the other nine (printed first). ``--recipes kit`` trains the kit's recipe
alone, for a budget longer than the goal's: what more compute buys.

    python bench/lm_quality.py [--corpus shakespeare|pydoc] [--minutes 10] [--threads N]
                               [--recipes both|kit]
"""

from __future__ import annotations

import argparse
import ast
import os
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from tfcourse.corpora import load_corpus, read_text_file
from tfcourse.encoder_config import EncoderConfig
from tfcourse.ngram import NGramModel
from tfcourse.optimizer import TrainConfig, make_optimizer
from tfcourse.vocab import CharTokenizer
from tfcourse_instructor.reference.training import (
    evaluate,
    get_batch,
    learning_rate,
    split_ids,
    train,
    train_step,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_SHAKESPEARE = ROOT.parent / "shared" / "data" / "tiny_shakespeare.txt"
# Notebook 3's model is released beside the notebook, not in a package.
sys.path.insert(0, str(ROOT / "authoring" / "03_language_models" / "given"))
from language_model import CausalLM  # noqa: E402

GOAL_NATS = 1.45


@dataclass(frozen=True)
class Recipe:
    """A model and how to train it."""

    name: str
    model: dict[str, int | float]
    """``EncoderConfig``'s settings but the vocabulary (no dropout unless given)."""
    train: TrainConfig

    def build(self, vocab_size: int) -> CausalLM:
        torch.manual_seed(self.train.seed)
        return CausalLM(EncoderConfig(vocab_size=vocab_size, **{"dropout": 0.0, **self.model}))


NANOGPT = Recipe(
    "nanoGPT CPU recipe",
    dict(n_layer=4, n_head=4, d_model=128, d_ff=512, block_size=64),
    TrainConfig(max_iters=2000, batch_size=12, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100),
)
NOTEBOOK_3 = ROOT / "authoring" / "03_language_models" / "03_language_models.py"


def notebook_recipe(source: Path = NOTEBOOK_3) -> Recipe:
    """Notebook 3's full-mode recipe, read from the notebook's source so that the benchmark
    trains what students train: the keyword arguments of its module-level ``model_config =
    EncoderConfig(...)`` and ``train_config = TrainConfig(...)`` (the quick mode's sizes are
    set inside ``if QUICK:``, so they are not read)."""
    found: dict[str, dict[str, object]] = {}
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        names = [target.id for target in node.targets if isinstance(target, ast.Name)]
        if names in (["model_config"], ["train_config"]):
            if names[0] in found:
                raise ValueError(f"{source}: {names[0]} is set twice at module level")
            # The vocabulary comes from the corpus; every other setting must be a literal.
            found[names[0]] = {
                keyword.arg: ast.literal_eval(keyword.value)
                for keyword in node.value.keywords
                if keyword.arg != "vocab_size"
            }
    if set(found) != {"model_config", "train_config"}:
        raise ValueError(f"{source}: no module-level model_config and train_config")
    return Recipe("kit recipe", found["model_config"], TrainConfig(**found["train_config"]))


KIT = notebook_recipe()


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
            x, y = get_batch(data, recipe.model["block_size"], recipe.train.batch_size, generator)
            start = time.perf_counter()
            train_step(model, optimizer, x, y, 1e-4)
            if repeat >= 5:  # the first steps warm up allocators and caches
                times.append(time.perf_counter() - start)
    return [statistics.median(times) for *_, times in setups]


@dataclass
class BudgetRun:
    """One recipe trained for ``budget`` seconds of its own step time, evaluated each minute.

    The schedule is the recipe's, over the iterations that calibration says fit the budget,
    but indexed by the fraction of the budget spent rather than by the step count.
    """

    recipe: Recipe
    train_ids: torch.Tensor
    val_ids: torch.Tensor
    vocab_size: int
    budget: float
    planned_iters: int
    steps: int = 0
    seconds: float = 0.0
    curve: list[tuple[int, int, float]] = field(default_factory=list)
    """(minute, steps done, validation nats/char) at each whole minute of training."""

    def __post_init__(self) -> None:
        self.model = self.recipe.build(self.vocab_size)
        self.schedule = replace(self.recipe.train, max_iters=self.planned_iters)
        self.optimizer = make_optimizer(self.model, self.schedule)
        self.generator = torch.Generator().manual_seed(self.recipe.train.seed)

    @property
    def done(self) -> bool:
        return self.seconds >= self.budget

    def step(self) -> None:
        """One training step; an evaluation when it crosses a whole minute."""
        block, batch = self.recipe.model["block_size"], self.recipe.train.batch_size
        x, y = get_batch(self.train_ids, block, batch, self.generator)
        virtual_step = int(self.planned_iters * self.seconds / self.budget)
        start = time.perf_counter()
        train_step(self.model, self.optimizer, x, y, learning_rate(virtual_step, self.schedule))
        self.seconds += time.perf_counter() - start
        self.steps += 1
        minute = int(self.seconds // 60)
        if minute > len(self.curve) and minute <= self.budget // 60:
            loss = evaluate(self.model, self.val_ids).loss
            self.curve.append((minute, self.steps, loss))
            print(
                f"  {self.recipe.name:<20} {self.seconds / 60:5.2f} min  {self.steps:>6} steps"
                f"  val {loss:.4f}",
                flush=True,
            )


def side_by_side(runs: list[BudgetRun]) -> None:
    """Step each unfinished run in turn until every run has spent its budget."""
    while not all(run.done for run in runs):
        for run in runs:
            if not run.done:
                run.step()


def published(recipe: Recipe, train_ids: torch.Tensor, val_ids: torch.Tensor, vocab: int) -> float:
    """Train ``recipe`` for its own ``max_iters`` and return its validation loss."""
    model = recipe.build(vocab)
    config = replace(recipe.train, eval_interval=recipe.train.max_iters)
    history = train(model, train_ids, val_ids, config, progress=False)
    loss = history.final_val_loss  # the whole validation split, after the last step
    print(
        f"{recipe.name} as published: {recipe.train.max_iters} iterations in "
        f"{history.seconds:.0f} s (one evaluation included), "
        f"{model.count_parameters() / 1e6:.2f}M parameters, val {loss:.4f} nats/char"
    )
    return loss


def tenths(ids: torch.Tensor, vocab: int) -> list[float]:
    """The 5-gram's nats/char on each tenth of ``ids``, fitted on the other nine tenths."""
    losses = []
    for k in range(10):
        start, end = len(ids) * k // 10, len(ids) * (k + 1) // 10
        rest = torch.cat([ids[:start], ids[end:]])
        losses.append(NGramModel(5, vocab).fit(rest).nats_per_token(ids[start:end]))
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default="shakespeare", choices=["shakespeare", "pydoc"])
    parser.add_argument("--minutes", type=int, default=10, help="the training budget of each")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument(
        "--recipes",
        default="both",
        choices=["both", "kit"],
        help="kit: the kit's recipe alone (no nanoGPT runs), e.g. for a longer budget",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    text = corpus_text(args.corpus)
    tokenizer = CharTokenizer.from_text(text, unk=None)
    ids = tokenizer.encode(text)
    train_ids, val_ids = split_ids(ids, 0.9)
    vocab = tokenizer.vocab_size
    print(
        f"corpus {args.corpus}: {len(text):,} characters, vocabulary {vocab}, "
        f"validation {len(val_ids):,}; {args.threads} thread(s); load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    ngram_loss = NGramModel(5, vocab).fit(train_ids).nats_per_token(val_ids)
    print(f"5-gram (Witten-Bell): val {ngram_loss:.4f} nats/char")
    by_tenth = tenths(ids, vocab)
    above = by_tenth[-1] - statistics.median(by_tenth)
    print(
        "5-gram on each tenth of the corpus, fitted on the other nine: "
        + " ".join(f"{loss:.3f}" for loss in by_tenth)
        + f"\n  the validation split (the last tenth): {above:+.3f} nats/char from the median tenth"
    )

    recipes = [NANOGPT, KIT] if args.recipes == "both" else [KIT]
    if NANOGPT in recipes:
        published(NANOGPT, train_ids, val_ids, vocab)

    budget = 60.0 * args.minutes
    seconds = step_seconds(recipes, train_ids, vocab)
    runs = [
        BudgetRun(recipe, train_ids, val_ids, vocab, budget, round(budget / step))
        for recipe, step in zip(recipes, seconds, strict=True)
    ]
    for run, step in zip(runs, seconds, strict=True):
        print(
            f"{run.recipe.name}: {run.model.count_parameters() / 1e6:.2f}M parameters, "
            f"{1e3 * step:.0f} ms per step, about {run.planned_iters} steps in {args.minutes} min"
        )
    wall = time.perf_counter()
    side_by_side(runs)
    print(
        f"{'side by side' if len(runs) > 1 else 'alone'}: "
        f"{(time.perf_counter() - wall) / 60:.1f} min of wall time, load average "
        f"{os.getloadavg()[0]:.1f}"
    )

    kit = runs[-1]
    if len(runs) > 1:
        print_curves(runs[0], kit, ngram_loss)
    else:
        print(f"\n{'minutes':>7}  {'kit':>8}  {'kit/5-gram':>10}")
        for minute, _, kit_loss in kit.curve:
            print(f"{minute:>7}  {kit_loss:8.4f}  {kit_loss / ngram_loss:10.3f}")
    final = kit.curve[-1][2]
    print(f"\nkit recipe after {args.minutes} min: {final:.4f} nats/char, {kit.steps} steps")
    if args.corpus == "shakespeare":
        met = final <= GOAL_NATS and args.minutes <= 10
        print(f"goal, at most {GOAL_NATS} within 10 min: {'met' if met else 'not met'}")


def print_curves(nano: BudgetRun, kit: BudgetRun, ngram_loss: float) -> None:
    """Both curves minute by minute, their ratios, and whether the kit's is below at each."""
    print(f"\n{'minutes':>7}  {'nanoGPT':>8}  {'kit':>8}  {'kit/nanoGPT':>11}  {'kit/5-gram':>10}")
    for (minute, _, nano_loss), (_, _, kit_loss) in zip(nano.curve, kit.curve, strict=True):
        print(
            f"{minute:>7}  {nano_loss:8.4f}  {kit_loss:8.4f}  {kit_loss / nano_loss:11.3f}"
            f"  {kit_loss / ngram_loss:10.3f}"
        )
    ahead = all(k[2] < n[2] for n, k in zip(nano.curve, kit.curve, strict=True))
    print(f"kit below nanoGPT at every minute: {'yes' if ahead else 'no'}")


if __name__ == "__main__":
    main()
