"""Plots the notebooks share: attention heat-maps."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor


def plot_attention(
    weights: Tensor,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    title: str = "",
    ax: Axes | None = None,
) -> Axes:
    """Heat-map of one (T_q, T_k) attention matrix: row i shows where query i looks."""
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4))
    matrix = weights.detach().float().cpu().numpy()
    image = ax.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_xlabel("key position")
    ax.set_ylabel("query position")
    if key_labels is not None:
        ax.set_xticks(range(len(key_labels)), key_labels, rotation=90)
    if query_labels is not None:
        ax.set_yticks(range(len(query_labels)), query_labels)
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_heads(weights: Tensor, labels: Sequence[str] | None = None, title: str = "") -> Figure:
    """One heat-map per head for per-head weights of shape (H, T_q, T_k)."""
    num_heads = weights.shape[0]
    fig, axes = plt.subplots(1, num_heads, figsize=(3.6 * num_heads, 3.6), squeeze=False)
    for head, ax in enumerate(axes[0]):
        plot_attention(weights[head], labels, labels, title=f"head {head}", ax=ax)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
