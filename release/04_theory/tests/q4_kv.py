"""Tests for q4_kv: decode_step_multiplications, decode_total_multiplications, kv_cache_floats.

Expected values are measured on a small decoder (L layers of width d: single-head causal
attention with Q, K, V and output projections, then a d -> 4d -> d MLP, no biases) that
really generates with and without a key/value cache. PyTorch's FlopCounterMode counts the
operations of its matrix products (2 per multiplication); softmax, masks, activations and
additions are not counted, as in the question.
"""

import torch
from otter.test_files import test_case
from torch.utils.flop_counter import FlopCounterMode

from tfcourse.assertions import expect_number

OK_FORMAT = False
name = "q4_kv"


class Decoder:
    """A random-weight decoder that can run a full forward pass or one cached step."""

    def __init__(self, d, n_layers, seed=0):
        generator = torch.Generator().manual_seed(seed)

        def weight(rows, cols):
            return torch.randn(rows, cols, generator=generator) / rows**0.5

        self.layers = [
            {key: weight(d, d) for key in ("q", "k", "v", "o")}
            | {"up": weight(d, 4 * d), "down": weight(4 * d, d)}
            for _ in range(n_layers)
        ]
        self.cache = [None] * n_layers

    def _layer(self, index, x, keys, values, causal):
        w = self.layers[index]
        scores = x @ w["q"] @ keys.T
        if causal:
            length = scores.size(0)
            blocked = torch.ones(length, length, dtype=torch.bool).triu(1)
            scores = scores.masked_fill(blocked, float("-inf"))
        x = x + torch.softmax(scores, dim=-1) @ values @ w["o"]
        return x + torch.relu(x @ w["up"]) @ w["down"]

    def forward(self, x, fill_cache=False):
        """All positions of x (n, d) attend causally to each other."""
        for index, w in enumerate(self.layers):
            keys, values = x @ w["k"], x @ w["v"]
            if fill_cache:
                self.cache[index] = (keys, values)
            x = self._layer(index, x, keys, values, causal=True)
        return x

    def cached_step(self, x):
        """The newest position x (1, d) attends to the cache plus itself."""
        for index, w in enumerate(self.layers):
            old_keys, old_values = self.cache[index]
            keys = torch.cat([old_keys, x @ w["k"]])
            values = torch.cat([old_values, x @ w["v"]])
            self.cache[index] = (keys, values)
            x = self._layer(index, x, keys, values, causal=False)
        return x

    def cache_floats(self):
        return sum(k.numel() + v.numel() for k, v in self.cache)


def measure(P, T, d, n_layers, cache):
    """Multiplications of each of T decoding steps after a prompt of P tokens, and the
    floats in the cache after each step (None without a cache)."""
    decoder = Decoder(d, n_layers)
    tokens = torch.randn(P + T, d)  # stand-ins for the embeddings of the tokens
    steps, memory = [], []
    for t in range(1, T + 1):
        n_t = P + t - 1  # tokens known before step t
        with FlopCounterMode(display=False) as counter:
            if not cache:
                decoder.forward(tokens[:n_t])
            elif t == 1:
                decoder.forward(tokens[:n_t], fill_cache=True)
            else:
                decoder.cached_step(tokens[n_t - 1 : n_t])
        steps.append(counter.get_total_flops() // 2)
        memory.append(decoder.cache_floats() if cache else None)
    return steps, memory


def check_steps(decode_step_multiplications, P, T, d, L, cache):
    steps, _ = measure(P, T, d, L, cache)
    for t, expected in enumerate(steps, 1):
        call = f"decode_step_multiplications(P={P}, t={t}, d={d}, L={L}, cache={cache})"
        expect_number(decode_step_multiplications(P, t, d, L, cache), expected, call)


def check_total(decode_total_multiplications, P, T, d, L, cache):
    expected = sum(measure(P, T, d, L, cache)[0])
    call = f"decode_total_multiplications(P={P}, T={T}, d={d}, L={L}, cache={cache})"
    expect_number(decode_total_multiplications(P, T, d, L, cache), expected, call)


def check_cache(kv_cache_floats, P, T, d, L):
    _, memory = measure(P, T, d, L, cache=True)
    for t, expected in enumerate(memory, 1):
        expect_number(
            kv_cache_floats(P, t, d, L), expected, f"kv_cache_floats(P={P}, t={t}, d={d}, L={L})"
        )


@test_case(name="steps 1 to 3 without a cache (P=2, d=4, L=1)", points=1)
def test_steps_without_cache(decode_step_multiplications):
    check_steps(decode_step_multiplications, P=2, T=3, d=4, L=1, cache=False)


@test_case(name="steps 1 to 3 with a cache (P=2, d=4, L=1)", points=1)
def test_steps_with_cache(decode_step_multiplications):
    check_steps(decode_step_multiplications, P=2, T=3, d=4, L=1, cache=True)


@test_case(name="totals for T=3 new tokens, with and without a cache (P=2, d=4, L=1)", points=1)
def test_totals_small(decode_total_multiplications):
    for cache in (False, True):
        check_total(decode_total_multiplications, P=2, T=3, d=4, L=1, cache=cache)


@test_case(name="floats in the cache after steps 1 to 3 (P=2, d=4, L=1)", points=1)
def test_cache_small(kv_cache_floats):
    check_cache(kv_cache_floats, P=2, T=3, d=4, L=1)

hidden_points = 3
