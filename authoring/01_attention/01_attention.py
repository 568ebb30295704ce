# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 1 — Multi-head attention
#
# Attention is the one operation every transformer is built around. In this notebook you
# write it from scratch and check it, number for number, against PyTorch's own
# `torch.nn.MultiheadAttention`.
#
# **You will learn to**
# 1. compute scaled dot-product attention, with boolean and additive masks;
# 2. build the two masks a language model needs: causal and key-padding;
# 3. split a batch of vectors into heads and merge them back;
# 4. assemble a `MultiHeadAttention` module that loads `nn.MultiheadAttention`'s weights
#    and reproduces its outputs to within $10^{-5}$;
# 5. read attention heat-maps.
#
# **Prerequisites**: PyTorch tensors and `nn.Module`, matrix products, softmax.
#
# **Time**: about 90 minutes. Every cell runs in seconds on a laptop CPU.
#
# **How to work**: fill in each `# YOUR CODE HERE` and delete the `raise NotImplementedError()`
# line below it. Run the `grader.check(...)` cell after each task: it runs the public tests
# and says, for each one, what was expected and what came back. Hidden tests with more cases
# run when your notebook is graded, so test your code beyond the public checks. Answer the
# written questions in the cells marked `YOUR ANSWER HERE`.
#
# **How to check and submit**: the first code cell sets the notebook up in Colab (it installs
# the course helpers and this notebook's tests; in JupyterLab it does nothing). When you are
# done, restart the kernel and run all cells, save, and read the report of the last cell: it
# lists any answer still missing, any cell that raised or did not run, and any check short of
# its public points. Then hand in the saved `.ipynb` file as your course asks.
#
# **Conventions** (the same as `nn.MultiheadAttention`, so your module is a drop-in):
# tensors are *batch first*; a **boolean mask is `True` where attention is blocked**; a float
# mask is *added* to the attention scores (`-inf` blocks).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.checking import Grader
from tfcourse.plotting import plot_attention, plot_heads

torch.manual_seed(0)
grader = Grader("tests")

# %% [markdown]
# ## 1. Scaled dot-product attention
#
# Given queries $Q \in \mathbb{R}^{T_q \times d_k}$, keys $K \in \mathbb{R}^{T_k \times d_k}$
# and values $V \in \mathbb{R}^{T_k \times d_v}$,
#
# $$\operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{d_k}} + M\right) V,$$
#
# where the softmax runs over the keys (the last dimension) and $M$ is the mask in additive
# form: $0$ where attention is allowed, $-\infty$ where it is blocked. Row $i$ of the softmax
# is a probability distribution over the keys: the *attention weights* of query $i$.
#
# **Task.** Implement `scaled_dot_product_attention(query, key, value, mask=None)`:
# - `query`: `(..., T_q, d_k)`, `key`: `(..., T_k, d_k)`, `value`: `(..., T_k, d_v)`; the
#   leading dimensions `...` (batch, heads) are the same for all three.
# - `mask`: `None`, a **boolean** tensor (`True` = blocked) or a **float** tensor added to the
#   scores; either broadcasts to `(..., T_q, T_k)`.
# - Return `(output, weights)` with shapes `(..., T_q, d_v)` and `(..., T_q, T_k)`.
# - A query whose keys are *all* blocked attends to nothing: its weights and output must be
#   zeros, not `NaN` (plain softmax over a row of `-inf` gives `NaN`), and no `NaN` may reach
#   the gradients either.
#
# Use only tensor operations (`@`, `torch.softmax`, `masked_fill`, …), not
# `F.scaled_dot_product_attention`.
#
# **Not allowed here:** `F.scaled_dot_product_attention`,
# `torch._C._nn.scaled_dot_product_attention`, `nn.MultiheadAttention`,
# `F.multi_head_attention_forward`, `tfcourse.encoder_config`, `tfcourse_instructor.reference`. A solution
# that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "sdpa", "solution": true}
def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Attend from query (..., T_q, d_k) to key (..., T_k, d_k) / value (..., T_k, d_v).

    Returns the output (..., T_q, d_v) and the attention weights (..., T_q, T_k).
    """
    ### BEGIN SOLUTION
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(mask, float("-inf"))
        else:
            scores = scores + mask
    blocked_rows = torch.isneginf(scores).all(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(blocked_rows, 0.0), dim=-1)
    weights = weights.masked_fill(blocked_rows, 0.0)
    return weights @ value, weights
    ### END SOLUTION


# %% [markdown]
# Try it on a small example: 2 sequences, 3 queries, 4 keys, $d_k = 8$, $d_v = 5$. Each row of
# weights should sum to one.

# %%
q, k, v = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 5)
out, weights = scaled_dot_product_attention(q, k, v)
print("output", tuple(out.shape), "weights", tuple(weights.shape))
print("row sums:", weights.sum(-1))

# %% nbgrader={"grade_id": "q1_sdpa", "grade": true, "locked": true}
grader.check("q1_sdpa")

# %% [markdown]
# ### Question 1.1 — why scale by $\sqrt{d_k}$?
#
# The cell below draws queries and keys with independent standard-normal entries and prints,
# for growing $d_k$, the standard deviation of the raw dot products $q \cdot k$ and the largest
# softmax weight of a row of 16 such scores, with and without the scaling.

# %%
for d_k in (4, 64, 1024):
    q_demo, k_demo = torch.randn(1000, d_k), torch.randn(16, d_k)
    raw = q_demo @ k_demo.T
    top_raw = torch.softmax(raw, -1).max(-1).values.mean()
    top_scaled = torch.softmax(raw / math.sqrt(d_k), -1).max(-1).values.mean()
    print(f"d_k={d_k:5d}  std(q·k)={raw.std():6.1f}  "
          f"mean top weight: unscaled {top_raw:.2f}, scaled {top_scaled:.2f}")

# %% [markdown]
# In two or three sentences: how does the spread of $q \cdot k$ grow with $d_k$, and what
# would happen to the softmax and to its gradients during training without the
# $1/\sqrt{d_k}$ factor?

# %% [markdown] nbgrader={"grade_id": "q1_why_scale", "solution": true, "grade": true, "points": 2}
# **Answer 1.1**
#
# ### BEGIN SOLUTION
# **Model answer.** With independent zero-mean, unit-variance entries, $q \cdot k$ is a sum of
# $d_k$ such products, so its variance is $d_k$ and its standard deviation $\sqrt{d_k}$.
# Without scaling, large $d_k$ pushes the softmax towards a one-hot vector (the printed top
# weight tends to 1); there its gradient is nearly zero, so the scores barely learn.
# Dividing by $\sqrt{d_k}$ restores unit variance whatever the width.
#
# **Rubric (2 points).** 1 point: the spread grows like $\sqrt{d_k}$ (variance $d_k$), with
# a reason. 1 point: the softmax saturates to (near) one-hot, and saturation means vanishing
# gradients. No credit for "to normalise" without saying what goes wrong.
# ### END SOLUTION

# %% [markdown]
# ## 2. Masks
#
# Two masks cover what a transformer language model needs:
#
# - a **causal mask** `(T, T)`: query $i$ may attend to keys $0, \dots, i$ only, so a
#   prediction never sees the future. Entry `[i, j]` is `True` (blocked) exactly when `j > i`.
# - a **key-padding mask** `(B, T)`: sequences of different lengths are padded to a common
#   length `T`; entry `[b, t]` is `True` (blocked) when position `t` is padding, i.e.
#   `t >= lengths[b]`.
#
# **Task.** Implement both. Return boolean tensors on the same device as the inputs
# (`causal_mask` takes an optional `device`). No Python loops over positions.
#
# **Not allowed here:** `nn.Transformer.generate_square_subsequent_mask`, `tfcourse_instructor.reference`.
# A solution that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "masks", "solution": true}
def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean (size, size) mask, True where key j comes after query i (j > i)."""
    ### BEGIN SOLUTION
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)
    ### END SOLUTION


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean (B, max_len) mask, True at positions t >= lengths[b]; lengths has shape (B,)."""
    ### BEGIN SOLUTION
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) >= lengths.unsqueeze(1)
    ### END SOLUTION


# %%
print(causal_mask(4).int())
print(padding_mask(torch.tensor([4, 2]), 4).int())

# %% nbgrader={"grade_id": "q1_masks", "grade": true, "locked": true}
grader.check("q1_masks")

# %% [markdown]
# The heat-maps show the weights of one random sequence of 6 tokens under each mask. Under
# the causal mask the upper triangle is zero: every row spreads its weight over the past
# only. Under the padding mask (length 4 of 6) the last two columns are zero.

# %%
tokens = ["the", "cat", "sat", "on", "the", "mat"]
x = torch.randn(1, 6, 16)
_, w_causal = scaled_dot_product_attention(x, x, x, causal_mask(6))
_, w_padded = scaled_dot_product_attention(x, x, x, padding_mask(torch.tensor([4]), 6)[:, None, :])
fig, axes = plt.subplots(1, 2, figsize=(9, 4))
plot_attention(w_causal[0], tokens, tokens, "causal mask", ax=axes[0])
plot_attention(w_padded[0], tokens, tokens, "key padding (length 4)", ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Question 2.1 — what the causal mask protects
#
# A language model is trained to predict token $t+1$ from the output at position $t$, for all
# positions at once. What would the model learn if the causal mask were left out during
# training, and what would happen when it then generates text one token at a time?

# %% [markdown] nbgrader={"grade_id": "q1_causal", "solution": true, "grade": true, "points": 1}
# **Answer 2.1**
#
# ### BEGIN SOLUTION
# **Model answer.** Without the mask, position $t$ can attend to token $t+1$, the very token
# it must predict, so the model learns to copy it and the training loss drops towards zero
# without learning language. At generation time the future tokens do not exist yet, so the
# shortcut is gone and the model's predictions are poor.
#
# **Rubric (1 point).** 1 point for both parts: the target leaks through attention (the model
# copies / cheats), and this fails at generation where future tokens are absent. ½ point for
# only one part.
# ### END SOLUTION

# %% [markdown]
# ## 3. Splitting into heads
#
# Multi-head attention runs $H$ attentions side by side, each on its own slice of the
# embedding. With embedding size $E$ and head size $D = E / H$:
#
# - `split_heads(x, num_heads)`: `(B, T, E)` → `(B, H, T, D)`; head $h$ gets features
#   $hD, \dots, (h+1)D - 1$ of each position.
# - `merge_heads(x)`: `(B, H, T, D)` → $(B, T, H \cdot D)$, the exact inverse.
#
# **Task.** Implement both with `view`/`reshape` and `transpose` (no loops).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "heads", "solution": true}
def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, E) -> (B, num_heads, T, E // num_heads)."""
    ### BEGIN SOLUTION
    batch, length, embed_dim = x.shape
    return x.view(batch, length, num_heads, embed_dim // num_heads).transpose(1, 2)
    ### END SOLUTION


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H * D)."""
    ### BEGIN SOLUTION
    batch, num_heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, num_heads * head_dim)
    ### END SOLUTION


# %%
x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
print("split:", tuple(split_heads(x, 4).shape), " round trip exact:",
      torch.equal(merge_heads(split_heads(x, 4)), x))

# %% nbgrader={"grade_id": "q1_heads", "grade": true, "locked": true}
grader.check("q1_heads")

# %% [markdown]
# ## 4. The `MultiHeadAttention` module
#
# For input query `(B, T_q, E)` and key/value `(B, T_k, E)`:
#
# 1. project: $Q = x_q W_Q^\top + b_Q$, $K = x_k W_K^\top + b_K$, $V = x_v W_V^\top + b_V$.
#    `nn.MultiheadAttention` stores the three weights stacked in one `in_proj_weight` of shape
#    `(3E, E)` (rows $0..E-1$ for $Q$, then $K$, then $V$) and the biases in `in_proj_bias`
#    `(3E,)`. `__init__` below defines exactly these parameters, so
#    `load_state_dict(torch_mha.state_dict())` works.
# 2. split each of $Q, K, V$ into heads: `(B, H, T, D)`;
# 3. combine the masks: `attn_mask` is `(T_q, T_k)` or `(B·H, T_q, T_k)`, `key_padding_mask` is
#    `(B, T_k)`; each is boolean (`True` = blocked) or float (added). Both may be given.
# 4. attend per head with your `scaled_dot_product_attention`;
# 5. merge the heads and apply the output projection `out_proj`.
#
# Return `(output, weights)`: output `(B, T_q, E)`; weights `(B, T_q, T_k)` averaged over heads
# when `average_attn_weights=True`, `(B, H, T_q, T_k)` otherwise, and `None` when
# `need_weights=False`. These are the arguments and return values of `nn.MultiheadAttention`
# with `batch_first=True`.
#
# **Task.** Implement `forward`. Hint: `F.linear(x, weight, bias)` computes
# $x W^\top + b$, and `tensor.chunk(3)` splits the stacked weight.
#
# **Not allowed here:** `nn.MultiheadAttention`, `F.multi_head_attention_forward`,
# `F.scaled_dot_product_attention`, `torch._C._nn.scaled_dot_product_attention`,
# `tfcourse.encoder_config`, `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on
# this question.

# %% nbgrader={"grade_id": "mha", "solution": true}
class MultiHeadAttention(nn.Module):
    """Multi-head attention with the parameters and behaviour of nn.MultiheadAttention."""

    def __init__(self, embed_dim: int, num_heads: int, bias: bool = True) -> None:
        super().__init__()
        assert embed_dim % num_heads == 0, "embed_dim must be divisible by num_heads"
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        ### BEGIN SOLUTION
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        if self.in_proj_bias is None:
            b_q = b_k = b_v = None
        else:
            b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        q = split_heads(F.linear(query, w_q, b_q), self.num_heads)
        k = split_heads(F.linear(key, w_k, b_k), self.num_heads)
        v = split_heads(F.linear(value, w_v, b_v), self.num_heads)

        def additive(mask: Tensor) -> Tensor:
            if mask.dtype == torch.bool:
                zeros = torch.zeros(mask.shape, dtype=q.dtype, device=mask.device)
                return zeros.masked_fill(mask, float("-inf"))
            return mask.to(q.dtype)

        mask = None
        if attn_mask is not None:
            mask = additive(attn_mask)
            if mask.dim() == 3:
                mask = mask.view(q.size(0), self.num_heads, *mask.shape[1:])
        if key_padding_mask is not None:
            padding = additive(key_padding_mask)[:, None, None, :]
            mask = padding if mask is None else mask + padding

        out, weights = scaled_dot_product_attention(q, k, v, mask)
        out = self.out_proj(merge_heads(out))
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights
        ### END SOLUTION


# %% [markdown]
# Compare with PyTorch on a random batch: copy the weights over, run both, print the largest
# differences. Both should be below $10^{-5}$.

# %%
torch_mha = nn.MultiheadAttention(embed_dim=32, num_heads=4, batch_first=True)
mha = MultiHeadAttention(embed_dim=32, num_heads=4)
mha.load_state_dict(torch_mha.state_dict())
x = torch.randn(2, 6, 32)
ours, ours_w = mha(x, x, x, attn_mask=causal_mask(6))
theirs, theirs_w = torch_mha(x, x, x, attn_mask=causal_mask(6))
print(f"max |output difference|  = {(ours - theirs).abs().max():.1e}")
print(f"max |weights difference| = {(ours_w - theirs_w).abs().max():.1e}")

# %% nbgrader={"grade_id": "q1_mha", "grade": true, "locked": true}
grader.check("q1_mha")

# %% [markdown]
# ## 5. Reading attention heat-maps
#
# Attention is a *soft lookup*: a query retrieves the values whose keys it matches. To see
# that, we set the weights of a 2-head module by hand. Each token embedding holds a one-hot
# code of its position. Head 0's query projection maps the code of position $i$ onto the key
# code of position $i-1$, head 1's onto its own position. With large projections the softmax
# is sharp, and the heat-maps show a "previous token" head and a "same token" head.

# %%
T = len(tokens)
demo = MultiHeadAttention(embed_dim=2 * T, num_heads=2, bias=False)
with torch.no_grad():
    shift = torch.eye(T).roll(-1, dims=1)  # row i selects code i-1
    shift[0, -1] = 0.0  # the first token has no previous token
    scale = 8.0
    codes = torch.eye(T)
    w_q = torch.block_diag(scale * shift.T, scale * torch.eye(T))
    w_k = torch.block_diag(torch.eye(T), torch.eye(T))
    demo.in_proj_weight.copy_(torch.cat([w_q, w_k, torch.eye(2 * T)]))
    embeddings = torch.cat([codes, codes], dim=-1).unsqueeze(0)  # (1, T, 2T)
    _, per_head = demo(embeddings, embeddings, embeddings,
                       attn_mask=causal_mask(T), average_attn_weights=False)
plot_heads(per_head[0], tokens, "per-head attention weights")
plt.show()

# %% [markdown]
# ### Question 5.1 — why several heads?
#
# (a) How many parameters does `MultiHeadAttention(E, H)` have (with biases), and how does
# that number depend on $H$? (b) The "previous token" and "same token" patterns above came
# from two heads of one layer. Why can a single head of the same total width $E$ not produce
# both patterns for the same query at once?

# %% [markdown] nbgrader={"grade_id": "q1_heads_why", "solution": true, "grade": true, "points": 2}
# **Answer 5.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) $3E^2 + 3E$ for the input projections plus $E^2 + E$ for the output
# projection: $4E^2 + 4E$, independent of $H$ (heads split the width, they do not add
# parameters). (b) One head gives each query a single distribution over keys, one softmax,
# so it must average the two patterns into one blurred distribution; separate heads keep
# separate distributions and the output projection combines what each retrieved.
#
# **Rubric (2 points).** 1 point: $4E^2 + 4E$ and "independent of $H$" (½ for the count
# without the dependence or the reverse). 1 point: one softmax per query per head, so a
# single head must mix the two lookups; several heads attend to different places at once.
# ### END SOLUTION

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check
# that every `grader.check` shows the points you expect, and save the notebook.
# Then run the cell below: it checks the saved notebook and says what is still missing.
