"""Forward + backward time of the reference MultiHeadAttention vs torch.nn.MultiheadAttention.

Both modules hold the same weights and run on the CPU, interleaved in one process so machine
noise hits both alike. Prints the median time of each and the ratio (goal: at most 1.2x).

    python bench/attention_speed.py [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from tfcourse_instructor.reference.attention import MultiHeadAttention, causal_mask

SHAPES = [  # (batch, length, embed_dim, heads)
    (8, 64, 128, 4),
    (16, 128, 256, 8),
    (4, 256, 512, 8),
]


def step_seconds(module: nn.Module, x: torch.Tensor, mask: torch.Tensor) -> float:
    """Seconds for one forward and backward pass with head-averaged weights returned."""
    start = time.perf_counter()
    out, _ = module(x, x, x, attn_mask=mask)
    out.sum().backward()
    return time.perf_counter() - start


def compare(batch: int, length: int, embed_dim: int, heads: int, repeats: int) -> float:
    """Print one row of figures; return the ratio reference / torch."""
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(embed_dim, heads, batch_first=True)
    ours = MultiHeadAttention(embed_dim, heads)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(batch, length, embed_dim, requires_grad=True)
    mask = causal_mask(length)
    timings: dict[str, list[float]] = {"ours": [], "torch": []}
    for _ in range(3):  # warm-up
        step_seconds(ours, x, mask), step_seconds(theirs, x, mask)
    for _ in range(repeats):
        timings["ours"].append(step_seconds(ours, x, mask))
        timings["torch"].append(step_seconds(theirs, x, mask))
    ours_ms = 1e3 * statistics.median(timings["ours"])
    torch_ms = 1e3 * statistics.median(timings["torch"])
    ratio = ours_ms / torch_ms
    print(
        f"{batch:>5} {length:>6} {embed_dim:>5} {heads:>5} {ours_ms:>11.2f} {torch_ms:>11.2f}"
        f" {ratio:>7.2f}x"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, forward+backward, "
        "causal mask, median of interleaved runs"
    )
    print(
        f"{'batch':>5} {'length':>6} {'embed':>5} {'heads':>5} {'ours (ms)':>11} "
        f"{'torch (ms)':>11} {'ratio':>8}"
    )
    ratios = [compare(*shape, repeats=args.repeats) for shape in SHAPES]
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x (goal <= 1.2x)")


if __name__ == "__main__":
    main()
