"""Beam search with length normalisation (``tfcourse.decoding_models`` has models to try it on)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


@torch.no_grad()
def beam_search(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    beam_width: int,
    eos_id: int | None = None,
    alpha: float = 0.0,
) -> tuple[Tensor, float]:
    """The continuation of the prompt idx (1, T) found by beam search, and its log-probability.

    At each step every live beam is extended by every token, and the ``beam_width`` extensions
    with the highest total log-probability are kept; one that ends in ``eos_id`` is finished
    and leaves the beam. After ``max_new_tokens`` steps the live beams finish too. The result
    is the finished hypothesis with the highest log-probability / length**alpha (length: new
    tokens, EOS included). Returns its new tokens (1-d) and its log-probability (float).
    """
    model.eval()
    block_size = model.config.block_size
    prompt = idx[0]
    live: list[tuple[Tensor, float]] = [(prompt, 0.0)]
    finished: list[tuple[Tensor, float]] = []
    for _ in range(max_new_tokens):
        contexts = torch.stack([tokens[-block_size:] for tokens, _ in live])
        logits, _ = model(contexts)
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
    return tokens[len(prompt) :], score
