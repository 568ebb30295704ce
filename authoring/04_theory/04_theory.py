# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 4 — Theory: what a transformer costs, and why it trains
#
# The first three notebooks built and trained a transformer. This one asks what it costs
# (time and memory, while training and while generating), why its building blocks work, and
# what goes wrong without them. Each section pairs a short derivation on paper with a few
# lines of code that check it numerically.
#
# **You will learn to**
# 1. count the multiplications and memory of self-attention, and see why they are quadratic
#    in the sequence length;
# 2. read softmax attention as a kernel smoother, and turn it into linear attention;
# 3. initialise a deep residual network so the signal neither explodes nor dies;
# 4. derive backpropagation through time for a recurrent network, and explain its failure
#    modes on long sequences;
# 5. price text generation with and without a key/value cache;
# 6. count the parameters of a transformer language model.
#
# **Prerequisites**: matrix calculus (the chain rule with vectors), expectation and variance,
# Big-O notation, notebooks 1 and 2.
#
# **Time**: about 4 to 5 hours, most of it on paper. Every cell runs in seconds.
#
# **How to work**: there are two kinds of answers.
# - *Code*: fill in each `# YOUR CODE HERE`, delete the `raise NotImplementedError()` line
#   below it and run the `grader.check(...)` cell, which runs the public tests. Hidden tests
#   run when your notebook is graded.
# - *Written*: derivations go in the cells marked `YOUR ANSWER HERE` (double-click to edit).
#   Write mathematics in LaTeX: inline between single dollar signs, and a displayed
#   equation between two lines that hold only a double dollar sign, with an empty line
#   before and after the block: double-click any cell of this notebook to see how. Written
#   that way, equations render both in JupyterLab and in Colab. These answers are graded by
#   hand: show your steps, a bare result earns little.
#
# **How to check and submit**: the first code cell sets the notebook up in Colab (it installs
# the course helpers and this notebook's tests; in JupyterLab it does nothing). When you are
# done, restart the kernel and run all cells, save, and read the report of the last cell: it
# lists any answer still missing, any cell that raised or did not run, and any check short of
# its public points. Then hand in the saved `.ipynb` file as your course asks.

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
from collections.abc import Callable

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.checking import Grader
from tfcourse.theory import (
    LMConfig,
    StandardLM,
    count_parameters,
    largest_intermediate,
    residual_stream_variances,
)

torch.manual_seed(0)
grader = Grader("tests")

# %% [markdown]
# ## 1. What self-attention costs
#
# Stack the $T$ input vectors of a sequence as the rows of $X \in \mathbb{R}^{T \times d}$. With
# projections $W_Q, W_K \in \mathbb{R}^{d \times D}$ and $W_V \in \mathbb{R}^{d \times M}$, the
# queries, keys and values are $Q = XW_Q \in \mathbb{R}^{T \times D}$,
# $K = XW_K \in \mathbb{R}^{T \times D}$ and $V = XW_V \in \mathbb{R}^{T \times M}$, and
# self-attention returns
#
# $$
# \operatorname{Att}(Q, K, V) = \operatorname{softmax}\!\left(\frac{QK^\top}{\sqrt{D}}\right) V \in \mathbb{R}^{T \times M}.
# $$
#
# Here $Q$, $K$ and $V$ are given: we price the attention itself, not the projections.
#
# **Counting rules.** Multiplying an $m \times k$ matrix by a $k \times n$ matrix the direct
# way takes $m \cdot k \cdot n$ scalar multiplications (each of the $mn$ entries is a dot
# product of length $k$). Count the multiplications of the **two matrix products** in the
# formula. Leave out the scaling by $1/\sqrt{D}$ and the softmax: they cost a few operations
# per score, a lower-order term you will meet in the written question.
#
# For **memory**, count the floats that must exist at the same time, at the peak, besides the
# inputs $Q$, $K$, $V$: the intermediate results and the output. Assume that every elementwise
# step (scaling, exponentials, normalising a row) overwrites its input in place, and leave out
# the $O(T)$ bookkeeping of the softmax (each row's maximum and sum): count only the $T \times T$
# and $T \times M$ arrays.
#
# **Task.** Write `attention_multiplications(T, D, M)` and `attention_memory(T, D, M)`; both
# return an `int`.

# %% nbgrader={"grade_id": "cost_functions", "solution": true}
def attention_multiplications(T: int, D: int, M: int) -> int:
    """Multiplications in the two matrix products of softmax(QKᵀ/√D)V, Q, K: (T, D), V: (T, M)."""
    ### BEGIN SOLUTION
    scores = T * T * D  # QKᵀ: T·T dot products of length D
    mixing = T * T * M  # weights @ V: T·M dot products of length T
    return scores + mixing
    ### END SOLUTION


def attention_memory(T: int, D: int, M: int) -> int:
    """Peak number of floats held besides Q, K, V: intermediate results and output."""
    ### BEGIN SOLUTION
    # The scores become the weights in place; all T×T of them are needed while the
    # output is formed, so weights and output coexist.
    return T * T + T * M
    ### END SOLUTION


# %% [markdown]
# What this means for one head with $D = M = 64$ as the sequence gets longer:

# %%
print(f"{'T':>6} {'multiplications':>17} {'memory (float32)':>17}")
for T in (512, 2048, 8192, 32768):
    mults = attention_multiplications(T, 64, 64)
    mebibytes = attention_memory(T, 64, 64) * 4 / 2**20
    print(f"{T:>6} {mults:>17,} {mebibytes:>13,.0f} MiB")

# %% nbgrader={"grade_id": "q4_cost", "grade": true, "locked": true}
grader.check("q4_cost")

# %% [markdown]
# ### Question 1.1 — how the cost grows
#
# (a) How do the time (multiplications) and the memory of attention grow with $T$? What
# happens to each when the sequence becomes twice as long?
#
# (b) The projections that produce $Q$, $K$ and $V$ cost $Td(2D + M)$ multiplications. Above
# roughly which $T$ does the attention itself cost more than the projections? What does this
# mean for a model whose context grows from 2,048 to 32,768 tokens?

# %% [markdown] nbgrader={"grade_id": "q4_cost_growth", "solution": true, "grade": true, "points": 2}
# **Answer 1.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) Time $T^2(D + M)$ and memory $T^2 + TM$: both are quadratic in $T$
# (for memory as soon as $T > M$). A sequence twice as long costs four times the
# multiplications and nearly four times the memory. The scaling and softmax add a constant
# number of operations per score, $O(T^2)$, which does not change the picture.
#
# (b) The projections grow linearly in $T$. Attention costs more once
# $T(D + M) > d(2D + M)$, that is once $T$ exceeds $d$ up to a constant factor
# ($T > 1.5\,d$ when $D = M$). From 2,048 to 32,768 tokens (16 times longer) the attention
# work and the memory of the weights grow 256 times: for one head of one layer at
# $T = 32{,}768$ the weights alone take 4 GiB in float32 (table above). This is why
# long-context implementations never store the $T \times T$ matrix (FlashAttention computes
# it block by block: memory linear in $T$, time still quadratic) or replace softmax
# attention altogether (section 2).
#
# **Rubric (2 points).** 1 point for (a): both quadratic in $T$ with the factor four for
# twice the length (½ point if only time or only memory is right). 1 point for (b): the
# crossover at $T$ of the order of $d$, with a consequence for long contexts (the factor 256,
# or the memory of the $T \times T$ matrix); ½ point for only one of the two. No credit for
# "it grows fast" without an order.
# ### END SOLUTION

# %% [markdown]
# ## 2. Attention as a kernel smoother
#
# Write $Q_i$ for row $i$ of $Q$ and $K_j$, $V_j$ for row $j$ of $K$ and $V$ (all row
# vectors), and define the similarity of a query and a key as
#
# $$
# \operatorname{sim}(q, k) = \exp\!\left(\frac{q k^\top}{\sqrt{D}}\right).
# $$
#
# Row $i$ of softmax attention is then an average of the values, each weighted by how similar
# its key is to the query:
#
# $$
# \operatorname{Att}(Q, K, V)_i = \frac{\sum_{j=1}^{T} \operatorname{sim}(Q_i, K_j)\, V_j}{\sum_{r=1}^{T} \operatorname{sim}(Q_i, K_r)}.
# $$
#
# Statisticians call this a kernel smoother, and any positive similarity gives an attention of
# this kind. Suppose the similarity factorises through a *feature map*
# $\varphi : \mathbb{R}^{D} \to \mathbb{R}^{F}$ (row vector in, row vector out):
#
# $$
# \operatorname{sim}(q, k) = \varphi(q)\, \varphi(k)^\top.
# $$
#
# Then the order of the products can be changed, and attention no longer needs the
# $T \times T$ matrix of similarities. This is *linear attention* (Katharopoulos et al.,
# 2020, "Transformers are RNNs").
#
# **Task.** Implement both forms for single sequences (2-d tensors, no batch dimension):
# - `kernel_attention(q, k, v, sim)`: `q` is `(T_q, D)`, `k` is `(T_k, D)`, `v` is
#   `(T_k, M)`; `sim(a, b)` takes `(A, D)` and `(B, D)` and returns the `(A, B)` matrix of
#   similarities. Return the `(T_q, M)` output of the formula above.
# - `linear_attention(q, k, v, feature_map)`: the same output for
#   $\operatorname{sim}(q, k) = \varphi(q)\varphi(k)^\top$, where `feature_map` maps `(N, D)`
#   to `(N, F)` row by row. It must **never form a `(T_q, T_k)` tensor**.

# %% nbgrader={"grade_id": "kernel_functions", "solution": true}
def kernel_attention(
    q: Tensor, k: Tensor, v: Tensor, sim: Callable[[Tensor, Tensor], Tensor]
) -> Tensor:
    """Σ_j sim(q_i, k_j) v_j / Σ_r sim(q_i, k_r) for every query row i: (T_q, M)."""
    ### BEGIN SOLUTION
    weights = sim(q, k)  # (T_q, T_k)
    return (weights @ v) / weights.sum(dim=-1, keepdim=True)
    ### END SOLUTION


def linear_attention(
    q: Tensor, k: Tensor, v: Tensor, feature_map: Callable[[Tensor], Tensor]
) -> Tensor:
    """Kernel attention with sim(q, k) = φ(q)φ(k)ᵀ, without a (T_q, T_k) intermediate."""
    ### BEGIN SOLUTION
    phi_q, phi_k = feature_map(q), feature_map(k)  # (T_q, F), (T_k, F)
    # Summed over the keys once, shared by every query: (F, M) and (F,).
    state = phi_k.T @ v
    normaliser = phi_k.sum(dim=0)
    return (phi_q @ state) / (phi_q @ normaliser).unsqueeze(-1)
    ### END SOLUTION


# %% [markdown]
# The cell below checks the identity numerically, in float64, and then measures the largest
# tensor each form creates for a sequence of 2,048 tokens (with
# `tfcourse.theory.largest_intermediate`, which watches every tensor operation). The feature
# map $\varphi(x) = \operatorname{elu}(x) + 1$ is positive, so its similarities are too.

# %%
def exp_similarity(a: Tensor, b: Tensor) -> Tensor:
    """sim(q, k) = exp(q·k/√D) for all pairs of rows."""
    return torch.exp(a @ b.T / math.sqrt(a.size(-1)))


def elu_plus_one(x: Tensor) -> Tensor:
    """A positive feature map, applied entrywise."""
    return F.elu(x) + 1


q, k, v = (torch.randn(6, 4, dtype=torch.float64) for _ in range(3))
softmax_rows = torch.softmax(q @ k.T / math.sqrt(4), dim=-1) @ v
kernel_rows = kernel_attention(q, k, v, exp_similarity)
print("kernel form equals softmax attention:", torch.allclose(kernel_rows, softmax_rows, atol=1e-12))

T, D = 2048, 16
q, k, v = torch.randn(T, D), torch.randn(T, D), torch.randn(T, D)
_, quadratic = largest_intermediate(kernel_attention, q, k, v, exp_similarity)
_, linear = largest_intermediate(linear_attention, q, k, v, elu_plus_one)
print(f"largest tensor created for T = {T}: kernel_attention {quadratic:,} entries, "
      f"linear_attention {linear:,} entries")

# %% nbgrader={"grade_id": "q4_kernel", "grade": true, "locked": true}
grader.check("q4_kernel")

# %% [markdown]
# ### Question 2.1 — the kernel view and linear attention
#
# (a) Starting from the definition of the softmax, prove that row $i$ of
# $\operatorname{softmax}(QK^\top/\sqrt{D})\,V$ equals the kernel formula above.
#
# (b) Substitute $\operatorname{sim}(q, k) = \varphi(q)\varphi(k)^\top$. Show how all $T$
# rows can be computed without forming a $T \times T$ matrix. Which quantities are computed
# once and shared by all queries? Give the number of multiplications (in terms of $T$, $F$,
# $M$) and the extra memory, and compare them with section 1.
#
# (c) Name one condition or limitation of this trick: for example what $\varphi$ must satisfy,
# whether the softmax's own similarity has such a $\varphi$, or what a causal mask changes.

# %% [markdown] nbgrader={"grade_id": "q4_kernel_derivation", "solution": true, "grade": true, "points": 4}
# **Answer 2.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) Let $S = QK^\top/\sqrt{D}$, so $S_{ij} = Q_i K_j^\top/\sqrt{D}$ and
# $\exp(S_{ij}) = \operatorname{sim}(Q_i, K_j)$. The softmax normalises each row of $S$:
#
# $$
# A_{ij} = \frac{\exp(S_{ij})}{\sum_{r=1}^{T} \exp(S_{ir})} = \frac{\operatorname{sim}(Q_i, K_j)}{\sum_{r=1}^{T} \operatorname{sim}(Q_i, K_r)}.
# $$
#
# Row $i$ of $AV$ is $\sum_j A_{ij} V_j$. The denominator does not depend on $j$, so it comes
# out of the sum, which gives the kernel formula.
#
# (b) With $\operatorname{sim}(q, k) = \varphi(q)\varphi(k)^\top$ the numerator is
# $\sum_j \varphi(Q_i)\varphi(K_j)^\top V_j$, and by associativity
#
# $$
# \operatorname{Att}_i = \frac{\varphi(Q_i)\, S}{\varphi(Q_i)\, z}, \qquad S = \sum_{j=1}^{T} \varphi(K_j)^\top V_j = \varphi(K)^\top V \in \mathbb{R}^{F \times M}, \qquad z = \sum_{r=1}^{T} \varphi(K_r)^\top \in \mathbb{R}^{F}.
# $$
#
# $S$ and $z$ do not depend on $i$: they are computed once, in $TFM$ multiplications (and
# $z$ in additions only). Each query then costs $F \cdot M + F$ multiplications, so the total
# is about $2TFM$ (plus evaluating $\varphi$, $O(TDF)$ for simple maps): linear in $T$,
# instead of $T^2(D + M)$. The extra memory is $FM + F$ for $S$ and $z$, plus $T F$ for the
# features, instead of the $T^2$ weights.
#
# (c) Any of: the similarities must be positive (the weights are an average), so $\varphi$
# must be non-negative, e.g. $\operatorname{elu} + 1$, else the denominator can vanish or
# change sign. The exponential similarity of softmax has no finite-dimensional $\varphi$:
# linear attention uses a different, usually less sharp, similarity, or approximates the
# exponential with random features (Performer), which needs a large $F$. With a causal mask
# the sums run over $j \le i$: $S_i = S_{i-1} + \varphi(K_i)^\top V_i$ is a running state of
# fixed size $F \times M$, so generation is an RNN with constant memory, but training needs
# prefix sums instead of one matrix product.
#
# **Rubric (4 points).** 1 point: (a) with the row-wise softmax written out and the
# denominator taken out of the sum because it does not depend on $j$ (½ point if the
# identity is only asserted). 1 point: (b) associativity, with $\varphi(K)^\top V$ and the
# normaliser $\varphi(K)^\top \mathbf{1}$ computed once and shared by all queries. 1 point:
# cost $O(TFM)$ time and $O(FM)$ (or $O(TF)$) extra memory, linear in $T$, compared with
# $T^2$ (½ point for "linear" without the symbols). 1 point: one correct condition or
# limitation from (c), with its reason.
# ### END SOLUTION

# %% [markdown]
# ## 3. Initialising a deep residual network
#
# A stack of $L$ residual blocks of width $n$ updates a residual stream $u_l \in \mathbb{R}^n$:
#
# $$
# u_{l+1} = u_l + F_l(u_l), \qquad F_l(u) = W_l \operatorname{ReLU}(u) + b_l, \qquad l = 0, \dots, L-1,
# $$
#
# with $W_l \in \mathbb{R}^{n \times n}$ and $b_l \in \mathbb{R}^{n}$ drawn at random,
# independently of each other and of the input. The input $u_0$ has independent coordinates
# with a symmetric distribution, mean zero and variance one. Expectations and variances are
# over both the input and the random initialisation.
#
# We want an initialisation such that
# - every block is unbiased given its input: $\mathbb{E}[F_l(u) \mid u] = 0$;
# - the variance of each coordinate of the stream stays of order one however deep the
#   network: precisely, $1 \le \operatorname{Var}(u_l[i]) \le 3$ for all $l \le L$, for every
#   depth $L$;
# - the blocks are not switched off: $\operatorname{Var}(u_L[i]) \ge 1.5$.
#
# **Task.** Work out the variance recursion on paper (question 3.1), then implement your
# scheme: `init_residual_branch(linear, layer, depth)` receives the `nn.Linear(n, n)` that
# holds $W_l$ (`linear.weight`) and $b_l$ (`linear.bias`), the index `layer` $= l$ (from 0)
# and `depth` $= L$, and sets both in place (use `nn.init` functions or `torch.no_grad()`).

# %% nbgrader={"grade_id": "init_scheme", "solution": true}
def init_residual_branch(linear: nn.Linear, layer: int, depth: int) -> None:
    """Initialise W_layer and b_layer of a stack of `depth` residual blocks, in place."""
    ### BEGIN SOLUTION
    # Var(u_{l+1}) = Var(u_l) (1 + n σ_l² / 2); n σ_l² / 2 = 1 / (L + l) makes
    # Var(u_l) = 1 + l / L: every block adds the same 1/L, and Var(u_L) = 2.
    width = linear.in_features
    nn.init.normal_(linear.weight, std=math.sqrt(2.0 / (width * (depth + layer))))
    nn.init.constant_(linear.bias, 0.0)
    ### END SOLUTION


# %% [markdown]
# The experiment below builds a stack of 50 blocks of width 256, feeds it 1,024 random
# inputs and measures $\operatorname{Var}(u_l[i])$ at every depth
# (`tfcourse.theory.residual_stream_variances`) for your scheme and two naive ones: He
# initialisation in every branch (right for a plain ReLU network), and PyTorch's default for
# `nn.Linear`.

# %%
def he_branch(linear: nn.Linear, layer: int, depth: int) -> None:
    """He initialisation, zero bias: keeps the variance of a plain (non-residual) ReLU net."""
    nn.init.normal_(linear.weight, std=math.sqrt(2.0 / linear.in_features))
    nn.init.zeros_(linear.bias)


def pytorch_default(linear: nn.Linear, layer: int, depth: int) -> None:
    """Keep nn.Linear's own initialisation: uniform weights and biases, scale 1/√n."""


depth = 50
schemes = {"your scheme": init_residual_branch, "He in every branch": he_branch,
           "PyTorch default": pytorch_default}
fig, ax = plt.subplots(figsize=(6.5, 4))
for label, scheme in schemes.items():
    variances = residual_stream_variances(scheme, depth)
    ax.plot(range(depth + 1), variances, label=label)
    print(f"{label:>20}: Var(u_L) = {variances[-1]:.3g}")
ax.axhspan(1, 3, color="tab:green", alpha=0.1, label="target band [1, 3]")
ax.set_yscale("log")
ax.set_xlabel("depth $l$")
ax.set_ylabel("Var$(u_l[i])$")
ax.set_title("residual-stream variance at initialisation")
ax.legend()
plt.show()

# %% nbgrader={"grade_id": "q4_init", "grade": true, "locked": true}
grader.check("q4_init")

# %% [markdown]
# ### Question 3.1 — the variance recursion
#
# Write $q_l = \operatorname{Var}(u_l[i])$ (the same for every coordinate $i$).
#
# (a) Show that $\mathbb{E}[F_l(u) \mid u] = 0$ implies
# $q_{l+1} = q_l + \operatorname{Var}(F_l(u_l)[i])$. What does this say about keeping the
# variance exactly equal to one at every depth?
#
# (b) Let the entries of $W_l$ be independent with mean zero and variance $\sigma_l^2$, and
# $b_l = 0$. Express $\operatorname{Var}(F_l(u_l)[i])$ through $n$, $\sigma_l$ and $q_l$.
# Hint: for a symmetric random variable $z$ with mean zero,
# $\mathbb{E}[\operatorname{ReLU}(z)^2] = \tfrac{1}{2}\mathbb{E}[z^2]$. You may assume that
# every coordinate of $u_l$ keeps a symmetric distribution (it does up to terms of order
# $1/n$).
#
# (c) What does He initialisation ($\sigma_l^2 = 2/n$ in every block) give for $q_L$?
#
# (d) State your choice of $\sigma_l$ (it may depend on $n$, $l$ and $L$) and prove that it
# meets the three requirements above.

# %% [markdown] nbgrader={"grade_id": "q4_init_derivation", "solution": true, "grade": true, "points": 4}
# **Answer 3.1**
#
# ### BEGIN SOLUTION
# **Model answer.** All coordinates have mean zero, so variances are second moments. Write
# $u = u_l$ and $f = F_l(u_l)$.
#
# (a) $\mathbb{E}[(u[i] + f[i])^2] = \mathbb{E}[u[i]^2] + 2\,\mathbb{E}[u[i] f[i]] + \mathbb{E}[f[i]^2]$,
# and the cross term vanishes by the tower rule:
# $\mathbb{E}[u[i] f[i]] = \mathbb{E}\big[u[i]\, \mathbb{E}[f[i] \mid u]\big] = 0$. Hence
# $q_{l+1} = q_l + \operatorname{Var}(f[i]) \ge q_l$: the variance can only grow along the
# stream. It stays exactly one at every depth only if $\operatorname{Var}(F_l) = 0$, i.e.
# every block outputs zero at initialisation (zero-initialised last layers, as in Fixup or
# ReZero). That meets "unit variance" but switches the blocks off; with blocks that
# contribute, the best we can do is keep the growth bounded.
#
# (b) $f[i] = \sum_j W_l[i,j] \operatorname{ReLU}(u[j])$. The weights are independent of $u$
# and of each other, with mean zero, so all cross terms of the square vanish:
#
# $$
# \operatorname{Var}(f[i]) = \sum_{j=1}^{n} \mathbb{E}\big[W_l[i,j]^2\big]\, \mathbb{E}\big[\operatorname{ReLU}(u[j])^2\big] = n\, \sigma_l^2\, \frac{q_l}{2}, \qquad \text{so} \qquad q_{l+1} = q_l \left(1 + \frac{n \sigma_l^2}{2}\right).
# $$
#
# (c) He initialisation gives $n\sigma^2/2 = 1$, so $q_{l+1} = 2q_l$ and $q_L = 2^L$: the
# stream explodes exponentially with depth ($2^{50} \approx 10^{15}$ in the plot). Each
# block preserves the variance of its own input, but the skip connection adds the input
# again.
#
# (d) Choose $\sigma_l^2 = \dfrac{2}{n\,(L + l)}$, $b_l = 0$. Then $\mathbb{E}[F_l(u) \mid u] = 0$
# because the weights have mean zero, and $q_{l+1} = q_l \, \frac{L + l + 1}{L + l}$. The
# product telescopes:
#
# $$
# q_l = q_0 \prod_{s=0}^{l-1} \frac{L + s + 1}{L + s} = \frac{L + l}{L} = 1 + \frac{l}{L} \in [1, 2], \qquad q_L = 2.
# $$
#
# Every block adds exactly $1/L$ to the variance, whatever the depth. (Equally good: the
# constant $\sigma^2 = 2/(nL)$, which gives $q_l = (1 + 1/L)^l \le e < 3$ and
# $q_L \ge 2$; or $n\sigma^2/2 = 2^{1/L} - 1$, which gives $q_L = 2$.)
#
# **Rubric (4 points).** One point per part. (a) the cross term vanishes because of
# $\mathbb{E}[F \mid u] = 0$, so variances add, and exact unit variance forces zero blocks
# (½ point without the conclusion). (b) $n \sigma_l^2 q_l / 2$ with the reason for the
# factor ½ and for the vanishing cross terms (½ point for the result alone). (c) $q_L = 2^L$.
# (d) a scheme that meets the bounds, with a proof (telescoping product, or
# $(1 + 1/L)^L < e$); ½ point for a correct scheme without a proof. A zero-initialised
# block earns (a) but not (d): it violates $\operatorname{Var}(u_L) \ge 1.5$.
# ### END SOLUTION

# %% [markdown]
# ## 4. Backpropagation through time
#
# A recurrent network reads inputs $x_1, \dots, x_T \in \mathbb{R}^p$, carries a state
# $v_\tau \in \mathbb{R}^n$ from a given $v_0$ and predicts $\hat y_\tau \in \mathbb{R}^q$:
#
# $$
# a_\tau = W v_{\tau-1} + B x_\tau, \qquad v_\tau = \phi(a_\tau), \qquad \hat y_\tau = C v_\tau, \qquad \tau = 1, \dots, T.
# $$
#
# The activation is the leaky ReLU, applied entrywise: $\phi(a) = a$ for $a > 0$ and
# $\phi(a) = \alpha a$ otherwise, with a slope $0 \le \alpha \le 1$. The loss is a sum over time,
# $\ell = \sum_{\tau=1}^{T} \ell_\tau(\hat y_\tau)$. Write
# $g_\tau = \partial \ell_\tau / \partial \hat y_\tau \in \mathbb{R}^q$ (a column vector) and
# $\Phi_\tau = \operatorname{diag}(\phi'(a_\tau))$, a diagonal matrix whose entries are $1$ or
# $\alpha$. The same $W$ acts at every step, so $W[i,j]$ reaches the loss through every
# $a_\tau$.
#
# ### Question 4.1 — the gradient
#
# Derive $\partial \ell / \partial W[i,j]$ exactly.
#
# (a) Give a backward recursion for $\delta_\tau = \partial \ell / \partial a_\tau$, and the
# gradient in terms of the $\delta_\tau$ and the states.
#
# (b) Write the same gradient as an explicit double sum, over the step $t$ where a loss is
# incurred and the earlier step $\tau \le t$ where $W$ acted, of products of matrices.

# %% [markdown] nbgrader={"grade_id": "q4_bptt_derivation", "solution": true, "grade": true, "points": 3}
# **Answer 4.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) $W[i,j]$ appears directly only in
# $a_\tau[i] = \sum_k W[i,k]\, v_{\tau-1}[k] + (B x_\tau)[i]$, with
# $\partial a_\tau[i] / \partial W[i,j] = v_{\tau-1}[j]$ when $v_{\tau-1}$ is held fixed.
# The dependence of $v_{\tau-1}$ on $W$ is accounted for by summing over all steps (the
# multivariable chain rule):
#
# $$
# \frac{\partial \ell}{\partial W[i,j]} = \sum_{\tau=1}^{T} \delta_\tau[i]\, v_{\tau-1}[j], \qquad \text{i.e.} \qquad \frac{\partial \ell}{\partial W} = \sum_{\tau=1}^{T} \delta_\tau\, v_{\tau-1}^\top.
# $$
#
# $a_\tau$ influences the loss through $v_\tau$, which feeds $\hat y_\tau$ and $a_{\tau+1}$.
# With $\delta_{T+1} = 0$, going backwards from $\tau = T$:
#
# $$
# \delta_\tau = \Phi_\tau \left( C^\top g_\tau + W^\top \delta_{\tau+1} \right).
# $$
#
# (b) Unrolling the recursion, the loss at step $t$ reaches $a_\tau$ through the chain
# $a_\tau \to v_\tau \to a_{\tau+1} \to \dots \to v_t$, whose Jacobian is
# $\partial v_t / \partial v_\tau = \Phi_t W \Phi_{t-1} W \cdots \Phi_{\tau+1} W$ (the identity
# when $t = \tau$). Hence
#
# $$
# \frac{\partial \ell}{\partial W[i,j]} = \sum_{t=1}^{T} \sum_{\tau=1}^{t} \Big[ \Phi_\tau \big(\Phi_t W \Phi_{t-1} W \cdots \Phi_{\tau+1} W\big)^\top C^\top g_t \Big]_i \; v_{\tau-1}[j].
# $$
#
# **Rubric (3 points).** 1 point: the gradient as a sum over steps of
# $\delta_\tau[i]\, v_{\tau-1}[j]$ (or the outer product), with the reason for the sum (the
# shared $W$). 1 point: the recursion for $\delta_\tau$ with $\Phi_\tau$, both terms
# ($C^\top g_\tau$ and $W^\top \delta_{\tau+1}$) and the boundary condition. 1 point: the
# explicit double sum with the product of Jacobians in the right order (½ point if the
# transposes or the order are wrong). A derivation that forgets that $v_{\tau-1}$ depends on
# $W$ (only the last step's term) earns at most 1 point.
# ### END SOLUTION

# %% [markdown]
# **Task.** Implement the recursion of 4.1(a) for the squared error
# $\ell_\tau = \frac{1}{2}\lVert \hat y_\tau - y_\tau \rVert^2$, so $g_\tau = \hat y_\tau - y_\tau$.
# `bptt_grad_W(W, B, C, xs, ys, v0, slope)` receives `W` `(n, n)`, `B` `(n, p)`, `C`
# `(q, n)`, inputs `xs` `(T, p)`, targets `ys` `(T, q)`, the initial state `v0` `(n,)` and
# the slope $\alpha$, and returns $\partial \ell / \partial W$, `(n, n)`. Do not use autograd
# (`backward`, `torch.autograd`): run the forward pass, keep what the backward pass needs,
# then go backwards in time.

# %% nbgrader={"grade_id": "bptt_functions", "solution": true}
def bptt_grad_W(
    W: Tensor, B: Tensor, C: Tensor, xs: Tensor, ys: Tensor, v0: Tensor, slope: float
) -> Tensor:
    """∂ℓ/∂W for ℓ = Σ_τ ½‖C v_τ − y_τ‖², v_τ = leaky_relu(W v_{τ-1} + B x_τ), by BPTT."""
    ### BEGIN SOLUTION
    # Forward: every pre-activation and state is needed on the way back.
    states, pre_activations = [v0], []
    for x in xs:
        a = W @ states[-1] + B @ x
        pre_activations.append(a)
        states.append(torch.where(a > 0, a, slope * a))
    grad = torch.zeros_like(W)
    delta_next = torch.zeros_like(v0)  # δ_{T+1} = 0
    for tau in reversed(range(len(xs))):
        g = C @ states[tau + 1] - ys[tau]
        upstream = C.T @ g + W.T @ delta_next  # ∂ℓ/∂v_τ
        a = pre_activations[tau]
        delta = torch.where(a > 0, upstream, slope * upstream)
        grad += torch.outer(delta, states[tau])
        delta_next = delta
    return grad
    ### END SOLUTION


# %% [markdown]
# Compare with autograd on a small random problem:

# %%
n, p, q_out, steps = 5, 3, 2, 7
W, B, C = torch.randn(n, n) / math.sqrt(n), torch.randn(n, p), torch.randn(q_out, n)
xs, ys, v0 = torch.randn(steps, p), torch.randn(steps, q_out), torch.randn(n)
W_leaf = W.clone().requires_grad_(True)
v, loss = v0, 0.0
for x, y in zip(xs, ys, strict=True):
    v = F.leaky_relu(W_leaf @ v + B @ x, negative_slope=0.1)
    loss = loss + 0.5 * (C @ v - y).square().sum()
loss.backward()
print("matches autograd:", torch.allclose(bptt_grad_W(W, B, C, xs, ys, v0, 0.1), W_leaf.grad, atol=1e-5))

# %% nbgrader={"grade_id": "q4_bptt", "grade": true, "locked": true}
grader.check("q4_bptt")

# %% [markdown]
# In your formula the loss at step $t$ reaches step $\tau$ through the product
# $\partial v_t / \partial v_\tau = \Phi_t W \cdots \Phi_{\tau+1} W$ of $t - \tau$ factors.
# The cell below follows one sequence of 60 steps (state size 32, slope $\alpha = 0.5$) and
# plots the spectral norm $\lVert \partial v_T / \partial v_{T-k} \rVert$ against the
# distance $k$, for $W$ equal to a random orthogonal matrix times a gain.

# %%
n, p, steps, slope = 32, 8, 60, 0.5
B_demo, xs_demo = torch.randn(n, p) / math.sqrt(p), torch.randn(steps, p)
orthogonal = torch.linalg.qr(torch.randn(n, n)).Q
fig, ax = plt.subplots(figsize=(6.5, 4))
for gain in (1.0, 1.5, 2.5):
    W_demo = gain * orthogonal
    v, factors = torch.zeros(n), []
    for x in xs_demo:
        a = W_demo @ v + B_demo @ x
        v = F.leaky_relu(a, negative_slope=slope)
        factors.append(torch.where(a > 0, 1.0, slope)[:, None] * W_demo)  # ∂v_τ/∂v_{τ-1}
    jacobian, norms = torch.eye(n), []
    for factor in reversed(factors):
        jacobian = jacobian @ factor
        norms.append(torch.linalg.matrix_norm(jacobian, ord=2).item())
    ax.plot(range(1, steps + 1), norms, label=f"W = {gain} × orthogonal")
ax.set_yscale("log")
ax.set_xlabel("distance $k$ (steps back in time)")
ax.set_ylabel(r"$\Vert \partial v_T / \partial v_{T-k} \Vert$")
ax.legend()
plt.show()

# %% [markdown]
# ### Question 4.2 — long sequences
#
# (a) Why does the memory that backpropagation through time needs grow with the length of
# the sequence?
#
# (b) Use your formula from 4.1 to explain why the contributions of distant steps to the
# gradient explode or vanish.
#
# (c) Give one remedy for each of the three problems (the memory, exploding gradients,
# vanishing gradients), and a limitation of each remedy.

# %% [markdown] nbgrader={"grade_id": "q4_bptt_long", "solution": true, "grade": true, "points": 4}
# **Answer 4.2**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) The backward pass needs, for every step, the state $v_{\tau-1}$ (for
# the outer product) and the pattern $\phi'(a_\tau)$ (for $\Phi_\tau$), and it runs in the
# opposite order to the forward pass: everything computed forwards must be kept until the
# backward pass reaches it. That is $O(Tn)$ floats per sequence (times the batch size),
# linear in the length $T$, on top of the $O(n^2)$ parameters.
#
# (b) A term of the double sum contains $t - \tau$ factors $\Phi_s W$. Since the entries of
# $\Phi_s$ lie in $[\alpha, 1]$, its norm is at most $\lVert W \rVert^{t-\tau}$: when the
# gain of $\Phi_s W$ is below one (e.g. $\lVert W \rVert < 1$) the contributions of distant
# steps shrink geometrically and the network cannot learn long-range dependencies
# (vanishing); when the typical gain is above one (e.g. $W$ with singular values above
# $1/\alpha$) they grow geometrically and one long sequence can produce a huge update
# (exploding). The plot shows both regimes; the boundary between them is a knife edge.
#
# (c) Memory: truncated BPTT (backpropagate through the last $k$ steps only) needs $O(kn)$
# memory, but no gradient flows between steps more than $k$ apart, so longer dependencies
# cannot be learned and the gradient is biased; alternatively gradient checkpointing (keep
# every $\sqrt{T}$-th state and recompute the rest) gives exact gradients in $O(\sqrt{T}\,n)$
# memory at the price of a second forward pass. Exploding: clip the gradient norm before
# each update; this bounds the step but does not correct its direction, needs a threshold,
# and does nothing for vanishing gradients. Vanishing: gated cells (LSTM, GRU) whose
# additive memory path has a Jacobian close to the identity; they help over hundreds of
# steps but not without limit, cost more per step and are still sequential. (Also
# accepted: orthogonal or identity initialisation of $W$, which starts at gain one but does
# not stay there during training; attention, which connects all steps directly at a cost
# quadratic in $T$.)
#
# **Rubric (4 points).** 1 point: (a) the forward quantities of all $T$ steps are stored for
# the backward pass, $O(Tn)$. 1 point: (b) the product of $t - \tau$ Jacobians
# $\Phi_s W$ grows or shrinks geometrically with the distance, tied to the norm or spectrum
# of $W$ and the slopes. 2 points: (c) a remedy with a limitation for each of the three
# problems (1½ points if one limitation is missing or wrong, 1 point for two problems
# covered, ½ point for one).
# ### END SOLUTION

# %% [markdown]
# ## 5. Generating text with and without a key/value cache
#
# A decoder-only model generates one token per step, and each step needs the last position's
# output of every layer. Without help, every step runs the model over the whole sequence
# again. A **key/value cache** keeps, for every layer, the keys and values of the positions
# already processed: a step then runs only the newest token, whose query attends to the
# cached keys and values.
#
# **The setting.** The model has $L$ layers of width $d$. Each layer is attention (queries,
# keys, values and output projection, each $d \times d$) followed by an MLP
# $d \to 4d \to d$. A prompt of $P \ge 1$ tokens is given, and step $t = 1, \dots, T$ produces
# new token $t$ from the $n_t = P + t - 1$ tokens known so far.
#
# **Counting rules.** Count only the multiplications of matrix products (no embeddings,
# output head, biases, normalisation, softmax or activations). In one layer, the linear maps
# of one token cost $4d^2 + 8d^2 = 12d^2$; a query attending to $m$ keys costs $md$ for the
# scores and $md$ for the weighted sum of values. Several heads split the width and change
# none of these counts.
# - *Without a cache*, step $t$ runs every layer over all $n_t$ tokens, each attending
#   causally to the others. The implementation computes the full $n_t \times n_t$ matrix of
#   scores and masks it: count all of it.
# - *With a cache*, step 1 is the same full pass over the prompt (the "prefill"), which also
#   fills the cache. Each later step runs only the newest token (position $n_t$), which
#   attends to the $n_t - 1$ cached positions and to itself; its key and value are appended to
#   the cache.
# - The cache holds one key and one value (each $d$ floats) per position per layer.
#
# For example, with $P = 2$, $d = 4$ and $L = 1$, step 1 costs 416 multiplications, with or
# without a cache.
#
# **Task.** Write `decode_step_multiplications(P, t, d, L, cache)` (the cost of step $t$),
# `decode_total_multiplications(P, T, d, L, cache)` (the cost of steps $1$ to $T$) and
# `kv_cache_floats(P, t, d, L)` (the floats in the cache after step $t$). All return an
# `int`.

# %% nbgrader={"grade_id": "kv_functions", "solution": true}
def decode_step_multiplications(P: int, t: int, d: int, L: int, cache: bool) -> int:
    """Multiplications of decoding step t after a prompt of P tokens."""
    ### BEGIN SOLUTION
    n = P + t - 1  # tokens known before step t
    if cache and t > 1:
        return L * (12 * d * d + 2 * n * d)  # one new token against n keys
    return L * (12 * n * d * d + 2 * n * n * d)  # every token, full n × n scores
    ### END SOLUTION


def decode_total_multiplications(P: int, T: int, d: int, L: int, cache: bool) -> int:
    """Multiplications of decoding steps 1 to T after a prompt of P tokens."""
    ### BEGIN SOLUTION
    return sum(decode_step_multiplications(P, t, d, L, cache) for t in range(1, T + 1))
    ### END SOLUTION


def kv_cache_floats(P: int, t: int, d: int, L: int) -> int:
    """Floats held by the key/value cache after decoding step t."""
    ### BEGIN SOLUTION
    return 2 * L * d * (P + t - 1)  # a key and a value per position per layer
    ### END SOLUTION


# %% [markdown]
# For a model the size of GPT-2 small ($d = 768$, $L = 12$) and a prompt of 128 tokens:

# %%
P, d, L = 128, 768, 12
print(f"{'new tokens':>10} {'without cache':>19} {'with cache':>17} {'ratio':>6}")
for new_tokens in (16, 128, 1024):
    without = decode_total_multiplications(P, new_tokens, d, L, cache=False)
    with_cache = decode_total_multiplications(P, new_tokens, d, L, cache=True)
    print(f"{new_tokens:>10} {without:>19,} {with_cache:>17,} {without / with_cache:>6.1f}")
gib = kv_cache_floats(P=4096, t=1, d=4096, L=32) * 2 / 2**30
print(f"cache of a 4,096-token context, d = 4096, L = 32, float16: {gib:.1f} GiB")

# %% nbgrader={"grade_id": "q4_kv", "grade": true, "locked": true}
grader.check("q4_kv")

# %% [markdown]
# ### Question 5.1 — decoding in Big-O
#
# Define every symbol you use. (a) Give the time of step $t$ and the total time for $T$ new
# tokens, without and with the cache, in Big-O. (b) How much memory does each approach hold,
# and how does it grow? (c) Which would you use for long generations, and what limits the
# speed of a cached step on real hardware when the context is long?

# %% [markdown] nbgrader={"grade_id": "q4_kv_complexity", "solution": true, "grade": true, "points": 3}
# **Answer 5.1**
#
# ### BEGIN SOLUTION
# **Model answer.** Symbols: $L$ layers, width $d$, prompt length $P$, $T$ new tokens,
# $n_t = P + t - 1$ tokens before step $t$, final length $N = P + T$; batch size one.
#
# (a) Without a cache, step $t$ costs $O(L(n_t d^2 + n_t^2 d))$. Summing, with
# $\sum_t n_t = O(TN)$ and $\sum_t n_t^2 = O(TN^2)$, the total is $O(L\,T N d\,(d + N))$. With
# a cache, the prefill costs $O(L(P d^2 + P^2 d))$ and each later step $O(L(d^2 + n_t d))$:
# linear instead of quadratic in the context. The total is $O(L\,N d\,(d + N))$, a factor
# $\Theta(T)$ less (when $T$ is comparable to $N$; the table above shows it growing with the
# length); for long outputs the total time drops from cubic to quadratic in $N$.
#
# (b) The cache holds $2 L n_t d$ floats after step $t$, $O(LNd)$ at the end (times the
# batch size and the bytes per float): linear in the length, and it persists through the
# generation. Without a cache nothing persists between steps, but each step's pass holds
# the activations of all $n_t$ tokens, $O(n_t d)$ per layer, and the $n_t \times n_t$ scores
# of one head unless attention is fused.
#
# (c) The cache: it trades $O(LNd)$ memory for a factor $\Theta(T)$ in time, proportional to
# $T$ but not $T$ itself: the ratio tends to $2T/3$ for very long outputs, and the table
# above shows about $0.58\,T$ at $T = 1024$. A cached step performs only about one
# multiply-add per float it reads (every weight, $12 L d^2$, and
# the whole cache, $2 L n_t d$, are read once per token and each used in one multiply-add), so it is limited by memory
# bandwidth rather than arithmetic; with long contexts reading the cache dominates. Hence
# batching several sequences, multi-query or grouped-query attention (fewer key/value heads)
# and quantised caches.
#
# **Rubric (3 points).** 1 point: (a) per-step and total costs for both, with symbols
# defined (½ point if the totals are missing or the symbols undefined). 1 point: (b) the
# cache grows linearly as $O(LNd)$ and the no-cache pass holds $O(n_t d)$ activations (or the
# $n_t^2$ scores). 1 point: (c) the cache for long generations, with the memory-bandwidth (or
# cache-size) limit (½ point for the choice without a reason).
# ### END SOLUTION

# %% [markdown]
# ## 6. Counting parameters
#
# The standard decoder-only language model (GPT-2 style) with vocabulary size $V$, context
# length $C$ (the number of learned positions), width $d$, $L$ layers and $H$ heads has:
# - a token embedding ($V$ vectors of size $d$) and a learned position embedding ($C$ vectors);
# - $L$ pre-norm layers, each: a LayerNorm (a scale and a shift per feature), multi-head
#   attention with query, key, value and output projections, all with biases (the parameters
#   of `nn.MultiheadAttention`), a second LayerNorm, and an MLP $d \to 4d \to d$ with biases;
# - a final LayerNorm;
# - an output head $d \to V$ **without bias**, either *tied* (it reuses the token embedding
#   matrix, no new parameters) or *untied* (its own matrix).
#
# **Task.** Write `lm_parameter_count(vocab_size, context, d_model, n_layers, n_heads, tied)`,
# the number of trainable parameters, as a closed-form expression (no model building).

# %% nbgrader={"grade_id": "params_function", "solution": true}
def lm_parameter_count(
    vocab_size: int, context: int, d_model: int, n_layers: int, n_heads: int, tied: bool
) -> int:
    """Trainable parameters of the standard pre-norm transformer language model."""
    ### BEGIN SOLUTION
    d = d_model
    embeddings = (vocab_size + context) * d
    layer_norm = 2 * d
    attention = 4 * (d * d + d)  # Q, K, V, output: weight and bias each; heads split d
    mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)
    per_layer = 2 * layer_norm + attention + mlp  # 12 d² + 13 d
    head = 0 if tied else vocab_size * d
    return embeddings + n_layers * per_layer + layer_norm + head
    ### END SOLUTION


# %% [markdown]
# Check your formula on GPT-2 small against a real model: `tfcourse.theory.StandardLM` is
# built from `torch.nn` modules exactly as described above. On PyTorch's `meta` device it
# records shapes without allocating memory.

# %%
gpt2 = dict(vocab_size=50257, context=1024, d_model=768, n_layers=12, n_heads=12)
for tied in (True, False):
    yours = lm_parameter_count(**gpt2, tied=tied)
    built = count_parameters(StandardLM(LMConfig(**gpt2, tied=tied), device="meta"))
    print(f"GPT-2 small, tied={tied!s:5}: your formula {yours:,}, the torch model {built:,}")

# %% nbgrader={"grade_id": "q4_params", "grade": true, "locked": true}
grader.check("q4_params")

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check
# that every `grader.check` shows the points you expect, make sure every written answer
# replaces its `YOUR ANSWER HERE`, and save the notebook.
# Then run the cell below: it checks the saved notebook and says what is still missing.
