# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Notebook 2 — The transformer encoder
#
# Attention alone is not a transformer. In this notebook you add the other pieces: positional
# encodings, the position-wise feed-forward network, residual connections, dropout and
# LayerNorm. You assemble them into an encoder layer that reproduces PyTorch's
# `torch.nn.TransformerEncoderLayer` number for number, stack layers, and put a causal
# language-model head on top: the model you will train in notebook 3.
#
# **You will learn to**
# 1. build sinusoidal and learned positional encodings, and see why a transformer needs them;
# 2. write the position-wise feed-forward sub-layer;
# 3. write an encoder layer in both arrangements, **post-norm** (the 2017 original) and
#    **pre-norm** (GPT-2 and most models since), that loads the weights of
#    `nn.TransformerEncoderLayer` and matches its outputs to within $10^{-5}$;
# 4. stack layers under a final LayerNorm and turn the stack into a causal language model, with
#    optional weight tying, and test it for causality;
# 5. count a model's parameters in closed form.
#
# **Prerequisites**: notebook 1 (multi-head attention, causal and padding masks); PyTorch
# `nn.Module`, `nn.Linear`, `nn.Embedding`, `nn.LayerNorm`, `nn.Dropout`.
#
# **Time**: about 2 hours. The whole notebook runs in well under a minute on a laptop CPU.
#
# **How to work**: fill in each `# YOUR CODE HERE` and delete the `raise NotImplementedError()`
# line below it. Run the `grader.check(...)` cell after each task: it runs the public tests and
# says, for each one, what was expected and what came back. Hidden tests with more cases run
# when your notebook is graded, so test your code beyond the public checks. Answer the written
# questions in the cells marked `YOUR ANSWER HERE`.
#
# **How to check and submit**: the first code cell sets the notebook up in Colab (it installs
# the course helpers and this notebook's tests; in JupyterLab it does nothing). When you are
# done, restart the kernel and run all cells, save, and read the report of the last cell: it
# lists any answer still missing, any cell that raised or did not run, and any check short of
# its public points. Then hand in the saved `.ipynb` file as your course asks.
#
# **Attention is given.** This notebook uses PyTorch's own `nn.MultiheadAttention`
# (`batch_first=True`), not your notebook-1 answer, so a mistake there costs you nothing here.
# Call it as `self_attn(x, x, x, key_padding_mask=..., attn_mask=..., need_weights=False)`; it
# returns `(output, weights)`, with `weights` `None` when `need_weights=False`. Your notebook-1
# `MultiHeadAttention` has the same parameters (`in_proj_weight`, `in_proj_bias`, `out_proj`)
# and takes the same call by keyword, but its constructor has no `dropout` and no
# `batch_first` (it is always batch first). Here the encoder layer builds
# `nn.MultiheadAttention` with `dropout=config.dropout`, which drops attention weights in
# training mode. Masks follow notebook 1: **a boolean mask is `True` where attention is
# blocked**, a float mask is added to the scores (`-inf` blocks). The causal mask here is
# PyTorch's float one, `nn.Transformer.generate_square_subsequent_mask(T)`: `0` on and below
# the diagonal, `-inf` above. Give one layer masks of one kind (both boolean or both float).

# %% nbgrader={"grade_id": "setup", "locked": true}
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.checking import Grader

torch.manual_seed(0)
# The models here are tiny: one thread is as fast as several, and does not stall when other
# programs keep the CPU busy.
torch.set_num_threads(1)
grader = Grader("tests")

# %% [markdown]
# ## 0. One configuration object
#
# As in nanoGPT, every hyper-parameter lives in one small dataclass and every module takes it,
# instead of ten positional arguments. `EncoderConfig()` gives a small model;
# `EncoderConfig(n_layer=2, norm_first=False)` changes what you name. `ACTIVATIONS` maps the
# `activation` setting to its function.

# %% nbgrader={"grade_id": "config", "locked": true}
@dataclass
class EncoderConfig:
    vocab_size: int = 65  # number of distinct tokens
    block_size: int = 128  # longest sequence: the number of positions the model can encode
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int = 512  # hidden width of the feed-forward sub-layer (usually 4 * d_model)
    dropout: float = 0.1
    activation: str = "gelu"  # "relu" or "gelu"
    norm_first: bool = True  # True: pre-norm; False: post-norm
    positional: str = "learned"  # "learned" or "sinusoidal"
    tie_weights: bool = True  # share the token embedding with the output layer
    layer_norm_eps: float = 1e-5


ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}

# %% [markdown]
# ## 1. Positional encodings
#
# Self-attention treats its input as a *set*: nothing in $\operatorname{softmax}(QK^\top)V$
# depends on where a token sits (Question 4.1 shows what that costs). Transformers therefore
# add to each token embedding a vector that encodes its position $p$.
#
# **Sinusoidal** (Vaswani et al., 2017): for $i = 0, 1, \dots, d_\text{model}/2 - 1$,
#
# $$PE_{p,\,2i} = \sin\!\left(\frac{p}{10000^{2i/d_\text{model}}}\right), \qquad
#   PE_{p,\,2i+1} = \cos\!\left(\frac{p}{10000^{2i/d_\text{model}}}\right).$$
#
# Each pair of features is a clock running at its own frequency, from one turn every $2\pi$
# positions down to one every $2\pi \cdot 10000^{(d_\text{model} - 2)/d_\text{model}}$ for the
# last pair ($i = d_\text{model}/2 - 1$), just under $2\pi \cdot 10000$; a shift by $k$
# positions is a rotation of each pair, the same for every $p$. Nothing is learned, and any
# length can be encoded.
#
# **Learned** (BERT, GPT-2): one trained vector per position, an `nn.Embedding(block_size,
# d_model)`; it cannot go beyond `block_size`.
#
# **Tasks.**
# - `sinusoidal_encoding(max_len, d_model)` returns the `(max_len, d_model)` table above in
#   `float32` ($d_\text{model}$ is even). Hint: compute the angles as a `(max_len, 1)` column of
#   positions times a `(d_model/2,)` row of frequencies, then fill the even and odd columns.
# - `forward` of both modules: input `x` of shape `(B, T, d_model)` with `T <= block_size`;
#   return `x` plus the encodings of positions $0, \dots, T-1$, shape `(B, T, d_model)`.
#   `__init__` is written for you: the sinusoidal table is a *buffer* `pe` (it moves with
#   `.to(device)` but is not trained); the learned one is `self.embedding`.
#
# **Not allowed here:** `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this
# question.

# %% nbgrader={"grade_id": "positional", "solution": true}
def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """The (max_len, d_model) sinusoidal table: sin in even columns, cos in odd ones."""
    ### BEGIN SOLUTION
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)
    )
    angle = position * frequency  # float64 keeps large positions accurate
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table.float()
    ### END SOLUTION


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal encodings to (B, T, d_model) inputs."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.register_buffer(
            "pe", sinusoidal_encoding(config.block_size, config.d_model), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return x + self.pe[: x.size(1)].to(x.dtype)
        ### END SOLUTION


class LearnedPositionalEncoding(nn.Module):
    """Adds a trained vector per position to (B, T, d_model) inputs."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.block_size, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return x + self.embedding.weight[: x.size(1)]
        ### END SOLUTION


# %%
pe = sinusoidal_encoding(128, 64)
print("table:", tuple(pe.shape), pe.dtype)
print("position 0:", pe[0, :6])
print("learned:", tuple(LearnedPositionalEncoding(EncoderConfig(d_model=64))(torch.zeros(2, 10, 64)).shape))

# %% [markdown]
# The heat-map shows the table: early feature pairs oscillate fast along the positions, later
# ones barely move. On the right, the dot product $PE_p \cdot PE_q$ of every pair of positions
# depends only on the distance $|p - q|$ and is largest on the diagonal: relative position can be
# read off with a linear map, which is what attention computes.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
image = axes[0].imshow(pe.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1, interpolation="nearest")
axes[0].set(xlabel="position p", ylabel="feature", title="sinusoidal encodings (d_model = 64)")
fig.colorbar(image, ax=axes[0])
image = axes[1].imshow(pe @ pe.T, cmap="viridis", interpolation="nearest")
axes[1].set(xlabel="position q", ylabel="position p", title="similarity $PE_p \\cdot PE_q$")
fig.colorbar(image, ax=axes[1])
fig.tight_layout()
plt.show()

# %% nbgrader={"grade_id": "q2_positional", "grade": true, "locked": true}
grader.check("q2_positional")

# %% [markdown]
# ## 2. The position-wise feed-forward network
#
# After attention has mixed information *between* positions, each position is transformed
# *alone* by the same two-layer network:
#
# $$\operatorname{FFN}(x) = \operatorname{dropout}\big(\phi(x W_1^\top + b_1)\big) W_2^\top + b_2,$$
#
# with $W_1$ of shape `(d_ff, d_model)`, $W_2$ of shape `(d_model, d_ff)` and $\phi$ = ReLU or
# GELU. Most of a transformer's parameters sit here ($2\, d_\text{model} d_\text{ff}$ per layer
# against $4 d_\text{model}^2$ for attention).
#
# **Task.** Write `FeedForward.forward`: `(..., d_model)` → `(..., d_model)` with the layers
# defined in `__init__` (`linear1`, `activation`, `dropout`, `linear2`: the names PyTorch's
# encoder layer uses). Dropout acts on the hidden layer.
#
# **Not allowed here:** `nn.TransformerEncoderLayer`, `tfcourse.encoder_config`,
# `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "feedforward", "solution": true}
class FeedForward(nn.Module):
    """Position-wise MLP: d_model -> d_ff -> d_model."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.linear1 = nn.Linear(config.d_model, config.d_ff)
        self.activation = ACTIVATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self.linear2(self.dropout(self.activation(self.linear1(x))))
        ### END SOLUTION


# %%
ff = FeedForward(EncoderConfig(d_model=16, d_ff=64))
x = torch.randn(2, 5, 16)
print("output", tuple(ff(x).shape), "| parameters:", sum(p.numel() for p in ff.parameters()))

# %% nbgrader={"grade_id": "q2_feedforward", "grade": true, "locked": true}
grader.check("q2_feedforward")

# %% [markdown]
# ## 3. The encoder layer
#
# A layer has two sub-layers, self-attention and the feed-forward network. Each sits on a
# **residual connection** ($x + f(x)$), its output passes through **dropout** before it is added,
# and **LayerNorm** keeps the scale in check. Where the LayerNorm goes is the difference between
# the two arrangements:
#
# | post-norm (`norm_first=False`, Vaswani et al. 2017) | pre-norm (`norm_first=True`, GPT-2) |
# |---|---|
# | $x \leftarrow \operatorname{norm}_1\big(x + \operatorname{dropout}_1(\operatorname{SA}(x))\big)$ | $x \leftarrow x + \operatorname{dropout}_1\big(\operatorname{SA}(\operatorname{norm}_1(x))\big)$ |
# | $x \leftarrow \operatorname{norm}_2\big(x + \operatorname{dropout}_2(\operatorname{FF}(x))\big)$ | $x \leftarrow x + \operatorname{dropout}_2\big(\operatorname{FF}(\operatorname{norm}_2(x))\big)$ |
#
# In post-norm the LayerNorm sits *on* the residual path; in pre-norm only the input of each
# branch is normalised, and the residual stream $x$ passes from layer to layer untouched except
# for what the branches add. Here SA is self-attention with the masks passed on, and FF is the
# feed-forward network of Section 2, $\operatorname{linear}_2(\operatorname{dropout}(\phi(\operatorname{linear}_1(x))))$.
#
# **Designed to load PyTorch's weights.** `__init__` below gives the layer exactly the
# submodules of `nn.TransformerEncoderLayer`: `self_attn` (with `in_proj_weight`, `in_proj_bias`,
# `out_proj`), `linear1`, `dropout`, `linear2`, `norm1`, `norm2`, `dropout1`, `dropout2`. So
# `layer.load_state_dict(torch_layer.state_dict())` works, and the tests compare your outputs with
# PyTorch's for the same weights. (That is why the feed-forward's layers sit on the encoder layer
# itself rather than in a `FeedForward` submodule: the parameter names must be `linear1.weight`,
# not `ff.linear1.weight`.)
#
# **Tasks.** Write the three methods. Shapes: `x` and the output are `(B, T, d_model)`;
# `src_mask` is `(T, T)` or `(B·n_head, T, T)` and `src_key_padding_mask` is `(B, T)`, each
# boolean (`True` = blocked) or float, or `None`. These are the arguments of
# `nn.TransformerEncoderLayer.forward`.
# - `attention_block(x, attn_mask, key_padding_mask)`: self-attention of `x` with itself, then
#   `dropout1`;
# - `feed_forward_block(x)`: the feed-forward network, then `dropout2`;
# - `forward(src, src_mask=None, src_key_padding_mask=None)`: post-norm or pre-norm according to
#   `self.norm_first`.
#
# **Not allowed here:** `nn.TransformerEncoderLayer`, `nn.TransformerEncoder`, `nn.Transformer`,
# `tfcourse.encoder_config`, `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on
# this question.

# %% nbgrader={"grade_id": "encoder_layer", "solution": true}
class EncoderLayer(nn.Module):
    """One encoder layer with the parameter names of nn.TransformerEncoderLayer."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.norm_first = config.norm_first
        self.self_attn = nn.MultiheadAttention(
            config.d_model, config.n_head, dropout=config.dropout, batch_first=True
        )
        self.linear1 = nn.Linear(config.d_model, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.d_ff, config.d_model)
        self.activation = ACTIVATIONS[config.activation]
        self.norm1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)

    def attention_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None
    ) -> Tensor:
        ### BEGIN SOLUTION
        out, _ = self.self_attn(
            x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=False
        )
        return self.dropout1(out)
        ### END SOLUTION

    def feed_forward_block(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))
        ### END SOLUTION

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        ### BEGIN SOLUTION
        x = src
        if self.norm_first:
            x = x + self.attention_block(self.norm1(x), src_mask, src_key_padding_mask)
            x = x + self.feed_forward_block(self.norm2(x))
        else:
            x = self.norm1(x + self.attention_block(x, src_mask, src_key_padding_mask))
            x = self.norm2(x + self.feed_forward_block(x))
        return x
        ### END SOLUTION


# %% [markdown]
# Compare with PyTorch: same weights, same input, a causal mask and a padding mask (the second
# sequence has length 4 of 6), both arrangements. `dropout=0.0` makes training mode
# deterministic.

# %%
for norm_first in (False, True):
    config = EncoderConfig(d_model=32, n_head=4, d_ff=64, dropout=0.0, norm_first=norm_first)
    torch_layer = nn.TransformerEncoderLayer(
        32, 4, 64, dropout=0.0, activation="gelu", batch_first=True, norm_first=norm_first
    )
    layer = EncoderLayer(config)
    layer.load_state_dict(torch_layer.state_dict())
    x = torch.randn(2, 6, 32)
    padding = torch.zeros(2, 6)
    padding[1, 4:] = float("-inf")  # the second sequence has 4 tokens and 2 of padding
    masks = dict(src_mask=nn.Transformer.generate_square_subsequent_mask(6), src_key_padding_mask=padding)
    difference = (layer(x, **masks) - torch_layer(x, **masks)).abs().max()
    print(f"norm_first={norm_first!s:5}: output {tuple(layer(x).shape)}, "
          f"max |difference| below 1e-5: {difference.item() < 1e-5}")

# %% nbgrader={"grade_id": "q2_encoder_layer", "grade": true, "locked": true}
grader.check("q2_encoder_layer")

# %% [markdown]
# ## 4. A stack of layers
#
# An encoder is `n_layer` layers applied in turn, each with its own weights, then one final
# LayerNorm. With pre-norm the final norm is essential: nothing else normalises the residual
# stream that leaves the last layer. (With post-norm it is redundant but harmless; we keep it
# so that both arrangements have the same parameters.)
#
# **Task.** Write `Encoder`: in `__init__`, `self.layers`, an `nn.ModuleList` of `n_layer`
# independent `EncoderLayer(config)`s, and `self.norm`, an `nn.LayerNorm(d_model,
# eps=config.layer_norm_eps)`. These names make the state dict that of
# `nn.TransformerEncoder(layer, n_layer, norm=nn.LayerNorm(d_model))`. In `forward(src,
# mask=None, src_key_padding_mask=None)`, pass `src` `(B, T, d_model)` through every layer as
# `layer(x, mask, src_key_padding_mask)`, then through the final norm; return `(B, T, d_model)`.
#
# The check of this task (and of the language model below) builds your `Encoder` with PyTorch's
# `nn.TransformerEncoderLayer` in place of your `EncoderLayer`, so a bug in the layer is not
# counted twice.
#
# **Not allowed here:** `nn.TransformerEncoder`, `nn.Transformer`,
# `tfcourse.encoder_config.torch_encoder`, `tfcourse_instructor.reference`. A solution that calls one of
# them scores 0 on this question.

# %% nbgrader={"grade_id": "encoder", "solution": true}
class Encoder(nn.Module):
    """n_layer encoder layers and a final LayerNorm."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        ### BEGIN SOLUTION
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)
        ### END SOLUTION

    def forward(
        self, src: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None
    ) -> Tensor:
        ### BEGIN SOLUTION
        x = src
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask)
        return self.norm(x)
        ### END SOLUTION


# %%
encoder = Encoder(EncoderConfig(d_model=32, n_head=4, d_ff=64, n_layer=3))
print("output", tuple(encoder(torch.randn(2, 6, 32), nn.Transformer.generate_square_subsequent_mask(6)).shape))
print("parameters:", sum(p.numel() for p in encoder.parameters()))

# %% nbgrader={"grade_id": "q2_encoder", "grade": true, "locked": true}
grader.check("q2_encoder")

# %% [markdown]
# ### Question 4.1 — what breaks without positional information
#
# The cell below embeds the three words of "dog bites man" and "man bites dog" with one random
# embedding table and runs them through your encoder (two layers, no dropout) three ways:
# without positional encodings and without a mask; with sinusoidal encodings; and without
# positional encodings but with a causal mask. It prints whether the output vector of "dog" is
# the same in both sentences, and whether the two sentences' mean outputs are.

# %%
torch.manual_seed(1)
words = {"dog": 0, "bites": 1, "man": 2}
demo_config = EncoderConfig(d_model=16, n_head=2, d_ff=32, n_layer=2, dropout=0.0, block_size=8)
embed = nn.Embedding(len(words), 16)
demo_encoder = Encoder(demo_config).eval()
sinusoidal = SinusoidalPositionalEncoding(demo_config)


def encode(sentence: str, positions: nn.Module | None = None, mask: Tensor | None = None) -> Tensor:
    """(T, d_model) outputs of the demo encoder for a sentence of known words."""
    x = embed(torch.tensor([[words[word] for word in sentence.split()]]))
    if positions is not None:
        x = positions(x)
    return demo_encoder(x, mask)[0]


with torch.no_grad():
    for setting, positions, mask in [
        ("no positions, no mask   ", None, None),
        ("sinusoidal positions    ", sinusoidal, None),
        ("no positions, causal    ", None, nn.Transformer.generate_square_subsequent_mask(3)),
    ]:
        a, b = encode("dog bites man", positions, mask), encode("man bites dog", positions, mask)
        print(f"{setting} 'dog' same in both: {torch.allclose(a[0], b[2], atol=1e-5)!s:5}  "
              f"mean outputs equal: {torch.allclose(a.mean(0), b.mean(0), atol=1e-5)}")

# %% [markdown]
# (a) Explain the first line of the printout: which property of self-attention, the
# feed-forward network and LayerNorm makes "dog" come out the same in both sentences, and what
# does that mean for a model that must tell the two sentences apart? (b) The third line: why is
# a *causal* model without positional encodings not blind to word order in the same way?

# %% [markdown] nbgrader={"grade_id": "q2_no_positions", "solution": true, "grade": true, "points": 2}
# **Answer 4.1**
#
# ### BEGIN SOLUTION
# **Model answer.** (a) Without positions the encoder is *permutation-equivariant*: permuting
# the input tokens permutes the outputs the same way. Attention weights depend only on the
# contents of query and key, and the output is a weighted sum over the keys, which does not
# depend on their order; the feed-forward network, LayerNorm and the residuals act on each
# position alone. So a word gets the same output wherever it stands, and any order-independent
# summary (the mean) is identical: the model sees a bag of words and cannot tell who bit whom.
# (b) The causal mask breaks the symmetry: position $t$ attends to tokens $0, \dots, t$, the
# $t+1$ tokens up to and including itself, so "dog" first attends only to itself, "dog" last
# averages over all three. Outputs depend on
# the prefix, hence on order; a causal model can even infer its position (e.g. from how
# spread-out its attention is), which is why models without positional encodings still train,
# though usually worse.
#
# **Rubric (2 points).** 1 point for (a): permutation equivariance (or "attention is a weighted
# sum over a set, everything else is per position"), with the consequence (bag of words, the
# two sentences indistinguishable). ½ without a reason. 1 point for (b): the causal mask gives
# each position a different set of keys (its prefix), so outputs depend on order/position.
# ### END SOLUTION

# %% [markdown]
# ## 5. A causal language model
#
# A decoder-only language model (GPT) is the encoder stack under a causal mask, between an
# input embedding and an output layer. For token ids `idx` of shape `(B, T)`, `T <= block_size`:
#
# 1. `token_embedding(idx)`: `(B, T, d_model)`; add positions with `self.position`; apply `self.drop`
#    (dropout on the sum);
# 2. `self.encoder` with the causal mask
#    `nn.Transformer.generate_square_subsequent_mask(T, device=idx.device)`: `(B, T, d_model)`;
# 3. `lm_head`, a linear layer without bias: logits `(B, T, vocab_size)`. The logits at position
#    $t$ score the candidates for token $t+1$ and may depend on tokens $0, \dots, t$ only.
#
# With `targets` `(B, T)` (the ids shifted by one), also return the mean cross-entropy over all
# `B·T` positions, a scalar; without, return `None` as the loss. Hint: `F.cross_entropy` wants
# `(N, vocab_size)` logits and `(N,)` targets.
#
# **Weight tying** (Press & Wolf, 2017): the token embedding is a `(vocab_size, d_model)` matrix,
# and so is the weight of `lm_head`. With `tie_weights=True` the two are **one** parameter: the
# head scores each token by the dot product of the output vector with that token's embedding.
#
# **Tasks.** In `__init__`, tie the weights when `config.tie_weights` (make `lm_head.weight` the
# very same `nn.Parameter` as `token_embedding.weight`); write `forward`. `count_parameters` is
# given: `parameters()` lists a shared tensor once, so a tied matrix counts once.
#
# **Not allowed here:** `language_model.CausalLM` (the model notebook 3 gives),
# `tfcourse_instructor.reference`. A solution that calls one of them scores 0 on this question.

# %% nbgrader={"grade_id": "lm", "solution": true}
class CausalLM(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, vocab_size)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        positional = {"learned": LearnedPositionalEncoding, "sinusoidal": SinusoidalPositionalEncoding}
        self.position = positional[config.positional](config)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            ### BEGIN SOLUTION
            self.lm_head.weight = self.token_embedding.weight
            ### END SOLUTION

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        ### BEGIN SOLUTION
        x = self.drop(self.position(self.token_embedding(idx)))
        x = self.encoder(x, nn.Transformer.generate_square_subsequent_mask(idx.size(1), device=idx.device))
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        ### END SOLUTION

    def count_parameters(self) -> int:
        """Number of parameters; a tied matrix counts once."""
        return sum(p.numel() for p in self.parameters())


# %% [markdown]
# **Causality, tested directly.** Change one token and see which positions' logits move. With a
# correct model, changing token 5 changes the logits at positions 5, 6, … and never before.

# %%
torch.manual_seed(2)
lm = CausalLM(EncoderConfig(vocab_size=20, block_size=10, n_layer=2, d_model=32, n_head=4, d_ff=64)).eval()
idx = torch.randint(0, 20, (1, 10))
changed = idx.clone()
changed[0, 5] = (changed[0, 5] + 1) % 20
with torch.no_grad():
    logits, loss = lm(idx, targets=torch.randint(0, 20, (1, 10)))
    moved = (lm(changed)[0] - logits).abs().amax(-1)[0] > 1e-6
print("logits", tuple(logits.shape), "| loss is a scalar:", loss.dim() == 0)
print("positions whose logits changed:", [t for t in range(10) if moved[t]])

# %% nbgrader={"grade_id": "q2_lm", "grade": true, "locked": true}
grader.check("q2_lm")

# %% [markdown]
# ## 6. Counting parameters
#
# How big is a model, before you build it? Everything above has a closed-form parameter count.
# With $d = d_\text{model}$, $f = d_\text{ff}$, $V$ = `vocab_size`:
# an attention module has $4d^2 + 4d$ (notebook 1), the feed-forward network $2df + f + d$, a
# LayerNorm $2d$ (gain and bias).
#
# **Task.** `parameter_count(config)` returns, as a Python `int`, the number of parameters of
# `CausalLM(config)`: token embedding, learned positions (sinusoidal ones have none),
# `n_layer` layers, the final norm, and the head (nothing extra when tied). Do not build a model.
#
# **Not allowed here:** `tfcourse.encoder_config`, `tfcourse_instructor.reference`. A solution that calls
# one of them scores 0 on this question.

# %% nbgrader={"grade_id": "params", "solution": true}
def parameter_count(config: EncoderConfig) -> int:
    """Parameters of CausalLM(config), in closed form."""
    ### BEGIN SOLUTION
    d, f, v = config.d_model, config.d_ff, config.vocab_size
    attention = 4 * d * d + 4 * d
    feed_forward = d * f + f + f * d + d
    layer = attention + feed_forward + 2 * 2 * d
    embeddings = v * d + (config.block_size * d if config.positional == "learned" else 0)
    head = 0 if config.tie_weights else v * d
    return embeddings + config.n_layer * layer + 2 * d + head
    ### END SOLUTION


# %%
print(f"{'configuration':<42}{'formula':>10}{'counted':>10}")
for config in [
    EncoderConfig(),
    EncoderConfig(tie_weights=False),
    EncoderConfig(positional="sinusoidal", n_layer=8),
    EncoderConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768, d_ff=3072),
]:
    tying = "tied" if config.tie_weights else "untied"
    label = f"V={config.vocab_size} L={config.n_layer} d={config.d_model} {tying} {config.positional}"
    counted = CausalLM(config).count_parameters() if config.d_model < 768 else "(skipped)"
    print(f"{label:<42}{parameter_count(config):>10}{counted:>10}")

# %% nbgrader={"grade_id": "q2_params", "grade": true, "locked": true}
grader.check("q2_params")

# %% [markdown]
# ### Question 6.1 — weight tying
#
# The last line of the table is GPT-2 small. How many parameters does weight tying save there,
# and what fraction of the untied model is that? Compare with the default configuration, and
# say in one or two sentences why one matrix can sensibly serve as both the input embedding and
# the output layer.

# %% [markdown] nbgrader={"grade_id": "q2_tying", "solution": true, "grade": true, "points": 1}
# **Answer 6.1**
#
# ### BEGIN SOLUTION
# **Model answer.** Tying saves $V d$ parameters: $50257 \cdot 768 \approx 38.6$M for GPT-2
# small, about 24% of the untied 163M (the tied model has 124M), but only $65 \cdot 128 = 8320$,
# about 1%, for the default configuration: it matters when the vocabulary is large relative to
# the model. It is sensible because both matrices relate tokens to the same $d$-dimensional
# space: the embedding places each token at a vector and the head scores an output vector by its
# dot product with each token's vector, so tokens used alike should get alike vectors in both
# roles; tying also gives every embedding row gradient at every step through the softmax.
#
# **Rubric (1 point).** ½ point: the saving $V \cdot d$ with the numbers (≈ 38.6M, roughly a
# quarter; ≈ 1% for the default; accept 23–31% depending on the denominator). ½ point: a reason
# (same space / dot-product scoring, or the extra gradient signal for rare tokens).
# ### END SOLUTION

# %% [markdown]
# ## 7. Why pre-norm?
#
# The cell below trains your `CausalLM` twice on a toy task (each sequence repeats its first 8
# tokens over and over, so the model must learn to look 8 tokens back), with 6 layers, Adam at a
# high learning rate of $2 \cdot 10^{-2}$ and no warm-up: once post-norm, once pre-norm. The
# initialisation and data are the same for both. Training takes a few seconds.

# %%
def copy_task_batch(generator: torch.Generator, batch: int = 16, length: int = 24, vocab: int = 16):
    """Random tokens where every token from position 8 on repeats the one 8 positions earlier."""
    tokens = torch.randint(0, vocab, (batch, length + 1), generator=generator)
    tokens = tokens[:, :8].repeat(1, length // 8 + 1)[:, : length + 1]  # the first 8, tiled
    return tokens[:, :-1], tokens[:, 1:]


curves = {}
for norm_first in (False, True):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(10)
    config = EncoderConfig(vocab_size=16, block_size=24, n_layer=6, n_head=4, d_model=32, d_ff=64,
                           dropout=0.0, norm_first=norm_first, tie_weights=False)
    model = CausalLM(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    losses = []
    for _ in range(100):
        inputs, targets = copy_task_batch(generator)
        _, loss = model(inputs, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    curves["pre-norm" if norm_first else "post-norm"] = losses

fig, ax = plt.subplots(figsize=(6, 3.5))
for label, losses in curves.items():
    ax.plot(losses, label=label)
ax.axhline(math.log(16), color="grey", linestyle=":", label="chance, ln 16")
ax.set(xlabel="step", ylabel="training loss (nats)", title="6 layers, Adam, lr 2e-2, no warm-up")
ax.legend()
plt.show()

# %% [markdown]
# ### Question 7.1 — why pre-norm trains more stably
#
# Describe what the figure shows. Then explain, from the two formulas of Section 3, why the
# pre-norm model trains at a learning rate where the post-norm one does not: follow the path of
# the gradient from the loss back to the first layer in each arrangement. What did the original
# (post-norm) Transformer need in order to train?

# %% [markdown] nbgrader={"grade_id": "q2_prenorm", "solution": true, "grade": true, "points": 2}
# **Answer 7.1**
#
# ### BEGIN SOLUTION
# **Model answer.** The post-norm model stays at chance (about $\ln 16 \approx 2.77$ nats) while
# the pre-norm model learns the task. In pre-norm the residual stream is a plain sum,
# $x_L = x_0 + \sum_l F_l(\operatorname{LN}(x_l))$, so $\partial x_L / \partial x_l = I + \dots$: the
# gradient reaches every layer through an identity path, unscaled, and each branch adds an
# update computed from a normalised input, so no layer's output can blow up the stream. In
# post-norm every LayerNorm sits on the residual path, $x_{l+1} = \operatorname{LN}(x_l +
# F_l(x_l))$: the gradient to early layers passes through $L$ LayerNorm Jacobians, which rescale it,
# and at initialisation the gradients of the layers near the output are large (Xiong et al.,
# 2020). Large early updates then push the model into a bad region (here it collapses to
# predicting the unigram distribution). The original Transformer needed a learning-rate warm-up
# (4000 steps of linearly increasing rate) and a modest peak rate; pre-norm trains with little or
# no warm-up.
#
# **Rubric (2 points).** 1 point: the mechanism, i.e. pre-norm keeps an identity (un-normalised)
# residual path so gradients flow directly to every layer, whereas post-norm puts LayerNorm on
# that path (½ for only "pre-norm normalises the inputs of the sub-layers"). 1 point: the
# consequence, i.e. post-norm is unstable at large learning rates early in training and needs
# warm-up (or a small rate / careful initialisation); ½ for describing the figure without naming
# warm-up.
# ### END SOLUTION

# %% [markdown]
# ## Before you submit
#
# Restart the kernel and run all cells (*Kernel → Restart Kernel and Run All Cells*), check that
# every `grader.check` shows the points you expect, and save the notebook. Notebook 3 trains a
# model like this one, built from PyTorch's `nn.TransformerEncoder`, on real text.
# Then run the cell below: it checks the saved notebook and says what is still missing.
