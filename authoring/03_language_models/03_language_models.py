# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 3 — Training character-level language models
#
# Notebook 2 ended with a causal language model that had never seen a word. In this notebook
# you teach it to write. You turn text into training batches, measure what a model knows in
# nats, perplexity and bits per character, write the training loop that every modern language
# model still uses (AdamW, warm-up and cosine decay, gradient clipping), save and reload what
# you trained, and sample from it with a temperature and top-k. Then you compare it with a
# counting model, the baseline a transformer must beat, and run a sweep of ten small models to
# see which knobs matter when time is short.
#
# **You will learn to**
# 1. build a character vocabulary and a data pipeline whose targets are the inputs shifted
#    by one;
# 2. compute the loss, perplexity and bits per character of a model, and evaluate it properly
#    (`eval()` mode, no gradients);
# 3. write a learning-rate schedule with warm-up and cosine decay, a training step with
#    gradient clipping, and a training loop with progress and loss curves;
# 4. save a checkpoint (configuration and weights) and load it back;
# 5. sample text with temperature and top-k;
# 6. run and read a sweep of ten models: validation loss against size and against time.
#
# **Prerequisites**: notebook 2 (the causal language model), PyTorch optimisers and
# `loss.backward()`.
#
# **Time**: about 3 to 4 hours of work. Run top to bottom, the notebook trains for about 7
# minutes on a 2-core laptop CPU (7.2 minutes measured on the kit's 2-core machine: 5.9 in
# Section 5 and 1.1 in Section 9, with progress bars), less with more cores; a GPU is not
# needed. When your notebook is graded it runs in a quick mode with much smaller training
# (see `QUICK` below), so do not change the sizes to make your results look better: the
# graded thresholds are set for the quick mode.
#
# **How to work**: fill in each `# YOUR CODE HERE` and delete the `raise NotImplementedError()`
# line below it. Run the `grader.check(...)` cell after each task: it runs the public tests and
# says, for each one, what was expected and what came back. Hidden tests run when your notebook
# is graded. Answer the written questions in the cells marked `YOUR ANSWER HERE`. Before you
# submit, restart the kernel and run all cells.
#
# **How to check and submit**: the first code cell sets the notebook up in Colab (it installs
# the course helpers and this notebook's tests; in JupyterLab it does nothing). When you are
# done, restart the kernel and run all cells, save, and read the report of the last cell: it
# lists any answer still missing, any cell that raised or did not run, and any check short of
# its public points. Then hand in the saved `.ipynb` file as your course asks.
#
# **The model is given.** You train the `CausalLM` of `language_model.py`, the file that came
# with this notebook (keep it next to it): the model of notebook 2 (pre-norm, learned positions,
# tied weights) built from PyTorch's own `nn.TransformerEncoder`, so a mistake in notebook 2
# costs you nothing here. `model(idx, targets)` returns `(logits, loss)`;
# `model.count_parameters()` counts its parameters; `model.config` is its `EncoderConfig`.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
import os
import time
from dataclasses import asdict, replace

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

from tfcourse.checking import Grader
from tfcourse.corpora import load_corpus
from tfcourse.encoder_config import EncoderConfig
from tfcourse.ngram import NGramModel
from tfcourse.optimizer import TrainConfig, make_optimizer
from tfcourse.runmode import quick_mode

from language_model import CausalLM

# QUICK is the notebook's one size switch. It is on while the notebook is graded (nbgrader,
# Gradescope) or run by the kit's checks: training then shrinks so that the whole notebook
# runs in seconds. Leave it alone; your own runs use the full sizes.
QUICK = quick_mode()

torch.manual_seed(0)
# Graded runs use one thread, so that they repeat exactly. Your own runs use every core
# (PyTorch's default): on two cores, training takes a little over half its one-thread time.
if QUICK:
    torch.set_num_threads(1)
grader = Grader("tests")
print("quick mode (graded sizes)" if QUICK else "full mode")

# %% [markdown]
# ## 1. Text and a character vocabulary
#
# The corpus is the prose of Python's own documentation (`pydoc_data.topics`, shipped with
# every Python, so it needs no download; Python Software Foundation licence): about 465,000
# characters about `for` statements, descriptors and string formatting. A character-level
# model reads and writes one character at a time, so its vocabulary is simply the set of
# characters in the text.

# %%
corpus = load_corpus("pydoc")
text = corpus.text
print(f"{len(text):,} characters; source: {corpus.source}")
print(text[10_000:10_400])

# %% [markdown]
# **Task.** Write a `CharTokenizer` built from a text:
# - `itos` ("index to string"): the list of the distinct characters of `text`, **sorted**;
#   `stoi`: the dict mapping each character to its index in `itos`;
# - `vocab_size`: the number of distinct characters;
# - `encode(s)`: a 1-d `torch.long` tensor with the index of each character of `s`;
# - `decode(ids)`: the string of the ids, given as a 1-d tensor or a list of ints.
#
# `decode(encode(s)) == s` for every string made of the text's characters.
#
# **Not allowed here:** `tfcourse.vocab`, `tfcourse_instructor.reference`. A solution that calls one of
# them scores 0 on this question.

# %% nbgrader={"grade_id": "tokenizer", "solution": true}
class CharTokenizer:
    """Characters <-> ids, for the characters of one text."""

    def __init__(self, text: str) -> None:
        ### BEGIN SOLUTION
        self.itos = sorted(set(text))
        self.stoi = {char: index for index, char in enumerate(self.itos)}
        ### END SOLUTION

    @property
    def vocab_size(self) -> int:
        ### BEGIN SOLUTION
        return len(self.itos)
        ### END SOLUTION

    def encode(self, s: str) -> Tensor:
        ### BEGIN SOLUTION
        return torch.tensor([self.stoi[char] for char in s], dtype=torch.long)
        ### END SOLUTION

    def decode(self, ids: Tensor | list[int]) -> str:
        ### BEGIN SOLUTION
        if isinstance(ids, Tensor):
            ids = ids.tolist()
        return "".join(self.itos[index] for index in ids)
        ### END SOLUTION


# %%
tokenizer = CharTokenizer(text)
data = tokenizer.encode(text)
print("vocabulary size:", tokenizer.vocab_size)
print("first characters:", repr("".join(tokenizer.itos[:40])))
print("encode('def f(x):') =", tokenizer.encode("def f(x):").tolist())
print("round trip:", tokenizer.decode(tokenizer.encode("def f(x):")))

# %% nbgrader={"grade_id": "q3_tokenizer", "grade": true, "locked": true}
grader.check("q3_tokenizer")

# %% [markdown]
# ## 2. Batches: every position predicts the next character
#
# A language model is trained to predict each token from the ones before it. Cut a window of
# `block_size + 1` consecutive ids from the data: its first `block_size` ids are the input
# `x`, and the **same window shifted by one** is the target `y`. One window then holds
# `block_size` training examples at once: `x[:t+1]` predicts `y[t] = x[t+1]`, and the causal
# mask makes sure position `t` cannot peek at its own answer.
#
# ```
# data:     d e f   f ( x ) :
# x:        d e f   f ( x )
# y:          e f   f ( x ) :
# ```
#
# Validation text must be text the model never trained on. For text, the split is contiguous:
# the first 90% trains, the last 10% validates (a shuffled split would put near-copies of
# training sentences in the validation set).
#
# **Tasks.**
# - `split_data(data, train_fraction)`: the first `int(len(data) * train_fraction)` ids and the
#   rest, as `(train, val)`.
# - `get_batch(data, block_size, batch_size, generator)`: `batch_size` windows at random
#   starts, drawn with `torch.randint(..., generator=generator)` so that a seeded generator
#   gives the same batch every time; every start from `0` to `len(data) - block_size - 1` must
#   be possible. Return `(x, y)`, both `(batch_size, block_size)` and `torch.long`, with
#   `y[b, t] == x[b, t + 1]` inside a window and `y[b, -1]` the id after the window.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "batches", "solution": true}
def split_data(data: Tensor, train_fraction: float = 0.9) -> tuple[Tensor, Tensor]:
    """The first train_fraction of the ids and the rest: (train, val)."""
    ### BEGIN SOLUTION
    cut = int(len(data) * train_fraction)
    return data[:cut], data[cut:]
    ### END SOLUTION


def get_batch(
    data: Tensor, block_size: int, batch_size: int, generator: torch.Generator | None = None
) -> tuple[Tensor, Tensor]:
    """Random windows: inputs x and targets y = x shifted by one, both (batch_size, block_size)."""
    ### BEGIN SOLUTION
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x, y
    ### END SOLUTION


# %%
train_data, val_data = split_data(data, 0.9)
print(f"train: {len(train_data):,} ids, validation: {len(val_data):,} ids")
x, y = get_batch(train_data, block_size=16, batch_size=2, generator=torch.Generator().manual_seed(0))
print("x[0]:", repr(tokenizer.decode(x[0])))
print("y[0]:", repr(tokenizer.decode(y[0])))

# %% nbgrader={"grade_id": "q3_batches", "grade": true, "locked": true}
grader.check("q3_batches")

# %% [markdown]
# ## 3. Loss, perplexity and bits per character
#
# The model outputs logits `(B, T, V)`; softmax turns each row into a distribution over the
# next character. The **loss** is the mean over all `B·T` positions of $-\ln p(\text{target})$,
# the cross-entropy, in **nats** per character. Two other units say the same thing:
#
# - **perplexity** $= e^{\text{loss}}$: the model is as unsure as if it chose uniformly among
#   that many characters. A model that knows nothing predicts the uniform distribution: loss
#   $\ln V$, perplexity $V$.
# - **bits per character** $= \text{loss} / \ln 2$: the average code length of the text if
#   the model's probabilities drove an arithmetic coder. gzip needs about 2.5 bits per character
#   for English; good character models need well under 1.5.
#
# **Tasks.** `lm_loss(logits, targets)` returns the mean cross-entropy as a scalar tensor
# (`F.cross_entropy` wants `(N, V)` logits and `(N,)` targets); `perplexity(loss)` and
# `bits_per_char(loss)` take a loss in nats (a float) and return floats.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "metrics", "solution": true}
def lm_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats) of logits (B, T, V) against targets (B, T)."""
    ### BEGIN SOLUTION
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    ### END SOLUTION


def perplexity(loss: float) -> float:
    ### BEGIN SOLUTION
    return math.exp(loss)
    ### END SOLUTION


def bits_per_char(loss: float) -> float:
    ### BEGIN SOLUTION
    return loss / math.log(2)
    ### END SOLUTION


# %% [markdown]
# An untrained model should be close to the know-nothing model: check that its loss is near
# $\ln V$ (the initialisation makes all logits small, so the softmax is nearly uniform).

# %%
torch.manual_seed(0)
untrained = CausalLM(EncoderConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=2,
                                   n_head=4, d_model=64, d_ff=256, dropout=0.0))
x, y = get_batch(train_data, 32, 8, torch.Generator().manual_seed(1))
loss = lm_loss(untrained(x)[0], y).item()
print(f"untrained: loss {loss:.3f} nats, ln V = {math.log(tokenizer.vocab_size):.3f}; "
      f"perplexity {perplexity(loss):.1f}; {bits_per_char(loss):.2f} bits per character")

# %% nbgrader={"grade_id": "q3_metrics", "grade": true, "locked": true}
grader.check("q3_metrics")

# %% [markdown]
# ### Evaluating a model
#
# The validation loss is what we report, so it must be measured the same way every time:
#
# - in **`model.eval()`** mode, which switches dropout off (in `train()` mode, dropout zeroes
#   random activations and the loss is noisier and higher);
# - under **`torch.no_grad()`**: no graph is built, which saves memory and time;
# - over fixed windows rather than random ones, so two evaluations of the same model agree.
#
# **Task.** `evaluate(model, data, batch_size=32)` returns the mean loss (a float, in nats) over
# the non-overlapping windows that tile `data`: window `i` has inputs `data[i*T : i*T + T]` and
# targets `data[i*T + 1 : i*T + T + 1]`, with `T = model.config.block_size`, for every `i` such
# that the targets fit (that is `(len(data) - 1) // T` windows). Run them in batches of
# `batch_size` windows and weight each batch by its size. Put the model back in the mode it
# was in (`model.training` tells you which).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "evaluate", "solution": true}
def evaluate(model: CausalLM, data: Tensor, batch_size: int = 32) -> float:
    """Mean validation loss (nats per token) over the windows that tile data."""
    ### BEGIN SOLUTION
    block_size = model.config.block_size
    starts = torch.arange((len(data) - 1) // block_size) * block_size
    offsets = torch.arange(block_size)
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in starts.split(batch_size):
            x = data[chunk[:, None] + offsets]
            y = data[chunk[:, None] + offsets + 1]
            logits, _ = model(x)
            total += lm_loss(logits, y).item() * y.numel()
            count += y.numel()
    model.train(was_training)
    return total / count
    ### END SOLUTION


# %%
print(f"untrained model on the validation split: {evaluate(untrained, val_data):.3f} nats")

# %% nbgrader={"grade_id": "q3_evaluate", "grade": true, "locked": true}
grader.check("q3_evaluate")

# %% [markdown]
# ## 4. The learning-rate schedule
#
# Transformers are trained with a learning rate that first **warms up** linearly (Adam's
# moment estimates are poor in the first steps, and large early updates can wreck a model, as
# notebook 2's post-norm experiment showed), then **decays** along half a cosine to a floor,
# so the last steps make small, careful updates. With peak $\eta_{\max}$ = `learning_rate`,
# floor $\eta_{\min}$ = `min_lr`, $W$ = `warmup_iters` and $N$ = `max_iters`, step $s$
# (counting from 0) uses
#
# $$\eta(s) = \begin{cases}
#   \eta_{\max}\,\dfrac{s + 1}{W + 1} & s < W \\[2mm]
#   \eta_{\min} + \tfrac12\big(1 + \cos(\pi\,\tfrac{s - W}{N - W})\big)(\eta_{\max} - \eta_{\min}) & W \le s < N \\[2mm]
#   \eta_{\min} & s \ge N
# \end{cases}$$
#
# **Task.** `learning_rate(step, config)` computes $\eta(s)$ from a `TrainConfig` (fields
# `learning_rate`, `min_lr`, `warmup_iters`, `max_iters`).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %%
print(TrainConfig())

# %% nbgrader={"grade_id": "schedule", "solution": true}
def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to config.min_lr at config.max_iters."""
    ### BEGIN SOLUTION
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if step >= config.max_iters:
        return config.min_lr
    progress = (step - config.warmup_iters) / (config.max_iters - config.warmup_iters)
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (
        config.learning_rate - config.min_lr
    )
    ### END SOLUTION


# %%
schedule = TrainConfig(max_iters=2000, warmup_iters=100, learning_rate=1e-3, min_lr=1e-4)
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot([learning_rate(step, schedule) for step in range(2200)])
ax.set(xlabel="step", ylabel="learning rate", title="warm-up 100 steps, cosine to 1e-4 at 2000")
plt.show()

# %% nbgrader={"grade_id": "q3_schedule", "grade": true, "locked": true}
grader.check("q3_schedule")

# %% [markdown]
# ## 5. The training loop
#
# **The optimiser is given**: `make_optimizer(model, config)` returns AdamW with weight decay
# on the weight matrices only (decaying biases and LayerNorm gains towards zero only hurts);
# it uses `model.optimizer_groups`.
#
# **Task 1.** `train_step(model, optimizer, x, y, lr, grad_clip)` performs one update and
# returns the batch's loss as a Python float:
# 1. put the model in training mode and set `lr` in every parameter group of the optimiser
#    (`optimizer.param_groups` is a list of dicts with a key `"lr"`);
# 2. compute the loss (the model returns it: `model(x, y)`) and back-propagate. The update
#    must use this batch's gradients only, so clear the old ones (`optimizer.zero_grad()`),
#    either before `backward` or after the optimiser step, as you prefer: the checks look at
#    the update the step makes, not at the gradients it leaves behind;
# 3. if `grad_clip > 0`, rescale the gradients so that their global norm is at most
#    `grad_clip` (`torch.nn.utils.clip_grad_norm_`) before the step: one unlucky batch then
#    cannot throw the model far;
# 4. take the optimiser step. The checks also call `train_step` with other optimisers than
#    AdamW (plain SGD, to see the update), so use only `optimizer.param_groups`,
#    `zero_grad()` and `step()`.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "train_step", "solution": true}
def train_step(
    model: CausalLM,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    lr: float,
    grad_clip: float = 1.0,
) -> float:
    """One optimisation step on the batch (x, y); returns its loss."""
    ### BEGIN SOLUTION
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()
    ### END SOLUTION


# %% nbgrader={"grade_id": "q3_train_step", "grade": true, "locked": true}
grader.check("q3_train_step")

# %% [markdown]
# **Task 2.** `train(model, train_data, val_data, config)` trains for `config.max_iters` steps
# and returns a history dict:
# - create the optimiser with `make_optimizer(model, config)` and one batch generator,
#   `torch.Generator().manual_seed(config.seed)`;
# - at each step `s` (from 0): a batch from `train_data` with `get_batch` (block size
#   `model.config.block_size`, batch size `config.batch_size`), the rate `learning_rate(s, config)`,
#   one `train_step` (clipping at `config.grad_clip`); append the loss to `history["train_loss"]`;
# - after every `config.eval_interval` steps, and after the last step, evaluate on `val_data`
#   and append the number of steps done to `history["eval_steps"]` and the loss to
#   `history["val_loss"]`;
# - wrap the steps in a `tqdm` progress bar (`bar = tqdm(range(...))`, then loop over `bar`),
#   and show the latest losses on it with `bar.set_postfix(...)` if you like;
# - return the model in `eval()` mode, with `history = {"train_loss": [...], "eval_steps": [...],
#   "val_loss": [...]}`.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "train_loop", "solution": true}
def train(model: CausalLM, train_data: Tensor, val_data: Tensor, config: TrainConfig) -> dict:
    """Train model; return {"train_loss": [...], "eval_steps": [...], "val_loss": [...]}."""
    ### BEGIN SOLUTION
    optimizer = make_optimizer(model, config)
    generator = torch.Generator().manual_seed(config.seed)
    history = {"train_loss": [], "eval_steps": [], "val_loss": []}
    bar = tqdm(range(config.max_iters), unit="step")
    for step in bar:
        x, y = get_batch(train_data, model.config.block_size, config.batch_size, generator)
        loss = train_step(model, optimizer, x, y, learning_rate(step, config), config.grad_clip)
        history["train_loss"].append(loss)
        if (step + 1) % config.eval_interval == 0 or step + 1 == config.max_iters:
            history["eval_steps"].append(step + 1)
            history["val_loss"].append(evaluate(model, val_data))
            bar.set_postfix(train=f"{loss:.3f}", val=f"{history['val_loss'][-1]:.3f}")
    model.eval()
    return history
    ### END SOLUTION


# %% [markdown]
# Now train. In full mode this is a 3-layer, 128-wide model (about 0.6M parameters) on windows
# of 128 characters for 3,000 steps of 16 windows, at a peak learning rate of $3 \cdot 10^{-3}$:
# about 14.7 passes (epochs) over the training text. It is the course's recipe for a CPU:
# trained for ten minutes on tiny Shakespeare side by side with nanoGPT's CPU recipe, it was
# ahead at every minute. On the kit's 2-core machine, with nothing else running, it took 5.9
# minutes and reached a validation loss of 1.195 nats per character (measured); expect 4 to 10
# minutes on a laptop CPU. The progress bar shows the latest training and validation losses. (In
# quick mode: a 2-layer, 48-wide model for 200 steps.)

# %%
model_config = EncoderConfig(
    vocab_size=tokenizer.vocab_size, block_size=128, n_layer=3, n_head=4, d_model=128,
    d_ff=512, dropout=0.0,
)
train_config = TrainConfig(
    max_iters=3000, batch_size=16, learning_rate=3e-3, min_lr=3e-4, warmup_iters=100,
    eval_interval=250,
)
if QUICK:
    model_config = replace(model_config, block_size=32, n_layer=2, d_model=48, d_ff=192)
    train_config = replace(train_config, max_iters=200, learning_rate=6e-3, min_lr=6e-4,
                           warmup_iters=20, eval_interval=50)
torch.manual_seed(0)
model = CausalLM(model_config)
print(f"{model.count_parameters():,} parameters; {train_config.max_iters} steps")

# %%
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
history = train(model, train_data, val_data, train_config)
training_seconds = time.perf_counter() - start
print(f"trained in {training_seconds:.0f} s")

# %%
for step, val_loss in zip(history["eval_steps"], history["val_loss"], strict=True):
    print(f"step {step:5d}: validation loss {val_loss:.3f} nats, "
          f"{bits_per_char(val_loss):.3f} bits per character, perplexity {perplexity(val_loss):.2f}")

# %% [markdown]
# **Loss curves.** The training loss of single batches is noisy: the plot smooths it with a
# running mean. Validation points are exact evaluations of the whole validation split. While
# the two curves run together, the model is not overfitting; a gap that opens and grows means
# it memorises the training text.

# %%
def running_mean(values: list[float], width: int) -> list[float]:
    """Mean of each value and the width - 1 before it (fewer at the start)."""
    sums = [0.0]
    for value in values:
        sums.append(sums[-1] + value)
    return [(sums[i + 1] - sums[max(0, i + 1 - width)]) / min(i + 1, width) for i in range(len(values))]


fig, ax = plt.subplots(figsize=(7, 4))
steps = range(1, len(history["train_loss"]) + 1)
ax.plot(steps, history["train_loss"], color="tab:blue", alpha=0.25, label="training batch")
ax.plot(steps, running_mean(history["train_loss"], 50), color="tab:blue", label="training (mean of 50)")
ax.plot(history["eval_steps"], history["val_loss"], "o-", color="tab:orange", label="validation")
ax.axhline(math.log(tokenizer.vocab_size), color="grey", linestyle=":", label="uniform, ln V")
ax.set(xlabel="step", ylabel="loss (nats per character)", title="training a character-level LM")
ax.legend()
plt.show()

# %% nbgrader={"grade_id": "q3_train", "grade": true, "locked": true}
grader.check("q3_train")

# %% [markdown]
# ## 6. Checkpoints
#
# Training is expensive; a checkpoint keeps its result. Save **both** the configuration and the
# weights: a `state_dict` alone cannot rebuild the model, because it does not say how many
# layers or how wide. Store the configuration as a plain dict (`dataclasses.asdict`), so the
# file can be opened with `torch.load(path, weights_only=True)`, which refuses to run code
# hidden in a file (a plain `torch.load` of an untrusted file can execute anything).
#
# **Tasks.**
# - `save_checkpoint(path, model)`: `torch.save` a dict with keys `"config"` (the model's
#   `EncoderConfig` as a dict) and `"state_dict"` (its `state_dict()`).
# - `load_checkpoint(path)`: load it with `weights_only=True`, rebuild
#   `CausalLM(EncoderConfig(**config))`, load the weights, and return the model in `eval()` mode.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "checkpoint", "solution": true}
def save_checkpoint(path: str, model: CausalLM) -> None:
    ### BEGIN SOLUTION
    torch.save({"config": asdict(model.config), "state_dict": model.state_dict()}, path)
    ### END SOLUTION


def load_checkpoint(path: str) -> CausalLM:
    ### BEGIN SOLUTION
    checkpoint = torch.load(path, weights_only=True)
    model = CausalLM(EncoderConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()
    ### END SOLUTION


# %%
save_checkpoint("char_lm.pt", model)
restored = load_checkpoint("char_lm.pt")
print(f"char_lm.pt: {os.path.getsize('char_lm.pt') / 1e6:.1f} MB")
print(f"validation loss, trained model {evaluate(model, val_data):.4f}, "
      f"reloaded {evaluate(restored, val_data):.4f}")

# %% nbgrader={"grade_id": "q3_checkpoint", "grade": true, "locked": true}
grader.check("q3_checkpoint")

# %% [markdown]
# ## 7. Sampling: temperature and top-k
#
# To write, the model repeatedly predicts a distribution for the next character, draws one,
# appends it and feeds the sequence back in. Two knobs shape the draw, applied to the
# last position's logits $z$ (a row of `V` numbers):
#
# - **temperature** $\tau > 0$: sample from $\operatorname{softmax}(z / \tau)$. $\tau < 1$
#   sharpens the distribution (safer, more repetitive text), $\tau > 1$ flattens it (more
#   surprising, more errors); $\tau \to 0$ is greedy decoding (always the argmax).
# - **top-k**: keep only the `k` largest logits and set the rest to $-\infty$ before the
#   softmax, so the model never picks one of its many unlikely characters.
#
# **Tasks.**
# - `sample_next_token(logits, temperature=1.0, top_k=None, generator=None)`: `logits` is
#   `(B, V)`; divide by the temperature, filter to the top `k` per row when `top_k` is given
#   (`torch.topk` gives the k-th largest value of each row), and draw one id per row with
#   `torch.multinomial(probs, 1, generator=generator)`. Returns `(B, 1)` ids.
# - `generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, generator=None)`:
#   starting from ids `idx` `(B, T)`, append `max_new_tokens` samples and return
#   `(B, T + max_new_tokens)`. Feed the model at most its last `model.config.block_size` ids
#   (it has no positions beyond), use only the logits of the last position, and run in
#   `eval()` mode without gradients.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "sampling", "solution": true}
def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One id per row of logits (B, V), sampled with temperature and top-k: shape (B, 1)."""
    ### BEGIN SOLUTION
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)
    ### END SOLUTION


def generate(
    model: CausalLM,
    idx: Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend ids (B, T) by max_new_tokens samples: (B, T + max_new_tokens)."""
    ### BEGIN SOLUTION
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(idx[:, -model.config.block_size :])
            next_id = sample_next_token(logits[:, -1, :], temperature, top_k, generator)
            idx = torch.cat([idx, next_id], dim=1)
    return idx
    ### END SOLUTION


# %%
prompt = tokenizer.encode("The for statement").unsqueeze(0)
for temperature, top_k in [(1.0, None), (0.8, 10), (0.3, None), (1.5, None)]:
    out = generate(model, prompt, 120, temperature, top_k, torch.Generator().manual_seed(1))
    print(f"--- temperature {temperature}, top-k {top_k}\n{tokenizer.decode(out[0])}\n")

# %% nbgrader={"grade_id": "q3_sampling", "grade": true, "locked": true}
grader.check("q3_sampling")

# %% [markdown]
# ### Question 7.1 — temperature and top-k
#
# (a) Describe how the four samples above differ. (b) Show that sampling at temperature
# $\tau$ from $\operatorname{softmax}(z)$ is the same as sampling from $p_i^{1/\tau} / \sum_j
# p_j^{1/\tau}$ where $p = \operatorname{softmax}(z)$, and use it to say what $\tau \to 0$ and
# $\tau \to \infty$ give. (c) Why does top-k help at temperature 1 even though the model
# assigns the dropped characters little probability?

# %% [markdown] nbgrader={"grade_id": "q3_temperature", "solution": true, "grade": true, "points": 2}
# **Answer 7.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) At low temperature the text is the most regular (common words, often
# repeated phrases, sometimes a loop); at 1.5 it falls apart into misspellings and odd
# punctuation; temperature 0.8 with top-10 reads most like the corpus. (b) $p_i = e^{z_i}/Z$, so
# $p_i^{1/\tau} = e^{z_i/\tau} / Z^{1/\tau}$; the constant $Z^{1/\tau}$ cancels in the
# normalisation, leaving $\operatorname{softmax}(z/\tau)_i$. As $\tau \to 0$ the largest $p_i$
# dominates every power: all mass goes to the argmax (greedy decoding). As $\tau \to \infty$
# every $p_i^{1/\tau} \to 1$: the uniform distribution, whatever the model learned. (c) The
# tail is long: with about 100 characters, each individually unlikely one still adds up to a
# noticeable total, e.g. 70 characters at 0.1% each is a 7% chance per step of a bad pick,
# nearly certain over a few hundred characters. One such error is then fed back as context and
# derails what follows. Top-k cuts the tail while leaving the ranking among plausible
# characters to the model.
#
# **Rubric (2 points).** ½: (a) a correct description of low versus high temperature.
# 1: (b) the cancellation of the normaliser (½) and both limits, greedy and uniform (½).
# ½: (c) the tail's total probability is not small, and errors compound because samples are
# fed back.
# ### END SOLUTION

# %% [markdown]
# ## 8. The baseline: counting n-grams
#
# Is the transformer any good? A model that only *counts* answers that: an n-gram model
# predicts the next character from the previous $n - 1$ by counting, in the training text, what
# followed each context, and backs off to shorter contexts when a context is rare (Witten-Bell
# smoothing). It trains in a second, and with enough data it is hard to beat. A transformer
# must beat it to show it learned more than local statistics. `NGramModel` (from
# `tfcourse.ngram`) is given; it is evaluated on the same validation split, in the same units.

# %%
# NBVAL_IGNORE_OUTPUT
ngram_loss = {}
for order in range(1, 6):
    start = time.perf_counter()
    counts = NGramModel(order, tokenizer.vocab_size).fit(train_data)
    ngram_loss[order] = counts.nats_per_token(val_data)
    print(f"{order}-gram: {ngram_loss[order]:.3f} nats per character "
          f"({time.perf_counter() - start:.1f} s to fit and evaluate)")

# %%
transformer_loss = evaluate(model, val_data)
print(f"{'model':<26}{'nats/char':>10}{'bits/char':>10}{'perplexity':>11}")
rows = [(f"{order}-gram counts", loss) for order, loss in ngram_loss.items()]
rows.append((f"transformer ({model.count_parameters() / 1e6:.2f}M)", transformer_loss))
for label, loss in rows:
    print(f"{label:<26}{loss:>10.3f}{bits_per_char(loss):>10.3f}{perplexity(loss):>11.2f}")

# %% [markdown]
# In full mode, the transformer trained for a few minutes beats every n-gram model (a full-mode
# run on the kit's machine measured 1.195 nats per character against the 5-gram's 1.320); in the quick
# mode that grades your notebook it trains far too briefly to. The 5-gram model can also
# write; its text is locally plausible but wanders, as it sees four characters only:

# %%
five_gram = NGramModel(5, tokenizer.vocab_size).fit(train_data)
out = five_gram.generate(tokenizer.encode("The for statement"), 120, torch.Generator().manual_seed(1))
print(tokenizer.decode(out))

# %% [markdown]
# ## 9. A sweep of ten models
#
# Which settings matter? A sweep trains several models that differ in one or two settings,
# here **depth** (`n_layer`), **width** (`d_model`), **heads**, **context** (`block_size`),
# **learning rate** and **dropout**, and compares their validation losses. To compare fairly,
# every model sees the same data for the same number of steps with the same batch size.
#
# **Task 1.** `sweep_points(vocab_size, base_model, base_train)` returns a list of at least ten
# `(name, EncoderConfig, TrainConfig)` triples with distinct names. Start from the base
# configurations given and vary each of `n_layer`, `d_model`, `n_head`, `block_size`,
# `learning_rate` (in the `TrainConfig`) and `dropout` in at least one point (use
# `dataclasses.replace(config, field=value)`); keep `d_ff = 4 * d_model` and `d_model`
# divisible by `n_head`. Keep the models small: the sweep is sized for a few minutes.
#
# **Task 2.** `run_sweep(points, train_data, val_data)` trains a fresh model per point (call
# `torch.manual_seed(train_config.seed)` before building it, so the sweep repeats exactly) with
# your `train`, and returns one dict per point, in order, with the keys `"name"`,
# `"n_layer"`, `"d_model"`, `"n_head"`, `"block_size"`, `"learning_rate"`, `"dropout"`,
# `"parameters"` (`model.count_parameters()`), `"val_loss"` (the last validation loss of the
# history) and `"seconds"` (the wall time of its training, `time.perf_counter()`).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "sweep", "solution": true}
SWEEP_COLUMNS = ["name", "n_layer", "d_model", "n_head", "block_size", "learning_rate",
                 "dropout", "parameters", "val_loss", "seconds"]


def sweep_points(
    vocab_size: int, base_model: EncoderConfig, base_train: TrainConfig
) -> list[tuple[str, EncoderConfig, TrainConfig]]:
    """At least ten (name, model config, train config) triples varying the six settings."""
    ### BEGIN SOLUTION
    def width(d_model: int) -> EncoderConfig:
        return replace(base_model, d_model=d_model, d_ff=4 * d_model)

    return [
        ("base", base_model, base_train),
        ("1 layer", replace(base_model, n_layer=1), base_train),
        ("3 layers", replace(base_model, n_layer=3), base_train),
        ("narrow", width(base_model.d_model // 2), base_train),
        ("wide", width(base_model.d_model * 2), base_train),
        ("1 head", replace(base_model, n_head=1), base_train),
        ("short context", replace(base_model, block_size=base_model.block_size // 2), base_train),
        ("lr / 3", base_model, replace(base_train, learning_rate=base_train.learning_rate / 3,
                                       min_lr=base_train.min_lr / 3)),
        ("lr x 3", base_model, replace(base_train, learning_rate=base_train.learning_rate * 3,
                                       min_lr=base_train.min_lr * 3)),
        ("dropout 0.2", replace(base_model, dropout=0.2), base_train),
    ]
    ### END SOLUTION


def run_sweep(
    points: list[tuple[str, EncoderConfig, TrainConfig]], train_data: Tensor, val_data: Tensor
) -> list[dict]:
    """Train one model per point; one row (a dict with SWEEP_COLUMNS) each, in order."""
    ### BEGIN SOLUTION
    rows = []
    for name, model_config, train_config in points:
        torch.manual_seed(train_config.seed)  # the same initial weights on every run
        model = CausalLM(model_config)
        start = time.perf_counter()
        history = train(model, train_data, val_data, train_config)
        rows.append({
            "name": name,
            "n_layer": model_config.n_layer,
            "d_model": model_config.d_model,
            "n_head": model_config.n_head,
            "block_size": model_config.block_size,
            "learning_rate": train_config.learning_rate,
            "dropout": model_config.dropout,
            "parameters": model.count_parameters(),
            "val_loss": history["val_loss"][-1],
            "seconds": time.perf_counter() - start,
        })
    return rows
    ### END SOLUTION


# %% [markdown]
# The base of the sweep is a 2-layer, 64-wide model on 32-character windows, trained for
# 400 steps: each model takes seconds to a minute (quick mode: 20 steps of a smaller one,
# validated on the first 5,000 characters of the validation split).

# %%
sweep_model = EncoderConfig(vocab_size=tokenizer.vocab_size, block_size=32, n_layer=2, n_head=4,
                            d_model=64, d_ff=256, dropout=0.0)
sweep_train = TrainConfig(max_iters=400, batch_size=16, learning_rate=3e-3, min_lr=3e-4,
                          warmup_iters=40, eval_interval=400)
if QUICK:
    sweep_model = replace(sweep_model, d_model=32, d_ff=128, block_size=16)
    sweep_train = replace(sweep_train, max_iters=20, warmup_iters=5, eval_interval=20)
sweep_val_data = val_data[:5_000] if QUICK else val_data
points = sweep_points(tokenizer.vocab_size, sweep_model, sweep_train)
print(len(points), "models:", ", ".join(name for name, _, _ in points))

# %%
# NBVAL_IGNORE_OUTPUT
results = run_sweep(points, train_data, sweep_val_data)
print(f"{'name':<16}{'layers':>7}{'width':>6}{'heads':>6}{'context':>8}{'lr':>8}{'dropout':>8}"
      f"{'params':>9}{'val loss':>9}{'seconds':>8}")
for row in sorted(results, key=lambda row: row["val_loss"]):
    print(f"{row['name']:<16}{row['n_layer']:>7}{row['d_model']:>6}{row['n_head']:>6}"
          f"{row['block_size']:>8}{row['learning_rate']:>8.0e}{row['dropout']:>8}"
          f"{row['parameters']:>9,}{row['val_loss']:>9.3f}{row['seconds']:>8.1f}")

# %% [markdown]
# Two views of the same table. Against **parameters**, bigger models tend to do better at a
# fixed number of steps; against **time**, what counts is the loss a model reaches for the
# compute it costs, and the best models sit at the lower left (the *Pareto front*).

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
for ax, key, label in [(axes[0], "parameters", "parameters"), (axes[1], "seconds", "training time (s)")]:
    ax.scatter([row[key] for row in results], [row["val_loss"] for row in results])
    for row in results:
        ax.annotate(row["name"], (row[key], row["val_loss"]), fontsize=8,
                    xytext=(3, 3), textcoords="offset points")
    ax.set(xscale="log", xlabel=label)
axes[0].set(ylabel="validation loss (nats per character)")
fig.suptitle("the sweep: validation loss against size and against time")
fig.tight_layout()
plt.show()

# %% nbgrader={"grade_id": "q3_sweep", "grade": true, "locked": true}
grader.check("q3_sweep")

# %% [markdown]
# ### Question 9.1 — reading the sweep
#
# Answer from your full-mode results (run the notebook top to bottom without the quick mode).
# (a) Which change helped most and which hurt most, compared with `base`? Give the numbers.
# (b) Dropout is a standard regulariser, yet in the sweep it probably did not help: why, judging
# by how much of the training text each sweep model sees? Would it help Section 5's model,
# judging by its loss curves? (c) If you had ten times the time, would you rather train the best
# model ten times longer or a model ten times bigger for the same steps? Argue from the
# loss-versus-time plot.

# %% [markdown] nbgrader={"grade_id": "q3_sweep_reading", "solution": true, "grade": true, "points": 2}
# **Answer 9.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) Read from the student's own table, which differs from run to run: the
# point with the lowest validation loss and the one with the highest, each with its loss and
# its difference from `base` in nats. The directions are not always the expected ones: at a
# fixed 400 steps a smaller model (one layer, say) can beat `base`, and a larger learning
# rate can do worse, so the answer must come from the table, not from what a bigger model or
# a faster rate should do. A reason for each (too few steps for a bigger model, a learning
# rate too small to converge or too large to settle) is welcome but not required. (b) Dropout
# fights overfitting, and a sweep model cannot overfit: it sees about half an epoch (400 steps
# of 16 windows of 32 characters, 204,800 characters against about 419,000 training
# characters, so each character about 0.49 times), so every batch is mostly new text and its
# training loss measures what validation measures. Dropout then only adds noise and slows
# learning (the `dropout 0.2` point is behind `base`). Section 5's model is another matter:
# after about 14.7 epochs (3,000 steps of 16 × 128 characters) its curves part from about
# step 1,000; the training loss keeps falling (to about 0.9) while the validation loss
# flattens near 1.19 from about step 2,250 and creeps up at the end: it memorises the
# training text. A regulariser such as dropout (or fewer steps, or more text) could help it,
# at some cost per step. (c) The
# plot shows that at a fixed budget the loss is set by compute spent well: a larger model can
# be better per step but costs more per step. With ten times the time, a moderately larger
# model trained longer (both, balanced, as the compute-optimal scaling results of Hoffmann et
# al. 2022 suggest) beats either extreme; an answer that picks one side with a reason from the
# plot (e.g. the loss curve still falling → train longer) is fine.
#
# **Rubric (2 points).** ½: (a) names the best and worst changes with their numbers, as the
# student's own table shows them (whatever the directions); no credit for a ranking or
# numbers the table contradicts. 1: (b) ½ for the sweep: about half an epoch per model, so
# no overfitting for dropout to fight, and its noise slows training; ½ for Section 5: the
# curves part (training below validation, validation flat or rising at the end), the sign
# of overfitting, so a regulariser could help there. ½: (c) an
# argument from the time axis (compute per step versus loss per step, or balance of size and
# steps).
# ### END SOLUTION

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check that
# every `grader.check` shows the points you expect, and save the notebook. The file
# `char_lm.pt` holds your trained model: load it with `load_checkpoint` to sample more text.
# Then run the cell below: it checks the saved notebook and says what is still missing.
