"""Notebook 1's wrong answers (mutants) and correct alternatives, per question.

Each edit changes the reference notebook (the model solutions); ``python -m
tfcourse_instructor.grading mutants`` proves every mutant loses points on its question and every
alternative keeps all of them (:mod:`tfcourse_instructor.grading.selftest.mutants`).
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

sdpa = partial(Edit, "01_attention", "sdpa")
masks = partial(Edit, "01_attention", "masks")
heads = partial(Edit, "01_attention", "heads")
mha = partial(Edit, "01_attention", "mha")
SOFTMAX = "weights = torch.softmax(scores.masked_fill(blocked_rows, 0.0), dim=-1)"
SAFE_SOFTMAX = """    blocked_rows = torch.isneginf(scores).all(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(blocked_rows, 0.0), dim=-1)
    weights = weights.masked_fill(blocked_rows, 0.0)"""
SPLIT = "x.view(batch, length, num_heads, embed_dim // num_heads).transpose(1, 2)"
MERGE = "x.transpose(1, 2).reshape(batch, length, num_heads * head_dim)"

VARIANTS = [
    mutant("q1_sdpa", "scores not scaled", sdpa(" / math.sqrt(query.size(-1))", "")),
    mutant("q1_sdpa", "scaled by d_k, not its root", sdpa("math.sqrt(query.size(-1))", "query.size(-1)")),
    mutant("q1_sdpa", "scaled by the value width", sdpa("math.sqrt(query.size(-1))", "math.sqrt(value.size(-1))")),
    mutant("q1_sdpa", "softmax over the queries", sdpa(SOFTMAX, SOFTMAX.replace("dim=-1", "dim=-2"))),
    mutant("q1_sdpa", "boolean mask read as True = may attend", sdpa("masked_fill(mask, ", "masked_fill(~mask, ")),
    mutant("q1_sdpa", "float mask ignored", sdpa("scores = scores + mask", "scores = scores")),
    alternative(
        "q1_sdpa", "NaN rows zeroed after the softmax",
        sdpa(SAFE_SOFTMAX, "    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)"),
    ),
    mutant("q1_sdpa", "plain softmax of fully masked rows", sdpa(SAFE_SOFTMAX, "    weights = torch.softmax(scores, dim=-1)")),
    alternative(
        "q1_sdpa", "einsum for the scores",
        sdpa("query @ key.transpose(-2, -1)", "torch.einsum('...qd,...kd->...qk', query, key)"),
    ),
    alternative(
        "q1_sdpa", "query scaled before the product",
        sdpa("query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))",
             "(query / math.sqrt(query.size(-1))) @ key.mT"),
    ),
    mutant("q1_masks", "causal mask blocks the diagonal", masks("triu(diagonal=1)", "triu(diagonal=0)")),
    mutant("q1_masks", "causal mask blocks the past", masks("triu(diagonal=1)", "tril(diagonal=-1)")),
    mutant("q1_masks", "causal mask as floats", masks("dtype=torch.bool, device=device", "device=device")),
    mutant("q1_masks", "padding starts one late", masks(">= lengths.unsqueeze(1)", "> lengths.unsqueeze(1)")),
    mutant("q1_masks", "padding mask inverted", masks(">= lengths.unsqueeze(1)", "< lengths.unsqueeze(1)")),
    alternative(
        "q1_masks", "tril, negated",
        masks("torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)",
              "~torch.ones(size, size, dtype=torch.bool, device=device).tril()"),
    ),
    alternative(
        "q1_masks", "comparing aranges",
        masks("torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)",
              "torch.arange(size, device=device)[None, :] > torch.arange(size, device=device)[:, None]"),
    ),
    mutant("q1_heads", "split reshapes without transposing", heads(SPLIT, "x.reshape(batch, num_heads, length, embed_dim // num_heads)")),
    mutant("q1_heads", "merge reshapes without transposing", heads(MERGE, "x.reshape(batch, length, num_heads * head_dim)")),
    mutant(
        "q1_heads", "split interleaves the heads",
        heads(SPLIT, "x.view(batch, length, embed_dim // num_heads, num_heads).permute(0, 3, 1, 2)"),
    ),
    mutant("q1_heads", "merge swaps time and features", heads(MERGE, "x.transpose(2, 3).reshape(batch, length, num_heads * head_dim)")),
    alternative("q1_heads", "unflatten and permute", heads(SPLIT, "x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3)")),
    alternative("q1_heads", "stacked chunks, merged by cat", heads(SPLIT, "torch.stack(x.chunk(num_heads, dim=-1), dim=1)"), heads(MERGE, "torch.cat(x.unbind(1), dim=-1)")),
    alternative("q1_heads", "merge by flatten", heads(MERGE, "x.transpose(1, 2).flatten(2)")),
    mutant("q1_mha", "no output projection", mha("out = self.out_proj(merge_heads(out))", "out = merge_heads(out)")),
    mutant("q1_mha", "head weights summed, not averaged", mha("weights.mean(dim=1)", "weights.sum(dim=1)")),
    mutant("q1_mha", "keys projected from the query", mha("F.linear(key, w_k, b_k)", "F.linear(query, w_k, b_k)")),
    mutant("q1_mha", "K and Q weights swapped", mha("w_q, w_k, w_v = self.in_proj_weight.chunk(3)", "w_k, w_q, w_v = self.in_proj_weight.chunk(3)")),
    mutant("q1_mha", "need_weights ignored", mha("        if not need_weights:\n            return out, None\n", "")),
    mutant(
        "q1_mha", "key padding mask ignored with an attention mask",
        mha("mask = padding if mask is None else mask + padding", "mask = padding if mask is None else mask"),
    ),
    alternative(
        "q1_mha", "weights averaged as a sum over heads",
        mha("weights.mean(dim=1)", "weights.sum(dim=1) / self.num_heads"),
    ),
]
