# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 5 — Inference and under the hood
#
# The first four notebooks let PyTorch do two jobs in the background: autograd computed every
# gradient, and generation simply ran the whole model again for each new token. This notebook
# opens both boxes. You write the backward pass of attention yourself, compute attention in
# blocks so that its memory grows linearly with the sequence (the idea behind FlashAttention),
# make generation fast with a key/value cache, and replace greedy decoding by beam search.
#
# **You will learn to**
# 1. derive and code the backward pass of attention (through the softmax Jacobian), check it
#    with `gradcheck`, and count its cost with PyTorch's FLOP counter;
# 2. compute exact attention block by block with an *online softmax*, and measure its memory;
# 3. cache keys and values so that each generated token costs one position, not the whole
#    context, and time the difference;
# 4. search for likely sequences with beam search and length normalisation, and compare it
#    with greedy decoding and sampling.
#
# **Prerequisites**: notebooks 1 and 3 (attention, masks, sampling with temperature and
# top-k), notebook 4's cost of decoding, the chain rule for vectors and matrices.
#
# **Time**: about 2 to 2½ hours of work. Run top to bottom, the notebook takes about two
# minutes on a laptop CPU, most of it training the small character model of Section 4 (a
# progress bar shows it); no cell takes more than a minute. When it is graded it runs in a
# quick mode with smaller sizes (see `QUICK` below); leave the sizes alone.
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
# **Conventions** (those of notebook 1): tensors are batch first; a **boolean mask is `True`
# where attention is blocked**; a float mask is *added* to the scores. PyTorch's own
# `F.scaled_dot_product_attention` reads boolean masks the other way round (`True` = may
# attend).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
import time
import weakref
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from tfcourse.checking import Grader
from tfcourse.corpora import load_corpus
from tfcourse.runmode import quick_mode
from tfcourse.vocab import CharTokenizer

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
# ## 1. The backward pass of attention, by hand
#
# For one query row, attention computes scores $s = Kq/\sqrt{d}$ (one per key), weights
# $p = \operatorname{softmax}(s)$ and the output $o = V^\top p$. For a whole sequence, with
# $Q$ `(T_q, d)`, $K$ `(T_k, d)`, $V$ `(T_k, d_v)`:
#
# $$S = \frac{QK^\top}{\sqrt d}, \qquad P = \operatorname{softmax}(S) \text{ (row by row)}, \qquad O = PV.$$
#
# Given the gradient of the loss with respect to the output, $dO = \partial L / \partial O$
# `(T_q, d_v)`, backpropagation runs the three steps in reverse:
#
# 1. $O = PV$: $\; dV = P^\top dO$ and $dP = dO\,V^\top$.
# 2. The softmax, row by row. Its Jacobian is $\partial p / \partial s = \operatorname{diag}(p) - pp^\top$
#    (symmetric), so a row's score gradient is $ds = (\operatorname{diag}(p) - pp^\top)\,dp$.
#    Do not build this $T_k \times T_k$ matrix for each row: expand the product to a
#    form that costs $O(T_k)$ per row.
# 3. $S = QK^\top/\sqrt d$: $\; dQ = dS\,K/\sqrt d$ and $dK = dS^\top Q/\sqrt d$.
#
# A blocked score is $-\infty$, its weight $p = 0$, and the formula gives it no gradient by
# itself.
#
# **Task.** Complete `AttentionFunction`, a `torch.autograd.Function`:
# - `forward(ctx, query, key, value, mask)`: `query` `(..., T_q, d)`, `key` `(..., T_k, d)`,
#   `value` `(..., T_k, d_v)`, all with the same leading dimensions; `mask` is `None` or a
#   boolean tensor (`True` = blocked) that broadcasts to `(..., T_q, T_k)` and leaves every
#   query at least one key. Return the output `(..., T_q, d_v)`, and keep what the backward
#   needs with `ctx.save_for_backward(...)` (tensors) or as attributes of `ctx` (numbers).
# - `backward(ctx, grad_output)`: return `(grad_query, grad_key, grad_value, None)`, one entry
#   per input of `forward` (`None`: the mask gets no gradient), from the formulas above with
#   tensor operations only. Autograd must not help: no `torch.autograd.grad`, no `.backward()`,
#   no recomputing the forward pass.
#
# `attention_manual` below calls it; the tests call `attention_manual`.
#
# **Not allowed here:** `torch.autograd.grad`, `torch.autograd.functional`, `torch.func`,
# `F.scaled_dot_product_attention`, `torch._C._nn.scaled_dot_product_attention`,
# `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "backward", "solution": true}
class AttentionFunction(torch.autograd.Function):
    """softmax(QKᵀ/√d)V with a hand-written backward pass."""

    @staticmethod
    def forward(ctx: Any, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
        ### BEGIN SOLUTION
        scale = 1.0 / math.sqrt(query.size(-1))
        scores = query @ key.transpose(-2, -1) * scale
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(query, key, value, weights)
        ctx.scale = scale
        return weights @ value
        ### END SOLUTION

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        ### BEGIN SOLUTION
        query, key, value, weights = ctx.saved_tensors
        grad_value = weights.transpose(-2, -1) @ grad_output
        grad_weights = grad_output @ value.transpose(-2, -1)
        # (diag(p) - ppᵀ)g = p ⊙ (g - ⟨p, g⟩): the Jacobian is never formed.
        inner = (grad_weights * weights).sum(dim=-1, keepdim=True)
        grad_scores = weights * (grad_weights - inner) * ctx.scale
        return grad_scores @ key, grad_scores.transpose(-2, -1) @ query, grad_value, None
        ### END SOLUTION


def attention_manual(query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None) -> Tensor:
    """Attention through AttentionFunction: output (..., T_q, d_v)."""
    return AttentionFunction.apply(query, key, value, mask)


# %% [markdown]
# Compare with autograd on plain attention: the same outputs and gradients, to rounding.
# Then `torch.autograd.gradcheck` compares your backward with finite differences of your
# forward; it needs `float64` inputs to be precise enough.

# %%
q, k, v = torch.randn(2, 6, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 4)
causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
grad = torch.randn(2, 6, 4)
inputs = [t.clone().requires_grad_() for t in (q, k, v)]
attention_manual(*inputs, causal).backward(grad)
expected = [t.clone().requires_grad_() for t in (q, k, v)]
F.scaled_dot_product_attention(*expected, attn_mask=~causal).backward(grad)
for name, ours, theirs in zip("QKV", inputs, expected, strict=True):
    print(f"d{name}: max |difference| from autograd = {(ours.grad - theirs.grad).abs().max():.1e}")
double = [torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True) for _ in range(3)]
print("gradcheck, causal mask:",
      torch.autograd.gradcheck(lambda *t: attention_manual(*t, causal[:5, :5]), double))

# %% nbgrader={"grade_id": "q5_backward", "grade": true, "locked": true}
grader.check("q5_backward")

# %% [markdown]
# ### What the backward pass costs
#
# `torch.utils.flop_counter.FlopCounterMode` counts the floating-point operations of matrix
# products (2 per multiply-add) run inside a `with` block, including those of your own
# `backward`; elementwise work (softmax, masks) is not counted.
#
# **Task.** `measure_flops(query, key, value, mask=None)` returns `(forward_flops,
# backward_flops)`, two `int`s:
# - work on detached copies that require gradients (`t.detach().requires_grad_()`);
# - count, with one `FlopCounterMode(display=False)` each, the forward
#   `attention_manual(q, k, v, mask)`, and then its backward from an all-ones output gradient
#   (`.backward(torch.ones_like(...))` on the output);
# - read each count with `counter.get_total_flops()`.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "flops", "solution": true}
def measure_flops(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> tuple[int, int]:
    """FLOPs of the forward and of the backward pass of attention_manual."""
    ### BEGIN SOLUTION
    inputs = [tensor.detach().requires_grad_() for tensor in (query, key, value)]
    with FlopCounterMode(display=False) as forward:
        output = attention_manual(*inputs, mask)
    with FlopCounterMode(display=False) as backward:
        output.backward(torch.ones_like(output))
    return forward.get_total_flops(), backward.get_total_flops()
    ### END SOLUTION


# %%
forward_flops, backward_flops = measure_flops(*(torch.randn(4, 256, 64) for _ in range(3)))
print(f"forward {forward_flops:,} FLOPs, backward {backward_flops:,} FLOPs: "
      f"backward / forward = {backward_flops / forward_flops:.2f}")

# %% nbgrader={"grade_id": "q5_flops", "grade": true, "locked": true}
grader.check("q5_flops")

# %% [markdown]
# The forward pass has two matrix products ($QK^\top$ and $PV$), the backward pass four
# ($dV$, $dP$, $dQ$, $dK$), each of the same size: backward costs **twice** the forward. The
# same rule of thumb holds for a whole network (forward 1×, backward 2×, training step 3×).
# Had you built the Jacobian of every row, multiplying each row's $T_k \times T_k$ matrix by
# its $dp$ would have cost an extra $T_k^2$ multiply-adds per row, $T_q T_k^2$ in all, against
# $4\,T_q T_k d$ for the four products together (with $d_v = d$). That is a fraction
# $T_k / 4d$ of them: a quarter at $T_k = d$, as much as all four at $T_k = 4d$ (the sizes
# above, where the backward would have doubled), and more than all four beyond.

# %% [markdown]
# ## 2. Attention in blocks, with an online softmax
#
# Attention as written above materialises the scores $S$: $T_q \times T_k$ numbers, quadratic
# in the sequence length (notebook 4). FlashAttention never holds them all. It walks over the
# keys in blocks and keeps, for every query row, three running quantities:
#
# - $m$: the largest score seen so far (starts at $-\infty$);
# - $\ell$: the sum of $e^{s_j - m}$ over the keys seen so far (starts at 0);
# - $a$: the sum of $e^{s_j - m} v_j$ over the keys seen so far, a vector of size $d_v$
#   (starts at 0).
#
# For the next block of scores $s_B$ with values $V_B$: $m' = \max(m, \max s_B)$; the old sums
# were computed relative to $m$, so rescale them by $c = e^{m - m'}$; then
# $\ell' = c\,\ell + \sum_{j \in B} e^{s_j - m'}$ and $a' = c\,a + \sum_{j \in B} e^{s_j - m'} v_j$.
# After the last block the output is $a / \ell$.
#
# **Task.** `blockwise_attention(query, key, value, mask=None, block_size=64)` returns the
# output `(..., T_q, d_v)` of attention, equal to that of notebook 1 within $10^{-5}$ in
# float32, computed over blocks of `block_size` keys (the last block may be shorter) with the
# recurrence above:
# - inputs as in Section 1; `mask` is `None`, boolean (`True` = blocked) or float (added),
#   and broadcasts to `(..., T_q, T_k)` (`mask.broadcast_to(...)` makes a view, no copy);
# - never build a tensor of size `T_q × T_k`: per block, the scores are `(..., T_q, block_size)`;
# - a query whose keys are **all** blocked gets an output of zeros, not `NaN`. Careful: a
#   block in which a row's keys are all blocked, before any allowed key, leaves its $m$ at
#   $-\infty$, and $e^{-\infty - (-\infty)}$ is `NaN`.
#
# **Not allowed here:** `F.scaled_dot_product_attention`,
# `torch._C._nn.scaled_dot_product_attention`, `nn.MultiheadAttention`,
# `F.multi_head_attention_forward`, `tfcourse_instructor.reference`. A solution that calls one of them
# scores 0 on this question.

# %% nbgrader={"grade_id": "blockwise", "solution": true}
def blockwise_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, block_size: int = 64
) -> Tensor:
    """Attention over blocks of keys with an online softmax: output (..., T_q, d_v)."""
    ### BEGIN SOLUTION
    scale = 1.0 / math.sqrt(query.size(-1))
    rows = (*query.shape[:-1], 1)
    running_max = query.new_full(rows, float("-inf"))
    running_sum = query.new_zeros(rows)
    accumulator = query.new_zeros((*query.shape[:-1], value.size(-1)))
    if mask is not None:
        mask = mask.broadcast_to((*query.shape[:-1], key.size(-2)))
    for start in range(0, key.size(-2), block_size):
        stop = start + block_size
        scores = query @ key[..., start:stop, :].transpose(-2, -1) * scale
        if mask is not None:
            block = mask[..., start:stop]
            if block.dtype == torch.bool:
                scores = scores.masked_fill(block, float("-inf"))
            else:
                scores = scores + block
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        # Rows that have seen only blocked keys shift by 0: exp then gives 0, not NaN.
        shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)
        probs = torch.exp(scores - shift)
        correction = torch.exp(running_max - shift)
        running_sum = running_sum * correction + probs.sum(dim=-1, keepdim=True)
        accumulator = accumulator * correction + probs @ value[..., start:stop, :]
        running_max = new_max
    return accumulator / running_sum.masked_fill(running_sum == 0, 1.0)
    ### END SOLUTION


# %%
q, k, v = torch.randn(2, 10, 8), torch.randn(2, 10, 8), torch.randn(2, 10, 4)
causal = torch.ones(10, 10, dtype=torch.bool).triu(1)
reference = F.scaled_dot_product_attention(q, k, v, attn_mask=~causal)
ours = blockwise_attention(q, k, v, causal, block_size=4)
print(f"max |difference| from PyTorch's attention: {(ours - reference).abs().max():.1e}")

# %% nbgrader={"grade_id": "q5_blockwise", "grade": true, "locked": true}
grader.check("q5_blockwise")

# %% [markdown]
# ### Measuring the memory
#
# How much memory does each version need at its peak? `PeakMemory` below watches every tensor
# that torch functions create inside a `with` block (a `TorchFunctionMode` sees each call),
# adds its bytes while the tensor is alive and subtracts them when Python frees it; views
# (slices, transposes) share memory and are not counted. Its `peak` is the largest total alive
# at one time. `naive_attention` is the textbook formula, holding the full score matrix.

# %%
class PeakMemory(TorchFunctionMode):
    """Peak bytes of the tensors created inside the block that are alive at the same time."""

    def __enter__(self) -> "PeakMemory":
        self.live = self.peak = 0
        return super().__enter__()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        created = isinstance(out, Tensor) and out._base is None  # not a view
        if created and not any(out is arg for arg in args):  # not an in-place result
            self.live += out.nbytes
            self.peak = max(self.peak, self.live)
            weakref.finalize(out, self._free, out.nbytes)
        return out

    def _free(self, nbytes: int) -> None:
        self.live -= nbytes


def naive_attention(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
    """softmax(QKᵀ/√d)V, holding all T × T scores."""
    return torch.softmax(query @ key.transpose(-2, -1) / math.sqrt(query.size(-1)), dim=-1) @ value


lengths = [128, 256, 512, 1024] if QUICK else [128, 256, 512, 1024, 2048, 4096]
peaks = {"naive": [], "blockwise (64 keys per block)": []}
for T in lengths:
    q = k = v = torch.randn(1, T, 64)
    for label, attend in (("naive", naive_attention),
                          ("blockwise (64 keys per block)", blockwise_attention)):
        with PeakMemory() as memory:
            attend(q, k, v)
        peaks[label].append(memory.peak / 2**20)
for T, naive, blockwise in zip(lengths, *peaks.values(), strict=True):
    print(f"T = {T:5d}: naive {naive:8.2f} MiB, blockwise {blockwise:6.2f} MiB")

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for label, values in peaks.items():
    ax.plot(lengths, values, "o-", label=label)
ax.plot(lengths, [4 * T * T / 2**20 for T in lengths], ":", color="grey",
        label="one T × T float32 matrix")
ax.set(xscale="log", yscale="log", xlabel="sequence length T",
       ylabel="peak intermediate memory (MiB)", title="attention memory, d = 64, one head")
ax.set_xticks(lengths, [str(T) for T in lengths])
ax.minorticks_off()
ax.legend()
plt.show()

# %% [markdown]
# On log-log axes a power law is a straight line whose slope is its exponent: the naive
# version climbs with slope 2 (double $T$, four times the memory), the blockwise one with
# slope 1. Both do the same multiplications; FlashAttention is also *faster* on a GPU
# because the small blocks stay in fast on-chip memory.

# %% [markdown] nbgrader={"grade_id": "q5_online_exact", "solution": true, "grade": true, "points": 2}
# ### Question 2.1 — why the online softmax is exact
#
# (a) Show that after the last block $a/\ell$ equals $\operatorname{softmax}(s)^\top V$
# exactly (not approximately): what do $\ell$ and $a$ equal after each block, in terms of the
# scores seen so far and the current $m$? (b) Why keep the running maximum at all: what would
# go wrong, in float32, with plain sums of $e^{s_j}$?
#
# ### BEGIN SOLUTION
# **Model answer.** (a) By induction on the blocks: after the blocks seen so far (keys $J$),
# $\ell = \sum_{j \in J} e^{s_j - m}$ and $a = \sum_{j \in J} e^{s_j - m} v_j$ with $m$ the
# current maximum. The invariant holds at the start (empty sums) and is kept by each step,
# since $c\,e^{s_j - m} = e^{m - m'} e^{s_j - m} = e^{s_j - m'}$ turns the old terms into terms
# relative to $m'$, and the new block adds its own. At the end,
# $a/\ell = \sum_j e^{s_j - m} v_j / \sum_j e^{s_j - m}$, and the common factor $e^{-m}$
# cancels: this is exactly $\sum_j \operatorname{softmax}(s)_j v_j$. Only the order of the
# additions differs from the usual formula, so results agree to rounding. (b) $e^{s}$
# overflows float32 for $s > 88$ (giving `inf` and then `NaN`) and underflows to 0 for very
# negative scores; subtracting the running maximum keeps every exponent $\le 0$, so each term
# is in $(0, 1]$ and the largest is 1 (the standard stable softmax, done incrementally).
#
# **Rubric (2 points).** 1 point: (a) the invariant for $\ell$ and $a$ relative to the current
# maximum and the cancellation of $e^{-m}$ (½ for "the rescaling corrects the old sums"
# without showing why the result is exact). 1 point: (b) overflow (or underflow) of the
# exponentials without the maximum; ½ if only "numerical stability" is named.
# ### END SOLUTION

# %% [markdown]
# ## 3. Decoding with a key/value cache
#
# To generate token $t+1$, a language model needs the last position's output only, but the
# plain loop of notebook 3 runs the model over the whole context again at every step. The keys
# and values of earlier positions never change (a causal model never lets them see later
# tokens), so they can be kept: a **KV cache** holds, for each layer, the keys and values of all
# positions so far, `(B, H, T_past, D)` each, and each step computes the new position only.
#
# **Task 1.** `cached_attention(attn, x, cache=None)` is causal self-attention with the
# weights of `attn`, an `nn.MultiheadAttention(E, H, batch_first=True)` (read
# `attn.in_proj_weight` `(3E, E)`, `attn.in_proj_bias` `(3E,)` or `None`, `attn.out_proj`,
# `attn.num_heads`, as in notebook 1's task 4):
# - `x` `(B, T_new, E)` holds the *new* positions; `cache` is `None` or a pair
#   `(keys, values)` of the earlier positions, each `(B, H, T_past, D)` with `D = E / H`;
# - project `x` to queries, keys and values and split them into heads; append the new keys
#   and values after the cached ones;
# - the new query $i$ sits at position $T_{past} + i$: it attends to every position up to
#   and including its own, cached ones included (so with `cache=None` this is the usual causal
#   mask);
# - return `(output, (keys, values))`: the output `(B, T_new, E)` after `out_proj`, and the
#   extended cache, each `(B, H, T_past + T_new, D)`.
#
# Any split of a sequence into chunks fed one after the other must give the outputs of
# `attn(x, x, x, attn_mask=causal_mask)` on the whole sequence. You may use
# `F.scaled_dot_product_attention` (mind its mask convention).
#
# **Not allowed here:** `F.multi_head_attention_forward`, `tfcourse_instructor.reference`. A solution that
# calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "kv_attention", "solution": true}
def cached_attention(
    attn: nn.MultiheadAttention, x: Tensor, cache: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, tuple[Tensor, Tensor]]:
    """Causal self-attention of the new positions x (B, T_new, E) over the cache and themselves."""
    ### BEGIN SOLUTION
    batch, new, embed_dim = x.shape
    heads = attn.num_heads

    def split(t: Tensor) -> Tensor:
        return t.view(batch, new, heads, embed_dim // heads).transpose(1, 2)

    q, k, v = (split(t) for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
    if cache is not None:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    past = k.size(2) - new
    # Query i (position past + i) may see keys 0..past + i; PyTorch: True = may attend.
    allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return attn.out_proj(out.transpose(1, 2).reshape(batch, new, embed_dim)), (k, v)
    ### END SOLUTION


# %%
attn = nn.MultiheadAttention(16, 4, batch_first=True)
x = torch.randn(2, 7, 16)
full, _ = attn(x, x, x, attn_mask=torch.ones(7, 7, dtype=torch.bool).triu(1))
first, cache = cached_attention(attn, x[:, :4])
rest, cache = cached_attention(attn, x[:, 4:], cache)
print("cache:", tuple(cache[0].shape), tuple(cache[1].shape))
print(f"max |difference| from the whole sequence: {(torch.cat([first, rest], 1) - full).abs().max():.1e}")

# %% nbgrader={"grade_id": "q5_kv_attention", "grade": true, "locked": true}
grader.check("q5_kv_attention")

# %% [markdown]
# ### A model that takes and returns a cache
#
# `TinyLM` below is a small pre-norm transformer language model with learned positions, built
# from PyTorch's modules. Its interface is the one your generation code will use:
#
# `logits, cache = model(idx, cache=None, use_cache=False)`
# - `idx` `(B, T_new)`: the ids of the new positions, which come right after the cached ones;
# - `use_cache=False`: the usual forward pass through `nn.MultiheadAttention` with a causal
#   mask; the cache is `None` in and out;
# - `use_cache=True`: each layer runs your `cached_attention` on its cache (`None` for an empty
#   cache); the returned cache is a list with one `(keys, values)` pair per layer, extended by
#   the new positions;
# - `logits` `(B, T_new, V)`; `model.config.block_size` is the number of positions the model
#   has: positions $0, \dots, \text{block\_size} - 1$ only.

# %%
@dataclass(frozen=True)
class LMConfig:
    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64


class Block(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, config.n_head, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, cache=None, use_cache=False):
        h = self.ln1(x)
        if use_cache:
            a, cache = cached_attention(self.attn, h, cache)
        else:
            blocked = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)
            a = self.attn(h, h, h, attn_mask=blocked, need_weights=False)[0]
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


class TinyLM(nn.Module):
    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(self, idx, cache=None, use_cache=False):
        past = 0 if cache is None else cache[0][0].size(2)
        x = self.tok(idx) + self.pos(torch.arange(past, past + idx.size(1), device=idx.device))
        new_cache = []
        for index, block in enumerate(self.blocks):
            x, layer_cache = block(x, None if cache is None else cache[index], use_cache)
            new_cache.append(layer_cache)
        return self.head(self.ln(x)), new_cache if use_cache else None


# %% [markdown]
# **Task 2.** `generate(model, idx, max_new_tokens, use_cache=True, temperature=1.0,
# top_k=None, generator=None)` extends the ids `idx` `(B, T)` by `max_new_tokens` tokens and
# returns `(B, T + max_new_tokens)`, in `eval()` mode without gradients:
# - **choosing a token** from the last position's logits `(B, V)`: when `temperature == 0`,
#   the argmax (greedy); otherwise divide by the temperature, keep only the `top_k` largest
#   logits of each row when `top_k` is given (the others become $-\infty$), and draw with
#   exactly one call `torch.multinomial(probs, 1, generator=generator)` per step, as in
#   notebook 3. The same generator must then give the same tokens with and without the cache.
# - **without the cache** (`use_cache=False`): at each step run the model on the last
#   `block_size` ids (at most), as in notebook 3.
# - **with the cache**: the first step runs the model on the last `block_size` ids with
#   `use_cache=True`; each later step feeds only the newest id with the cache returned by the
#   step before. The model has no position beyond `block_size - 1`: once the sequence is
#   longer than `block_size`, the window slides, every position shifts, the cached keys no
#   longer fit, and each step must run on the last `block_size` ids again.
#
# The tokens must be exactly those of generation without the cache (the tests compare them
# in float64, where rounding cannot flip a choice).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "generate", "solution": true}
def generate(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    use_cache: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend ids (B, T) by max_new_tokens tokens: (B, T + max_new_tokens)."""
    ### BEGIN SOLUTION
    model.eval()
    block_size = model.config.block_size
    cache = None
    with torch.no_grad():
        for _ in range(max_new_tokens):
            if use_cache and cache is not None and idx.size(1) <= block_size:
                logits, cache = model(idx[:, -1:], cache, use_cache=True)
            else:
                logits, cache = model(idx[:, -block_size:], use_cache=use_cache)
            logits = logits[:, -1]
            if temperature == 0:
                next_id = logits.argmax(dim=-1, keepdim=True)
            else:
                logits = logits / temperature
                if top_k is not None:
                    kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
                    logits = logits.masked_fill(logits < kth, float("-inf"))
                probs = torch.softmax(logits, dim=-1)
                next_id = torch.multinomial(probs, 1, generator=generator)
            idx = torch.cat([idx, next_id], dim=1)
    return idx
    ### END SOLUTION


# %%
demo_model = TinyLM(LMConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, d_model=32))
prompt = torch.randint(20, (2, 5))
for label, kwargs in (("greedy", {"temperature": 0}), ("sampled", {"temperature": 1.0})):
    with_cache = generate(demo_model, prompt, 20, True, generator=torch.Generator().manual_seed(0), **kwargs)
    without = generate(demo_model, prompt, 20, False, generator=torch.Generator().manual_seed(0), **kwargs)
    print(f"{label}: same tokens with and without the cache: {torch.equal(with_cache, without)}")

# %% nbgrader={"grade_id": "q5_generate", "grade": true, "locked": true}
grader.check("q5_generate")

# %% [markdown]
# ### Timing one decoding step
#
# How much does the cache save? The cell below times one decoding step of a 4-layer, 128-wide
# `TinyLM` at several context lengths $n$: without the cache, the model runs over all $n$
# positions; with it, over the newest one, given a cache of the $n - 1$ before. Each time is
# the median of several runs. (About 10 seconds; in quick mode, a smaller model.)

# %%
# NBVAL_IGNORE_OUTPUT
def time_step(model: TinyLM, n: int, use_cache: bool, repeats: int) -> float:
    """Median milliseconds of one decoding step at context length n."""
    idx = torch.randint(model.config.vocab_size, (1, n))
    times = []
    with torch.no_grad():
        cache = model(idx[:, :-1], use_cache=True)[1] if use_cache else None
        for _ in range(repeats + 1):  # the first run warms up and is left out
            start = time.perf_counter()
            if use_cache:
                model(idx[:, -1:], cache, use_cache=True)
            else:
                model(idx)
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[repeats // 2]


timing_config = LMConfig(vocab_size=100, block_size=1024, n_layer=4, n_head=4, d_model=128)
contexts = [16, 32, 64, 128, 256, 512, 1024]
repeats = 7
if QUICK:
    timing_config = LMConfig(vocab_size=100, block_size=256, n_layer=2, n_head=4, d_model=64)
    contexts, repeats = [16, 64, 256], 3
timing_model = TinyLM(timing_config).eval()
ms = {cached: [time_step(timing_model, n, cached, repeats) for n in contexts] for cached in (False, True)}
for n, plain, cached in zip(contexts, ms[False], ms[True], strict=True):
    print(f"context {n:5d}: without cache {plain:7.2f} ms, with cache {cached:5.2f} ms, "
          f"speed-up {plain / cached:6.1f}x")

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
left.plot(contexts, ms[False], "o-", label="without cache (whole context)")
left.plot(contexts, ms[True], "o-", label="with cache (newest position)")
left.set(xscale="log", yscale="log", xlabel="context length n", ylabel="ms per token",
         title="one decoding step")
left.legend()
right.plot(contexts, [p / c for p, c in zip(ms[False], ms[True], strict=True)], "o-")
right.set(xscale="log", yscale="log", xlabel="context length n", ylabel="speed-up (×)",
          title="measured speed-up of the cache")
for ax in (left, right):
    ax.set_xticks(contexts, [str(n) for n in contexts])
    ax.minorticks_off()
fig.tight_layout()
plt.show()

# %% [markdown] nbgrader={"grade_id": "q5_cache_payoff", "solution": true, "grade": true, "points": 2}
# ### Question 3.1 — when a KV cache stops paying off
#
# (a) With notebook 4's count of multiplications per decoding step, what speed-up does the
# cache predict for one step at context length $n$ (for this model, $n \le$ `block_size`)?
# Compare with the measured speed-ups above: how do they grow with $n$, how close do they come
# to the prediction, and why do they fall short of it? (b) Name two situations in which the
# cache saves little or nothing, or costs more than it saves, and say why. One of them is in
# your `generate`.
#
# ### BEGIN SOLUTION
# **Model answer.** (a) Without the cache a step runs every layer on all $n$ positions, each
# costing $12d^2$ multiplications for the projections and the MLP and $2nd$ for attention
# (the full $n \times n$ scores): $L\,n\,(12d^2 + 2nd)$. With it, a step runs the newest
# position only, which attends to $n$ keys ($n - 1$ cached and its own): $L\,(12d^2 + 2nd)$.
# The predicted speed-up is therefore exactly $n$. The measured speed-up grows with $n$ but
# stays far below $n$ at every context of the table, the longest included: a count of
# multiplications assumes that each one takes the same time, and here they do not. A cached
# step does little arithmetic, so costs that a count ignores weigh on it: a fixed cost per
# step (Python, dozens of module calls and small operations per layer), and copying its
# whole cache at every layer (`torch.cat` appends one key and value by writing a new
# tensor). Its products are matrix–vector products, in which each weight and each cached
# key or value is used for a single multiply-add once read, so its speed is limited by moving
# data (memory bandwidth), not by arithmetic; the uncached step multiplies matrices by
# matrices, re-using each weight for all $n$ positions, and runs many more multiplications per
# second. The measured speed-up is $n$ times the ratio of the two steps' rates
# (multiplications per second), and that ratio stays well below 1 at long contexts too.
#
# (b) Any two of: **past `block_size`** with absolute positions, every position shifts as the
# window slides, the cached keys (computed with the old position embeddings) are invalid and
# each step recomputes the whole window: no saving at all. With relative positions such as
# RoPE, a rolling cache that drops the oldest position can still be reused, but only as an
# approximation: the cached keys and values of layers 2 and above were computed from hidden
# states that attended to the tokens since evicted, which a fresh pass over the window would
# not see. **Memory**: the cache holds $2 \cdot L \cdot n \cdot d$ numbers per sequence; with
# long contexts and large batches it outgrows the weights and a step becomes bound by reading
# it. **A single new token**: step 1 is the prefill, the same full pass over the prompt with
# or without the cache, so generating one token (scoring or classifying a text) saves nothing
# and only fills memory. (It takes only a few tokens to save most of the work: by notebook 4's
# count, $T$ tokens after a long prompt save about $(T - 1)/T$ of the multiplications, 75 % for
# $T = 4$ after $P = 1000$.) **Tiny models or short contexts**, as measured: fixed overhead
# dominates and the speed-up is small. **Changing the past** (editing an earlier token): the
# cached keys and values from the first changed position on are invalid and must be
# recomputed.
#
# **Rubric (2 points).** 1 point: (a) the predicted speed-up of exactly $n$ with the reason
# (the same cost per position, $n$ positions against one) (½); a description of the measured
# speed-ups that agrees with the student's own table (how they grow with $n$, what fraction of
# $n$ they reach at short and long contexts), with a reason the count leaves out: fixed
# per-step costs (Python, module calls, small operations, copying the cache) or matrix–vector
# products limited by memory traffic rather than arithmetic (½). No credit for "the measured
# speed-up approaches $n$" unless the table shows it. 1 point: (b) two valid situations with
# reasons, ½ each; the block_size window must be one of them or be explained correctly if
# named (a rolling cache with relative positions approximates recomputation, it does not
# equal it); "short outputs" earns its ½ only for a single token, or with the saving of
# about $(T - 1)/T$ stated.
# ### END SOLUTION

# %% [markdown]
# ## 4. Beam search
#
# Greedy decoding picks the most likely token at each step, but the most likely *sequence*
# can start with a less likely token. **Beam search** keeps the `beam_width` best partial
# sequences (beams) instead of one. Here is a model where greedy decoding provably misses:
# a bigram model over five tokens whose next-token probabilities are written out by hand.
# From `<s>` it prefers `a` (0.55) over `b` (0.45); after `a` it is unsure, after `b` it is
# nearly certain of `c`. Every sequence through `a` has probability at most
# $0.55 \times 0.35 = 0.19$, while `b c` has $0.45 \times 0.9 = 0.41$.

# %%
class BigramLM(nn.Module):
    """Next-token log-probabilities from a (V, V) table, with TinyLM's interface."""

    def __init__(self, probabilities: list[list[float]]) -> None:
        super().__init__()
        self.config = LMConfig(vocab_size=len(probabilities), block_size=8)
        self.log_probs = nn.Parameter(torch.tensor(probabilities).log(), requires_grad=False)

    def forward(self, idx, cache=None, use_cache=False):
        return self.log_probs[idx], None


trap_tokens = ["<s>", "a", "b", "c", "d"]
trap = BigramLM([
    # next:  <s>   a     b     c     d
    [0.00, 0.55, 0.45, 0.00, 0.00],  # after <s>
    [0.00, 0.32, 0.00, 0.35, 0.33],  # after a
    [0.00, 0.05, 0.00, 0.90, 0.05],  # after b
    [0.00, 0.40, 0.30, 0.20, 0.10],  # after c
    [0.00, 0.40, 0.30, 0.20, 0.10],  # after d
])
greedy = generate(trap, torch.tensor([[0]]), 2, temperature=0)
print("greedy:", " ".join(trap_tokens[i] for i in greedy[0, 1:]))

# %% [markdown]
# **Task.** `beam_search(model, idx, max_new_tokens, beam_width, eos_id=None, alpha=0.0)`
# continues **one** prompt `idx` `(1, T)`; `model` has `TinyLM`'s interface (call it without
# the cache, on at most the last `block_size` ids). Follow this procedure exactly:
# 1. Start with one live beam: the prompt, with log-probability 0.
# 2. At each of `max_new_tokens` steps, extend every live beam by every token of the
#    vocabulary; the score of an extension is the beam's log-probability plus
#    `log_softmax` of the model's last-position logits at that token. Keep the `beam_width`
#    extensions with the highest scores over all beams (all of them if there are fewer). A
#    kept extension that ends with `eos_id` is **finished** and leaves the live beams. Stop
#    early when no beam is live.
# 3. After the last step the live beams are finished too. Return the finished hypothesis with
#    the highest **length-normalised** score $\log p / L^\alpha$, where $L$ is its number of
#    new tokens (`eos_id` included): `alpha = 0` compares plain log-probabilities, `alpha = 1`
#    log-probability per token.
#
# Return `(tokens, log_prob)`: the new tokens of that hypothesis as a 1-d `torch.long` tensor
# (without the prompt), and its log-probability (not normalised) as a Python `float`. Batch the
# live beams into one model call per step: stack them into a `(beams, T')` tensor (they all
# have the same length).
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "beam", "solution": true}
def beam_search(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    beam_width: int,
    eos_id: int | None = None,
    alpha: float = 0.0,
) -> tuple[Tensor, float]:
    """The best continuation of the prompt idx (1, T) found by beam search, and its log-probability."""
    ### BEGIN SOLUTION
    model.eval()
    block_size = model.config.block_size
    prompt = idx[0]
    live = [(prompt, 0.0)]
    finished = []
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits, _ = model(torch.stack([tokens[-block_size:] for tokens, _ in live]))
            totals = torch.tensor([score for _, score in live], dtype=torch.float64)[:, None]
            totals = totals + torch.log_softmax(logits[:, -1].double(), dim=-1)
            best = totals.flatten().topk(min(beam_width, totals.numel()))
            extended = []
            for score, flat in zip(best.values.tolist(), best.indices.tolist(), strict=True):
                beam, token = divmod(flat, totals.size(1))
                tokens = torch.cat([live[beam][0], prompt.new_tensor([token])])
                (finished if token == eos_id else extended).append((tokens, score))
            live = extended
            if not live:
                break
    finished.extend(live)
    tokens, score = max(finished, key=lambda h: h[1] / (len(h[0]) - len(prompt)) ** alpha)
    return tokens[len(prompt):], score
    ### END SOLUTION


# %%
for width in (1, 2):
    tokens, log_prob = beam_search(trap, torch.tensor([[0]]), 2, width)
    print(f"beam width {width}: {' '.join(trap_tokens[i] for i in tokens)}, "
          f"probability {math.exp(log_prob):.3f}")

# %% nbgrader={"grade_id": "q5_beam", "grade": true, "locked": true}
grader.check("q5_beam")

# %% [markdown]
# ### Greedy, beams and sampling on a trained model
#
# To compare decoders on real text, we train a small `TinyLM` on the Python documentation
# (notebook 3's corpus), through PyTorch's attention only: a 2-layer, 64-wide model on
# windows of 64 characters, 600 steps of 16 windows (about 30 seconds; in quick mode 100
# steps, so the quick model writes worse text).

# %%
text = load_corpus("pydoc").text
tokenizer = CharTokenizer.from_text(text)
data = tokenizer.encode(text)
char_config = LMConfig(vocab_size=tokenizer.vocab_size, block_size=64, n_layer=2, n_head=4, d_model=64)
steps, batch_size = (100, 16) if QUICK else (600, 16)
torch.manual_seed(0)
char_lm = TinyLM(char_config)
optimizer = torch.optim.AdamW(char_lm.parameters(), lr=3e-3)
print(f"{sum(p.numel() for p in char_lm.parameters()):,} parameters, {steps} steps")

# %%
# NBVAL_IGNORE_OUTPUT
char_lm.train()
bar = tqdm(range(steps), unit="step")
for _ in bar:
    starts = torch.randint(len(data) - char_config.block_size - 1, (batch_size, 1))
    offsets = torch.arange(char_config.block_size)
    x, y = data[starts + offsets], data[starts + offsets + 1]
    logits, _ = char_lm(x)
    loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    bar.set_postfix(loss=f"{loss.item():.2f}")
char_lm.eval()
print(f"last training loss {loss.item():.2f} nats per character")

# %% [markdown]
# Each decoder continues the same prompt up to the block size (44 characters). The table gives the
# log-probability of the continuation under the model (higher is likelier) and the text.

# %%
def sequence_log_prob(model: TinyLM, prompt: Tensor, new_tokens: Tensor) -> float:
    """Log-probability of new_tokens (1-d) after prompt (1, T), both within one block."""
    ids = torch.cat([prompt[0], new_tokens])
    with torch.no_grad():
        logits, _ = model(ids[None, :-1])
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)[-len(new_tokens):]
    return log_probs[torch.arange(len(new_tokens)), new_tokens].sum().item()


prompt = tokenizer.encode("The for statement is").unsqueeze(0)
new = char_config.block_size - prompt.size(1)  # the whole text fits in one block
rows = []
for width in (1, 2, 4, 8):
    tokens, log_prob = beam_search(char_lm, prompt, new, width)
    rows.append(("greedy" if width == 1 else f"beam, width {width}", log_prob, tokens))
for seed in (1, 2):
    out = generate(char_lm, prompt, new, top_k=5, generator=torch.Generator().manual_seed(seed))
    tokens = out[0, prompt.size(1):]
    rows.append((f"top-5 sampling, seed {seed}", sequence_log_prob(char_lm, prompt, tokens), tokens))
print(f"{'decoder':<24}{'log p':>8}  continuation of {tokenizer.decode(prompt[0])!r}")
for label, log_prob, tokens in rows:
    print(f"{label:<24}{log_prob:>8.1f}  {tokenizer.decode(tokens)!r}")

# %% [markdown] nbgrader={"grade_id": "q5_beam_diversity", "solution": true, "grade": true, "points": 2}
# ### Question 4.1 — what beam search does to diversity
#
# (a) Read your table: how do the log-probabilities and the texts of greedy decoding, beam
# search of growing width and top-k sampling compare? Did each wider beam find a likelier
# continuation, and what do the likeliest texts look like? (b) Why do the beams of one search
# tend to be near-copies of each other, and why does likelier text often read worse
# (repetitive, generic)? (c) Without an end-of-sequence token every hypothesis has the same
# length; with one, why does beam search without length normalisation favour short outputs,
# and what does `alpha = 1` change?
#
# ### BEGIN SOLUTION
# **Model answer.** (a) The numbers and texts depend on the run: a good answer reports what
# its own table shows, with the log-probabilities. What to look for: beam search maximises
# the log-probability only approximately, so a wider beam is not guaranteed to do better than
# a narrower one, or even than greedy (it keeps other prefixes, and can drop the one that a
# narrower search would have completed); the gains with width need not be steady either, and
# can come in one jump at one width. The likeliest texts are often degenerate: a word or
# phrase repeated in a loop, or a long run of spaces and line breaks (the documentation has
# many indented lines, and once a run of spaces has started each further space is very
# likely), which costs little log-probability per character and says nothing. Top-k samples
# are often less likely than the beams' outputs, but not always: a sample that falls into
# such a run can beat a beam. The sampled texts vary, and two seeds give two different texts,
# while greedy decoding and beam search are deterministic and always return the same one.
# (b) The kept beams usually share a long prefix and differ in the last few tokens: each
# step keeps the best extensions of the same few parents, so the beam collapses onto one
# region of the space; beam search reduces diversity both within a search and across runs
# (it is deterministic).
# Maximising probability favours frequent, safe continuations: a model trained on varied text
# spreads its probability over many specific continuations, so the single most likely one is
# generic, and once a phrase repeats, repeating it again becomes likelier still (the loops and
# runs of (a)). (c) Each token multiplies the probability by a number below 1, so the
# log-probability only decreases with length: ending early is rewarded and short hypotheses
# win. Dividing by $L^\alpha$ with $\alpha = 1$ compares the average log-probability per
# token, removing that bias (in between for $0 < \alpha < 1$).
#
# **Rubric (2 points).** ½: (a) a reading that agrees with the student's own table: which
# decoders reached the higher log-probabilities and what their texts look like, with the
# degenerate high-probability runs (repetition, whitespace) named where the table has them,
# and sampling's variety across seeds. No credit for a general rule that the table's numbers
# contradict (such as "each wider beam is likelier" or "sampling is always less likely"), or
# for numbers that are not in it. 1: (b) beams share prefixes / collapse, and high-probability
# text is generic or repetitive, each ½. ½: (c) log-probability falls with length, so short
# outputs win; normalising by length removes the bias.
# ### END SOLUTION

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check
# that every `grader.check` shows the points you expect, and save the notebook.
# Then run the cell below: it checks the saved notebook and says what is still missing.
