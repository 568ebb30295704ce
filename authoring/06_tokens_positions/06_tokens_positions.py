# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 6 — Subword tokens and rotary positions
#
# So far every model read one character at a time and learned one vector per position. Real
# language models do neither: they read **subword tokens** learned from the data by
# byte-pair encoding, and many of them encode positions by **rotating** queries and keys
# (RoPE) instead of adding a position vector. This notebook builds both, and then looks
# inside a trained model at what its attention heads do.
#
# **You will learn to**
# 1. train a byte-level byte-pair encoding (BPE) tokenizer on a corpus, and encode and decode
#    any UTF-8 text with it, exactly;
# 2. measure what a larger vocabulary buys (characters per token, sequence length) and
#    compare models with different tokenizers fairly, in bits per *character*;
# 3. rotate queries and keys by their positions (RoPE), check that attention scores then
#    depend only on the distance between positions, and use it with a key/value cache;
# 4. compare learned, sinusoidal and rotary positions on one small model, inside and past
#    the length it was trained on;
# 5. read the attention maps of a trained model and name the patterns of its heads.
#
# **Prerequisites**: notebooks 1 and 2 (attention, masks, heads, sinusoidal and learned
# positions), notebook 3 (windows, loss, bits per character), notebook 5's key/value cache
# (the idea only: you write what you need here again).
#
# **Time**: about 2 to 2½ hours of work. Run top to bottom, the notebook takes about 2½
# minutes on a laptop CPU, most of it training seven small models (progress bars show them);
# no cell takes more than about half a minute. When it is graded it runs in a quick mode
# with smaller sizes and a slice of a smaller corpus (see `QUICK` below); leave the sizes
# alone.
#
# **How to work**: fill in each `# YOUR CODE HERE` and delete the `raise NotImplementedError()`
# line below it. Run the `grader.check(...)` cell after each task: it runs the public tests and
# says, for each one, what was expected and what came back. Hidden tests with more cases run
# when your notebook is graded. Answer the written questions in the cells marked
# `YOUR ANSWER HERE`; they are graded by hand.
#
# **How to check and submit**: the first code cell sets the notebook up in Colab (it installs
# the course helpers and this notebook's tests; in JupyterLab it does nothing). When you are
# done, restart the kernel and run all cells, save, and read the report of the last cell: it
# lists any answer still missing, any cell that raised or did not run, and any check short of
# its public points. Then hand in the saved `.ipynb` file as your course asks.
#
# **Conventions** (those of notebooks 1 and 5): tensors are batch first; token ids are Python
# `int`s in lists (Section 1) or `torch.long` tensors `(B, T)` (Sections 2 and 3); attention
# tensors are `(B, H, T, D)` with `D` the size of a head. PyTorch's
# `F.scaled_dot_product_attention` reads a boolean mask as `True` = *may attend*.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from tfcourse.checking import Grader
from tfcourse.corpora import CorpusUnavailable, load_corpus
from tfcourse.plotting import plot_attention
from tfcourse.runmode import quick_mode
from tfcourse.vocab import split_words

# QUICK is the notebook's one size switch. It is on while the notebook is graded (nbgrader,
# Gradescope) or run by the kit's checks: sizes then shrink so that the notebook runs in
# seconds. Leave it alone; your own runs use the full sizes.
QUICK = quick_mode()

torch.manual_seed(0)
# One thread: timings are steadier and every run repeats exactly.
torch.set_num_threads(1)
grader = Grader("tests")
print("quick mode (graded sizes)" if QUICK else "full mode")

# %% [markdown]
# ## 1. Byte-pair encoding
#
# A character tokenizer has a small vocabulary but long sequences: a model must spend a
# position, and attention cost, on every letter. A word tokenizer has short sequences but
# cannot spell a word it never saw. **Byte-pair encoding** (BPE) sits in between and learns
# where: start from single symbols, and repeatedly **merge the most frequent adjacent pair**
# into a new symbol. Frequent words end up as one token, rare ones are spelled in pieces.
#
# We work on **bytes**: every text is first written as its UTF-8 bytes, so the 256 byte
# values are the starting vocabulary (ids 0–255) and *any* text can be encoded, including
# characters never seen in training (an emoji is four bytes, an accented letter two).
# Merge number $i$ creates the new id $256 + i$.
#
# Merges never cross word boundaries: `split_words` (from the course package, GPT-2's rule)
# cuts the text into pieces, a word with the space before it, a number, a run of
# punctuation, a run of spaces, and BPE merges within each piece. This keeps tokens
# meaningful (no token `"e t"`) and makes training fast: the corpus becomes a table of
# distinct pieces and their counts.
#
# The corpus is tiny Shakespeare (about 1.1 million characters, downloaded once). In quick
# mode the notebook uses the first 200,000 characters of the Python documentation that ships
# with Python instead, and offline all of it.

# %%
try:
    corpus = load_corpus("pydoc" if QUICK else "shakespeare")
except CorpusUnavailable as error:
    print(f"tiny Shakespeare is not available ({error}); using the Python documentation")
    corpus = load_corpus("pydoc")
text = corpus.text[:200_000] if QUICK else corpus.text
train_text, val_text = text[: int(0.9 * len(text))], text[int(0.9 * len(text)) :]
word_counts = Counter(split_words(train_text))
print(f"{corpus.name}: {len(text):,} characters ({len(train_text):,} for training), "
      f"{len(word_counts):,} distinct pieces")
print(split_words(train_text[:80]))
print("UTF-8 bytes of 'né 🙂':", list("né 🙂".encode()))

# %% [markdown]
# **Task 1.1.** `merge(ids, pair, new_id)` returns a new list: `ids` (a list of `int`s)
# with every occurrence of `pair` (a tuple of two ids) replaced by `new_id`, scanning from
# left to right; occurrences do not overlap, so `merge([5, 5, 5], (5, 5), 9)` is
# `[9, 5]`. The input list is left unchanged.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls it scores 0
# on this question.

# %% nbgrader={"grade_id": "bpe_merge", "solution": true}
def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """ids with every occurrence of pair (left to right, no overlap) replaced by new_id."""
    ### BEGIN SOLUTION
    out = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out
    ### END SOLUTION


# %%
print(merge([1, 2, 3, 1, 2], (1, 2), 256), merge([5, 5, 5], (5, 5), 9))

# %% nbgrader={"grade_id": "q6_bpe_merge", "grade": true, "locked": true}
grader.check("q6_bpe_merge")

# %% [markdown]
# **Task 1.2.** `train_bpe(word_counts, num_merges)` learns merges from `word_counts`, a
# dict from pieces (`str`) to how often they occur, and returns them as a list of pairs
# `[(a, b), ...]`; `merges[i]` created the id `256 + i`.
# - Each piece starts as the list of its UTF-8 bytes. The **count of a pair** is the number
#   of times it occurs adjacent in the pieces, each piece weighted by its count (a pair
#   twice in a piece seen 10 times counts 20; `(5, 5)` occurs twice in `[5, 5, 5]`).
# - At each step merge the pair with the **highest count**; among pairs with the same count,
#   the **smallest pair** (compare `a` first, then `b`, as Python compares tuples). Replace it
#   in every piece (your `merge`), record it, and continue with the new counts.
# - Stop after `num_merges` merges, or earlier when no piece has two tokens left.
#
# Recounting every pair of every piece after each merge is correct, but slow for a few
# thousand merges. Only pieces that hold the merged pair change: keep the counts in a dict
# and, for each changed piece, subtract the counts of its old pairs and add those of its new
# ones (a dict from each pair to the set of pieces that hold it finds them quickly). Full mode
# trains 1,792 merges on about 14,000 distinct pieces; with incremental counts that takes a
# few seconds. Finding the largest count with `max` over all pairs at every step is fine.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls it scores 0
# on this question.

# %% nbgrader={"grade_id": "bpe_train", "solution": true}
def train_bpe(word_counts: dict[str, int], num_merges: int) -> list[tuple[int, int]]:
    """The merges learned from pieces and their counts, in the order they were made."""
    ### BEGIN SOLUTION
    words = [list(word.encode()) for word in word_counts]
    counts = list(word_counts.values())
    pair_counts = Counter()
    holders = {}  # pair -> indices of the pieces that may hold it
    for index, ids in enumerate(words):
        for pair in pairwise(ids):
            pair_counts[pair] += counts[index]
            holders.setdefault(pair, set()).add(index)
    merges = []
    while len(merges) < num_merges and pair_counts:
        best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))
        new_id = 256 + len(merges)
        merges.append(best)
        for index in holders.pop(best):
            old = words[index]
            new = merge(old, best, new_id)
            if len(new) == len(old):
                continue
            for pair in pairwise(old):
                pair_counts[pair] -= counts[index]
                if pair_counts[pair] == 0:
                    del pair_counts[pair]
            for pair in pairwise(new):
                pair_counts[pair] += counts[index]
                holders.setdefault(pair, set()).add(index)
            words[index] = new
    return merges
    ### END SOLUTION


# %%
toy = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
print("toy merges:", train_bpe(toy, 4))

# %% nbgrader={"grade_id": "q6_bpe_train", "grade": true, "locked": true}
grader.check("q6_bpe_train")

# %% [markdown]
# **Task 1.3.** Encoding and decoding.
# - `encode(text, merges)` returns the token ids (a list of `int`s) of `text`: split it with
#   `split_words`, write each piece as its UTF-8 bytes, and apply the merges **in the order
#   they were learned** (merge 0 first, then merge 1, …), piece by piece. A piece that occurs
#   many times is encoded many times: keep a dict of pieces already encoded.
# - `decode(ids, merges)` returns the text: the bytes each id stands for (`bytes([b])` for
#   ids below 256, the bytes of `a` followed by those of `b` for the id of merge `(a, b)`),
#   joined and decoded with `.decode("utf-8", errors="replace")`. A list of ids that cuts a
#   character's bytes apart is not valid UTF-8; the replacement character `�` marks it.
#
# `decode(encode(text, merges), merges) == text` must hold for every text, with characters
# never seen in training too.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls it scores 0
# on this question.

# %% nbgrader={"grade_id": "bpe_codec", "solution": true}
def encode(text: str, merges: Sequence[tuple[int, int]]) -> list[int]:
    """The token ids of text."""
    ### BEGIN SOLUTION
    ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}
    encoded = {}
    ids = []
    for word in split_words(text):
        if word not in encoded:
            tokens = list(word.encode())
            # Merging the pair of lowest rank first applies the merges in the order learned.
            while len(tokens) > 1:
                pair = min(pairwise(tokens), key=lambda p: ranks.get(p, len(ranks)))
                if pair not in ranks:
                    break
                tokens = merge(tokens, pair, 256 + ranks[pair])
            encoded[word] = tokens
        ids.extend(encoded[word])
    return ids
    ### END SOLUTION


def decode(ids: Sequence[int], merges: Sequence[tuple[int, int]]) -> str:
    """The text of token ids."""
    ### BEGIN SOLUTION
    vocab = [bytes([byte]) for byte in range(256)]
    for a, b in merges:
        vocab.append(vocab[a] + vocab[b])
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION


# %% [markdown]
# Train the largest tokenizer once: the first $k$ merges of a longer training are exactly
# what training with $k$ merges gives, so every smaller vocabulary is a prefix of this list.

# %%
# NBVAL_IGNORE_OUTPUT
vocab_sizes = [256, 288, 320, 384] if QUICK else [256, 512, 1024, 2048]
all_merges = train_bpe(word_counts, vocab_sizes[-1] - 256)
vocab = [bytes([byte]) for byte in range(256)]
for a, b in all_merges:
    vocab.append(vocab[a] + vocab[b])
print(f"{len(all_merges)} merges; the first 12:", [vocab[256 + i] for i in range(12)])
print("the last 6:", [vocab[-6 + i] for i in range(6)])
sample = "To be, or not to be: naïve café 🙂 ∮ E⋅da = Q"
ids = encode(sample, all_merges)
print(f"{len(sample)} characters -> {len(ids)} tokens:", [vocab[i] for i in ids])
print("round trip exact:", decode(ids, all_merges) == sample)
print("cut inside the emoji:", repr(decode(ids[:-6], all_merges)))

# %% nbgrader={"grade_id": "q6_bpe_codec", "grade": true, "locked": true}
grader.check("q6_bpe_codec")

# %% [markdown]
# ### What a larger vocabulary buys
#
# For each vocabulary size we encode the validation text (the last tenth), count characters
# per token, and train the same small transformer (below) on the training text's tokens:
# 2 layers, 64 wide, windows of 64 **tokens**, 300 steps of 16 windows each (in quick mode
# 30 steps on the slice). The model then sees more text per window when tokens are longer.
#
# Comparing the models by loss per token would be unfair, since a token is a different amount
# of text for each: we compare **bits per character**, the total loss over the validation
# text (in nats, summed over its tokens) divided by its number of characters and by $\ln 2$.
#
# The model is given: `PosLM` is a pre-norm transformer language model whose positions are
# `"learned"` (a table of `block_size` vectors, as in notebook 2), `"sinusoidal"` (notebook
# 2's fixed encoding, with cosine and sine side by side in each pair of features) or
# `"rotary"` (Section 2: it calls your `rotary_self_attention`, so it runs once you have
# written it). `train_lm` trains it on random windows with AdamW;
# `window_losses` returns the loss of every position of non-overlapping windows.

# %%
@dataclass(frozen=True)
class PosConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64
    positions: str = "learned"  # "learned", "sinusoidal" or "rotary"


def sinusoidal_table(length: int, d_model: int) -> Tensor:
    """Fixed positions (length, d_model): each feature pair holds the cosine and sine of
    position × 10000^(-2i/d_model), the unit complex number of that angle."""
    inverse = 10000.0 ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    angles = torch.arange(length, dtype=torch.float64)[:, None] * inverse
    return torch.view_as_real(torch.polar(torch.ones_like(angles), angles)).flatten(1).float()


class Block(nn.Module):
    def __init__(self, config: PosConfig) -> None:
        super().__init__()
        d = config.d_model
        self.rotary = config.positions == "rotary"
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, config.n_head, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, cache=None):
        h = self.ln1(x)
        if self.rotary:
            a, cache = rotary_self_attention(self.attn, h, cache)
        else:
            blocked = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)
            a = self.attn(h, h, h, attn_mask=blocked, need_weights=False)[0]
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


class PosLM(nn.Module):
    def __init__(self, config: PosConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        if config.positions == "learned":
            self.pos = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, idx, cache=None, use_cache=False):
        """Logits (B, T_new, V) of ids (B, T_new) that follow the cached positions; with
        use_cache (rotary only), also the extended cache, one (keys, values) per layer."""
        past = 0 if cache is None else cache[0][0].size(2)
        x = self.tok(idx)
        positions = torch.arange(past, past + idx.size(1), device=idx.device)
        if self.config.positions == "learned":
            x = x + self.pos(positions)  # fails past block_size: there is no vector there
        elif self.config.positions == "sinusoidal":
            x = x + sinusoidal_table(past + idx.size(1), self.config.d_model)[past:].to(x)
        new_cache = []
        for index, block in enumerate(self.blocks):
            x, layer_cache = block(x, None if cache is None else cache[index])
            new_cache.append(layer_cache)
        return self.head(self.ln(x)), new_cache if use_cache else None


def train_lm(model: PosLM, data: Tensor, steps: int, batch_size: int = 16, lr: float = 3e-3,
             label: str = "") -> list[float]:
    """AdamW on random windows of block_size tokens of data (1-d ids); the training losses."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    length, losses = model.config.block_size, []
    model.train()
    for _ in (bar := tqdm(range(steps), desc=label, unit="step", leave=False)):
        starts = torch.randint(len(data) - length - 1, (batch_size, 1))
        window = data[starts + torch.arange(length + 1)]
        logits, _ = model(window[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{loss.item():.2f}")
    model.eval()
    return losses


def window_losses(model: PosLM, data: Tensor, length: int, max_windows: int | None = None) -> Tensor:
    """Loss (nats) of every position of consecutive windows of `length` tokens of data:
    (windows, length), each window's first token predicted from nothing but itself."""
    windows = (len(data) - 1) // length
    if max_windows is not None:
        windows = min(windows, max_windows)
    inputs = data[: windows * length].view(windows, length)
    targets = data[1 : windows * length + 1].view(windows, length)
    losses = []
    with torch.no_grad():
        for batch in range(0, windows, 64):
            logits, _ = model(inputs[batch : batch + 64])
            losses.append(F.cross_entropy(logits.transpose(1, 2), targets[batch : batch + 64],
                                          reduction="none"))
    return torch.cat(losses)


# %%
sweep_steps = 30 if QUICK else 300
rows = []


def sweep_row(size: int) -> dict:
    """Train a PosLM on the first size - 256 merges' tokens; its validation figures."""
    merges = all_merges[: size - 256]
    train_ids = torch.tensor(encode(train_text, merges))
    val_ids = torch.tensor(encode(val_text, merges))
    torch.manual_seed(0)
    model = PosLM(PosConfig(vocab_size=size))
    train_lm(model, train_ids, sweep_steps, label=f"vocabulary {size}")
    losses = window_losses(model, val_ids, model.config.block_size)
    covered = len(decode(val_ids[: losses.numel() + 1].tolist(), merges))  # characters scored
    return {
        "vocabulary": size,
        "chars/token": len(val_text) / len(val_ids),
        "val tokens": len(val_ids),
        "nats/token": losses.mean().item(),
        "bits/char": losses.sum().item() / covered / math.log(2),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


# %% [markdown]
# One model per cell, from the smallest vocabulary to the largest (about 10 to 20 seconds
# each).

# %%
# NBVAL_IGNORE_OUTPUT
rows.append(sweep_row(vocab_sizes[0]))

# %%
# NBVAL_IGNORE_OUTPUT
rows.append(sweep_row(vocab_sizes[1]))

# %%
# NBVAL_IGNORE_OUTPUT
rows.append(sweep_row(vocab_sizes[2]))

# %%
# NBVAL_IGNORE_OUTPUT
rows.append(sweep_row(vocab_sizes[3]))
print(f"{'vocabulary':>10} {'chars/token':>11} {'val tokens':>10} {'nats/token':>10} "
      f"{'bits/char':>9} {'parameters':>10}")
for row in rows:
    print(f"{row['vocabulary']:>10} {row['chars/token']:>11.2f} {row['val tokens']:>10,} "
          f"{row['nats/token']:>10.3f} {row['bits/char']:>9.3f} {row['parameters']:>10,}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
sizes = [row["vocabulary"] for row in rows]
for ax, key, label in zip(
    axes, ("chars/token", "val tokens", "bits/char"),
    ("characters per token", "validation length (tokens)", "validation bits per character"),
    strict=True,
):
    ax.plot(sizes, [row[key] for row in rows], "o-")
    ax.set(xscale="log", xlabel="vocabulary size", ylabel=label)
    ax.set_xticks(sizes, [str(s) for s in sizes])
    ax.minorticks_off()
fig.suptitle(f"byte-level BPE on {corpus.name}: {sweep_steps} training steps per model")
fig.tight_layout()
plt.show()

# %% [markdown] nbgrader={"grade_id": "q6_perplexity_why", "solution": true, "grade": true, "points": 2}
# ### Question 1.1 — why per-token perplexities do not compare
#
# (a) Read your table: how do characters per token, sequence length, loss per token and bits
# per character change with the vocabulary? Which tokenizer gave the best model here? (b) Why
# is the perplexity per token, $e^{\text{nats/token}}$, not comparable across tokenizers,
# and why is bits per character? Give the conversion between the two.
#
# ### BEGIN SOLUTION
# **Model answer.** (a) (Full mode, tiny Shakespeare.) Characters per token grow with the
# vocabulary, quickly at first and then slowly (1.00 at 256, since the text is ASCII, then
# 1.88, 2.26 and 2.56 at 512, 1024 and 2048), so the validation text shrinks from 111,540
# tokens to 43,559 (2.6 times shorter). Loss per token *rises* steeply (2.34 nats at 256 to
# 4.87 at 2048): each token carries more text and there are more choices. Bits per
# character fall: 3.37, 2.90, 2.78, 2.75, so the largest vocabulary gave the best model here,
# with diminishing returns (most of the gain is from 256 to 512). With the same number of
# steps and windows of 64 tokens, a model with longer tokens sees 2.6 times more text per
# step and a window holds 2.6 times more characters of context; the character model is the
# most undertrained. Past some size the gain shrinks: merges become rarer, many tokens are
# seen only a few times, and the embedding and output layers grow (137K to 366K parameters).
# (A student's numbers may differ slightly; the reading must match their table.)
# (b) A per-token loss is the average surprise per *token*, and a token is a different
# amount of text for each tokenizer: a model that predicts whole words is asked a harder
# question per token than one that predicts characters, and it is asked fewer of them. The
# quantity that does not depend on the tokenizer is the probability the model gives to the
# whole text, $\log p(\text{text}) = \sum_i \log p(t_i \mid t_{<i})$ (every tokenizer here
# is lossless and deterministic, so each text has exactly one token sequence); divided by the
# number of characters (or bytes) it gives a rate all tokenizers share. Conversion: bits/char
# = (nats/token) / (chars/token · ln 2), e.g. 4.87 / (2.56 · 0.693) ≈ 2.75 at 2048;
# per-character perplexity = (per-token perplexity)^(1 / chars per token).
#
# **Rubric (2 points).** 1 point: (a) trends that agree with the student's own table
# (chars/token up, sequence length down, nats/token up, bits/char and which size did best)
# (½); a reason for the bits/char ordering (more text per step and per window with longer
# tokens, rare tokens barely trained, larger embeddings and head) or for the rising
# nats/token (a token holds more text) (½). No credit for a ranking the table contradicts.
# 1 point: (b) a token is a different amount of text, so per-token averages measure different
# things (½); the conversion through characters per token, or the log-probability of the whole
# text per character (½).
# ### END SOLUTION

# %% [markdown]
# ## 2. Rotary position embeddings
#
# Notebook 2 *added* a position vector to each token embedding. **Rotary position
# embeddings** (RoPE) instead rotate each query and key by an angle proportional to its
# position, inside every attention layer. Split a vector of even size $D$ into $D/2$ pairs
# $(x_i, x_{i + D/2})$, $i = 0, \dots, D/2 - 1$ (the first half pairs with the second half).
# At position $m$, pair $i$ turns by the angle $m\,\theta_i$ with
# $\theta_i = \text{base}^{-2i/D}$ (base $10000$): fast turns for $i = 0$, very slow ones for
# the last pairs:
#
# $$\begin{pmatrix} y_i \\ y_{i+D/2} \end{pmatrix} =
# \begin{pmatrix} \cos m\theta_i & -\sin m\theta_i \\ \sin m\theta_i & \cos m\theta_i \end{pmatrix}
# \begin{pmatrix} x_i \\ x_{i+D/2} \end{pmatrix}.$$
#
# A rotation $R(m)$ keeps lengths and $R(m)^\top R(n) = R(n - m)$, so the score of query $q$ at
# $m$ with key $k$ at $n$ is $(R(m)q)^\top (R(n)k) = q^\top R(n - m)\,k$: it depends on the
# positions **only through their difference**. Values are not rotated.
#
# **Task 2.1.** `apply_rotary(x, positions, base=10000.0)` returns `x` `(..., T, D)` (any
# leading dimensions, `D` even) rotated as above, with the same shape and dtype; `positions`
# is a `torch.long` tensor `(T,)` giving the position of each of the `T` rows (not
# necessarily starting at 0). Compute the angles $m\,\theta_i$ in `float64` and cast their
# cosines and sines to `x`'s dtype: positions in the thousands times $\theta_0 = 1$ lose
# digits in `float32`.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls it scores 0
# on this question.

# %% nbgrader={"grade_id": "rope", "solution": true}
def apply_rotary(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """x (..., T, D) with the pairs (x_i, x_{i+D/2}) of row t turned by positions[t]·θ_i."""
    ### BEGIN SOLUTION
    half = x.size(-1) // 2
    theta = base ** (-2.0 * torch.arange(half, dtype=torch.float64, device=x.device) / x.size(-1))
    angles = positions.to(device=x.device, dtype=torch.float64)[:, None] * theta  # (T, D/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)
    ### END SOLUTION


# %% [markdown]
# The check below rotates one query and one key to many positions $(m, n)$ and plots the
# score against the offset $m - n$: every pair of positions with the same offset gives the
# same score (to rounding), wherever it sits.

# %%
q_vec, k_vec = torch.randn(1, 16), torch.randn(1, 16)
offsets, scores = [], []
for m in range(0, 40, 3):
    for n in range(0, 40, 5):
        score = apply_rotary(q_vec, torch.tensor([m])) @ apply_rotary(k_vec, torch.tensor([n])).T
        offsets.append(m - n)
        scores.append(score.item())
by_offset = {}
for offset, score in zip(offsets, scores, strict=True):
    by_offset.setdefault(offset, []).append(score)
spread = max(max(s) - min(s) for s in by_offset.values())
print(f"largest spread of the score among pairs with the same offset: {spread:.1e}")
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.plot(offsets, scores, ".")
ax.set(xlabel="offset m - n", ylabel="score q·k after rotation",
       title="RoPE: the score depends only on m - n")
plt.show()

# %% nbgrader={"grade_id": "q6_rope", "grade": true, "locked": true}
grader.check("q6_rope")

# %% [markdown]
# **Task 2.2.** `rotary_self_attention(attn, x, cache=None, base=10000.0)` is causal
# self-attention with the weights of `attn`, an `nn.MultiheadAttention(E, H,
# batch_first=True)` (read `attn.in_proj_weight` `(3E, E)`, `attn.in_proj_bias` `(3E,)` or
# `None`, `attn.out_proj`, `attn.num_heads`), with RoPE and a key/value cache:
# - `x` `(B, T_new, E)` holds the *new* positions; `cache` is `None` or a pair
#   `(keys, values)` of the `T_past` earlier positions, each `(B, H, T_past, D)`,
#   `D = E / H`; the new positions are $T_{past}, \dots, T_{past} + T_{new} - 1$;
# - project `x` to queries, keys and values, split them into `H` heads `(B, H, T_new, D)`,
#   rotate the queries and the keys of each head by their positions with your
#   `apply_rotary` (and `base`), then append the new keys and values after the cached ones:
#   **the cache holds rotated keys**, so they are never rotated again;
# - query $i$ attends to every position up to and including its own, cached ones included;
# - return `(output, (keys, values))`: the output `(B, T_new, E)` after `out_proj`, and the
#   extended cache, each `(B, H, T_past + T_new, D)`.
#
# Feeding a sequence in chunks, each with the cache the previous one returned, must give the
# outputs of the whole sequence at once. You may use `F.scaled_dot_product_attention` (mind
# its mask convention).
#
# **Not allowed here:** `F.multi_head_attention_forward`, `tfcourse_instructor.reference`. A
# solution that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "rotary_attention", "solution": true}
def rotary_self_attention(
    attn: nn.MultiheadAttention,
    x: Tensor,
    cache: tuple[Tensor, Tensor] | None = None,
    base: float = 10000.0,
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Causal self-attention of x (B, T_new, E) with RoPE, over the cache and itself."""
    ### BEGIN SOLUTION
    batch, new, embed_dim = x.shape
    heads = attn.num_heads

    def split(t: Tensor) -> Tensor:
        return t.view(batch, new, heads, embed_dim // heads).transpose(1, 2)

    q, k, v = (split(t) for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
    past = 0 if cache is None else cache[0].size(2)
    positions = torch.arange(past, past + new, device=x.device)
    q, k = apply_rotary(q, positions, base), apply_rotary(k, positions, base)
    if cache is not None:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    # Query i (position past + i) may see keys 0..past + i; PyTorch: True = may attend.
    allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return attn.out_proj(out.transpose(1, 2).reshape(batch, new, embed_dim)), (k, v)
    ### END SOLUTION


# %%
attn = nn.MultiheadAttention(16, 4, batch_first=True)
x = torch.randn(2, 7, 16)
whole, _ = rotary_self_attention(attn, x)
first, cache = rotary_self_attention(attn, x[:, :4])
rest, cache = rotary_self_attention(attn, x[:, 4:], cache)
print("cache:", tuple(cache[0].shape), tuple(cache[1].shape))
print(f"max |difference| of chunks (4 + 3) from the whole sequence: "
      f"{(torch.cat([first, rest], 1) - whole).abs().max():.1e}")

# %% nbgrader={"grade_id": "q6_rotary_attention", "grade": true, "locked": true}
grader.check("q6_rotary_attention")

# %% [markdown]
# ### Generating with the cache
#
# `PosLM` with `positions="rotary"` calls your `rotary_self_attention` in every layer, so it
# takes and returns a cache. Since RoPE has no table of positions, nothing stops the model at
# `block_size`: the cache simply grows. Greedy generation below runs once with the cache (one
# new token per step) and once without it (the whole sequence every step), in `float64` so
# that rounding cannot flip a choice: the tokens must be the same, past `block_size` too.

# %%
def generate_greedy(model: PosLM, idx: Tensor, max_new_tokens: int, use_cache: bool) -> Tensor:
    """Greedy continuation of ids (B, T) by max_new_tokens tokens, with or without the cache."""
    cache = None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            if use_cache and cache is not None:
                logits, cache = model(idx[:, -1:], cache, use_cache=True)
            else:
                logits, cache = model(idx, use_cache=use_cache)
            idx = torch.cat([idx, logits[:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    return idx


torch.manual_seed(1)
small = PosLM(PosConfig(vocab_size=50, block_size=16, positions="rotary")).double().eval()
prompt = torch.randint(50, (2, 5))
cached = generate_greedy(small, prompt, 30, use_cache=True)
uncached = generate_greedy(small, prompt, 30, use_cache=False)
print(f"35 tokens (block_size 16): same with and without the cache: {torch.equal(cached, uncached)}")

# %% [markdown]
# ### Learned, sinusoidal and rotary positions
#
# Now the same model with each kind of position, trained on the same character windows of
# tiny Shakespeare (ids are the text's bytes: the 256-token vocabulary of Section 1), with
# the same seed: 2 layers, 64 wide, 4 heads, windows of 64 characters, 500 steps of 16
# windows (about 15 seconds each; in quick mode 40 steps). We then score each model on
# validation windows of **256** characters, four times the training length, and plot its
# loss at each position, averaged over 256 windows. The learned table has no vector past
# position 63, so that model is scored on 64-character windows only.

# %%
position_steps = 40 if QUICK else 500
char_train = torch.tensor(list(train_text.encode()))
char_val = torch.tensor(list(val_text.encode()))
position_models, curves = {}, {}


def train_positions(kind: str) -> None:
    """Train the character model with positions of this kind, from the same seed."""
    torch.manual_seed(0)
    position_models[kind] = PosLM(PosConfig(vocab_size=256, positions=kind))
    curves[kind] = train_lm(position_models[kind], char_train, position_steps, label=kind)


# %%
# NBVAL_IGNORE_OUTPUT
train_positions("learned")

# %%
# NBVAL_IGNORE_OUTPUT
train_positions("sinusoidal")

# %%
# NBVAL_IGNORE_OUTPUT
train_positions("rotary")

# %% [markdown]
# The table gives each model's mean validation loss (nats per character) over three ranges
# of positions of the long windows; the plot shows every position (averaged over the
# windows).

# %%
# NBVAL_IGNORE_OUTPUT
long_length, long_windows = 256, (16 if QUICK else 256)
per_position = {}
print(f"{'positions':>10} {'0-63':>7} {'64-127':>7} {'128-255':>8}")
for kind, model in position_models.items():
    if kind == "learned":  # no vectors past position 63: windows of 64
        per_position[kind] = window_losses(model, char_val, 64, 4 * long_windows).mean(0)
        print(f"{kind:>10} {per_position[kind].mean():>7.3f} {'-':>7} {'-':>8}")
        continue
    losses = window_losses(model, char_val, long_length, long_windows).mean(0)
    per_position[kind] = losses
    print(f"{kind:>10} {losses[:64].mean():>7.3f} {losses[64:128].mean():>7.3f} "
          f"{losses[128:].mean():>8.3f}")

fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4))
for kind in position_models:
    left.plot(curves[kind], label=kind, alpha=0.8)
    right.plot(per_position[kind], label=kind)
left.set(xlabel="step", ylabel="training loss (nats per character)", title="training")
right.axvline(63.5, color="grey", linestyle=":", label="training length")
right.set(xlabel="position in the window", ylabel="validation loss (nats)",
          title=f"loss per position, windows of {long_length}")
left.legend()
right.legend()
fig.tight_layout()
plt.show()

# %% [markdown] nbgrader={"grade_id": "q6_positions_why", "solution": true, "grade": true, "points": 2}
# ### Question 2.1 — positions past the training length
#
# (a) Compare the three models at the training length (validation loss at 64) and past it
# (your plot, positions 64–255). What happens to each? (b) Explain why, from how each kind of
# position enters the model: what has the model seen during training, for each?
#
# ### BEGIN SOLUTION
# **Model answer.** (a) (Full mode.) Within the training length the three are close,
# rotary ahead (validation loss on positions 0-63: learned 2.16, sinusoidal 2.13, rotary 1.98
# nats per character after 500 steps; rotary's training curve is lower from about step 50).
# Past position 63 the learned model cannot run at all (no vector). The sinusoidal model's
# loss jumps at once after position 63 and stays high (2.98 on positions 64-127, 3.08 on
# 128-255, against 2.13 within the training length). The rotary model keeps its in-length
# loss well past the training length (2.13 on 64-127; the plot is flat up to about position
# 115) and then rises sharply to the sinusoidal model's level (3.07 on 128-255): it
# extrapolates, but only to about twice the length it was trained on.
# (b) The learned table has trained vectors for positions 0-63 only: there is nothing past
# it. Sinusoidal vectors exist for any position, but positions past 63 are new *inputs*:
# vectors the network never saw, added to every token's embedding, so every layer works
# outside its training distribution at once, and the whole window suffers. With RoPE,
# position enters only through the offsets between query and key: a query at position 100
# looking at keys 37-100 sees the offsets 0-63 of training, so its nearby context works as
# before. What is new are keys more than 63 positions away. A head of size 16 has 8 pairs
# turning at θ = 1, 0.32, 0.1, 0.03, …: the slow pairs turned through less than a full
# circle during training (0.03 × 63 ≈ 2 radians), so at larger offsets their angles take
# values never seen; a head that learned "a small angle means a near key" finds far keys
# looking near again once the angle wraps past π (offset ≈ 100 for θ = 0.03), which fits the
# sharp rise around position 115 (more far keys also spread the softmax). Models that must
# run longer than their training length rescale or interpolate RoPE's angles, use a window,
# or train on longer sequences.
#
# **Rubric (2 points).** 1 point: (a) a reading of the student's own table and plot: the
# three within the training length (which is best), learned impossible past it, how
# sinusoidal and rotary behave past 64 (½ each for the in-length and past-length readings).
# 1 point: (b) learned: no vector (¼); sinusoidal: unseen absolute inputs change every
# token's representation (¼); rotary: only offsets matter, nearby offsets are those of
# training, far offsets (or the angles of the slow pairs) are new (½). No credit for "RoPE
# extrapolates to any length" when the plot shows a rise.
# ### END SOLUTION

# %% [markdown]
# ## 3. What the heads of a trained model look at
#
# The rotary model just trained reads characters. Below, each of its heads is shown on a
# passage of the validation text, one heat-map per head (row = query character, column = key
# character; rows sum to 1, future keys are blocked; `·` is a space, `\n` a line break),
# with `plot_attention` from the course package. `attention_maps`
# recomputes each layer's weights from its input, with your `apply_rotary`.
#
# Patterns to look for:
# - a **previous-token head**: a bright diagonal just below the main one (each character
#   looks at the one before it), the basis of copying and of n-gram-like statistics;
# - heads that look at **spaces and line starts**: bright columns under the spaces or the
#   newline characters, which mark where words and lines begin;
# - heads that look at the **current token** (the main diagonal) or at the **first
#   position** of the window (a bright first column: a place to put attention that finds
#   nothing useful, sometimes called an attention sink);
# - broad, averaging heads that spread their weight over many keys.
#
# The table after the maps measures these patterns over 64 windows of the validation text:
# for each head, the average weight a query gives to the previous character, to itself, to
# spaces and newlines, to the first character of each line, and to the first position of
# the window (for queries past position 8, so that the first position is not simply one of
# few). The columns overlap (the previous character may be a space), and each is best read
# against how common that kind of key is, printed below the table.

# %%
def attention_maps(model: PosLM, idx: Tensor) -> list[Tensor]:
    """The attention weights of each layer of a rotary PosLM on ids (B, T): (B, H, T, T) each."""
    weights = []
    x = model.tok(idx)
    positions = torch.arange(idx.size(1))
    with torch.no_grad():
        for block in model.blocks:
            attn = block.attn
            h = block.ln1(x)
            q, k, _ = F.linear(h, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1)
            q, k = (t.view(*t.shape[:2], attn.num_heads, -1).transpose(1, 2) for t in (q, k))
            q, k = apply_rotary(q, positions), apply_rotary(k, positions)
            scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))
            blocked = torch.ones(idx.size(1), idx.size(1), dtype=torch.bool).triu(1)
            weights.append(scores.masked_fill(blocked, float("-inf")).softmax(-1))
            x, _ = block(x)
    return weights


rotary_model = position_models["rotary"]
start = val_text.find("\n", 200) + 1
passage = val_text[start : start + 32]
passage_ids = torch.tensor([list(passage.encode())])
labels = ["\\n" if c == "\n" else "·" if c == " " else c for c in passage]
print(repr(passage))
maps = attention_maps(rotary_model, passage_ids)
fig, axes = plt.subplots(len(maps), maps[0].size(1), figsize=(5 * maps[0].size(1), 5 * len(maps)))
for layer, layer_weights in enumerate(maps):
    for head, ax in enumerate(axes[layer]):
        plot_attention(layer_weights[0, head], labels, labels, title=f"head {layer}.{head}", ax=ax)
fig.tight_layout()
plt.show()

# %%
# NBVAL_IGNORE_OUTPUT
windows = char_val[: 64 * 64].view(64, 64)
space_keys = (windows == ord(" ")) | (windows == ord("\n"))
line_starts = torch.zeros_like(space_keys)
line_starts[:, 1:] = windows[:, :-1] == ord("\n")  # the first character of a line
print(f"{'head':>6} {'previous':>9} {'itself':>7} {'spaces, newlines':>17} {'line starts':>12} "
      f"{'first':>6}")
queries = torch.arange(8, 64)
for layer, w in enumerate(attention_maps(rotary_model, windows)):
    w = w[:, :, 8:]  # queries from position 8 on: (B, H, 56, 64)
    previous = w[:, :, torch.arange(56), queries - 1].mean((0, 2))
    itself = w[:, :, torch.arange(56), queries].mean((0, 2))
    spaces = (w * space_keys[:, None, None, :]).sum(-1).mean((0, 2))
    starts = (w * line_starts[:, None, None, :]).sum(-1).mean((0, 2))
    first = w[..., 0].mean((0, 2))
    for head in range(w.size(1)):
        print(f"{layer}.{head:<4} {previous[head]:>9.2f} {itself[head]:>7.2f} "
              f"{spaces[head]:>17.2f} {starts[head]:>12.2f} {first[head]:>6.2f}")
print(f"share of the keys: spaces and newlines {space_keys.float().mean():.2f}, "
      f"line starts {line_starts.float().mean():.2f}")

# %% [markdown] nbgrader={"grade_id": "q6_heads", "solution": true, "grade": true, "points": 2}
# ### Question 3.1 — reading the heads
#
# (a) Name, for at least three heads (layer.head), the pattern each shows on the passage and
# in the table, with the numbers that support it. (b) Why would a character-level model
# need a previous-token head, and why attend to spaces and newlines? (c) Why is one passage
# not enough to name a head's job, and what does the table add?
#
# ### BEGIN SOLUTION
# **Model answer.** (Full mode; head numbers and values are those of this run, a student's
# may differ.) A uniform head would give the previous character, or the query
# itself, about 0.04 of its weight (queries 8-63 see 9-64 keys), and spaces and newlines
# about their share of the keys, 0.19. (a) **Previous-token heads**: 1.2 gives the previous
# character 0.52 of its weight and 0.0 gives it 0.40; in their maps, a bright line just
# below the diagonal. Head 1.0 splits its weight between the previous character (0.43) and
# itself (0.36): the last two characters. **Boundary heads**: 0.1 and 1.1 give spaces and
# newlines 0.41 and 0.43 of their weight, twice their share of the keys; in the passage,
# 1.1's queries on the second line ("I have a daughter") light up a column at the line
# break after "BAPTISTA:", where the line began, and 0.2 marks the same break. Head 1.3
# avoids spaces (0.09, half their share). No head uses the first position as a sink here
# (at most 0.01), and the first character of each line gets little weight as such (0.03 to
# 0.05 against a share of 0.03): the heads mark line starts through the newline before them.
# (b) A character model predicts the next character mostly from the last few: the previous
# character (and, through the second layer, the ones before it) is the input of any n-gram
# statistic and of copying a word seen earlier. Spaces and newlines mark word and line
# boundaries: where the current word started tells the model how far into the word it is
# and which words fit, and a line start (in Shakespeare, a speaker's name in capitals and a
# colon, or the first word of a verse line) changes what comes next.
# (c) One passage of 32 characters shows a few queries; a head can look at a space there by
# chance, and what it does may depend on the text. The table averages over 64 windows
# (3,584 queries per head) and compares the weight on each kind of key with how common that
# kind is: a head that gives spaces 0.19 of its weight, when 0.19 of the keys are spaces, has
# no preference.
#
# **Rubric (2 points).** 1 point: (a) three heads named with patterns that agree with the
# student's own maps and table, with numbers (⅓ each). ½: (b) a reason for previous-token
# heads (n-gram statistics, copying) and for boundary heads (position in the word or line).
# ½: (c) one passage is anecdotal; the table averages over many queries and is read against
# the base rate of each kind of key.
# ### END SOLUTION

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check
# that every `grader.check` shows the points you expect, and save the notebook.
# Then run the cell below: it checks the saved notebook and says what is still missing.
