"""Notebook 5's wrong answers (mutants) and correct alternatives, per question.

See :mod:`tfcourse_instructor.grading.selftest.mutants`: every mutant must lose points on its
question, every alternative must keep all the points of the notebook. A backward that builds the
softmax Jacobian is right in value and wrong in cost: q5_flops, which measures the notebook's own
backward, is the question that catches it.
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

backward = partial(Edit, "05_inference", "backward")
flops = partial(Edit, "05_inference", "flops")
blockwise = partial(Edit, "05_inference", "blockwise")
kv = partial(Edit, "05_inference", "kv_attention")
generate = partial(Edit, "05_inference", "generate")
beam = partial(Edit, "05_inference", "beam")
JACOBIAN_PRODUCT = (
    "        inner = (grad_weights * weights).sum(dim=-1, keepdim=True)\n"
    "        grad_scores = weights * (grad_weights - inner) * ctx.scale"
)
SAVE = "        ctx.save_for_backward(query, key, value, weights)\n        ctx.scale = scale\n        return weights @ value"
COUNTERS = (
    "    with FlopCounterMode(display=False) as forward:\n"
    "        output = attention_manual(*inputs, mask)\n"
    "    with FlopCounterMode(display=False) as backward:\n"
    "        output.backward(torch.ones_like(output))\n"
    "    return forward.get_total_flops(), backward.get_total_flops()"
)
ONE_COUNTER = (
    "    with FlopCounterMode(display=False) as counter:\n"
    "        output = attention_manual(*inputs, mask)\n"
    "        forward = counter.get_total_flops()\n"
    "        output.backward(torch.ones_like(output))\n"
)
SHIFT = (
    "        # Rows that have seen only blocked keys shift by 0: exp then gives 0, not NaN.\n"
    "        shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)\n"
    "        probs = torch.exp(scores - shift)\n"
    "        correction = torch.exp(running_max - shift)"
)
BLOCKS = (
    "    for start in range(0, key.size(-2), block_size):\n"
    "        stop = start + block_size\n"
    "        scores = query @ key[..., start:stop, :].transpose(-2, -1) * scale\n"
    "        if mask is not None:\n"
    "            block = mask[..., start:stop]"
)
SPLIT_BLOCKS = (
    "    blocks = math.ceil(key.size(-2) / block_size)\n"
    "    masks = [None] * blocks if mask is None else mask.split(block_size, dim=-1)\n"
    "    keys, values = key.split(block_size, dim=-2), value.split(block_size, dim=-2)\n"
    "    for key_block, value_block, block in zip(keys, values, masks, strict=True):\n"
    "        scores = query @ key_block.transpose(-2, -1) * scale\n"
    "        if block is not None:"
)
ALLOWED = "allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)"
SDPA = "out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)"
CAT = "k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)"
CACHED_STEP = (
    "            if use_cache and cache is not None and idx.size(1) <= block_size:\n"
    "                logits, cache = model(idx[:, -1:], cache, use_cache=True)"
)
TOP_K = (
    "                    kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]\n"
    '                    logits = logits.masked_fill(logits < kth, float("-inf"))'
)
LOG_SOFTMAX = "torch.log_softmax(logits[:, -1].double(), dim=-1)"
NORMALISED = "h[1] / (len(h[0]) - len(prompt)) ** alpha"
TOP_EXTENSIONS = (
    "            best = totals.flatten().topk(min(beam_width, totals.numel()))\n"
    "            extended = []\n"
    "            for score, flat in zip(best.values.tolist(), best.indices.tolist(), strict=True):\n"
    "                beam, token = divmod(flat, totals.size(1))"
)

VARIANTS = [
    mutant("q5_backward", "dS not scaled", backward("grad_scores = weights * (grad_weights - inner) * ctx.scale", "grad_scores = weights * (grad_weights - inner)")),
    mutant("q5_backward", "dS multiplied by the root of d", backward("(grad_weights - inner) * ctx.scale", "(grad_weights - inner) / ctx.scale")),
    mutant("q5_backward", "Jacobian's diagonal only, p(1 - p)", backward("grad_scores = weights * (grad_weights - inner) * ctx.scale", "grad_scores = weights * (1 - weights) * grad_weights * ctx.scale")),
    mutant("q5_backward", "inner product summed over the queries", backward(".sum(dim=-1, keepdim=True)", ".sum(dim=-2, keepdim=True)")),
    mutant("q5_backward", "dV without transposing P", backward("grad_value = weights.transpose(-2, -1) @ grad_output", "grad_value = weights @ grad_output")),
    mutant("q5_backward", "mask ignored by the forward", backward('            scores = scores.masked_fill(mask, float("-inf"))\n', "            pass\n")),
    alternative(
        "q5_backward", "dV as the transpose of dOᵀP",
        backward("weights.transpose(-2, -1) @ grad_output", "(grad_output.transpose(-2, -1) @ weights).transpose(-2, -1)"),
    ),
    alternative(
        "q5_backward", "inner product as rowsum(dO ⊙ O), FlashAttention's way",
        backward(SAVE, "        output = weights @ value\n        ctx.save_for_backward(query, key, value, weights, output)\n        ctx.scale = scale\n        return output"),
        backward("query, key, value, weights = ctx.saved_tensors", "query, key, value, weights, output = ctx.saved_tensors"),
        backward("inner = (grad_weights * weights).sum(dim=-1, keepdim=True)", "inner = (grad_output * output).sum(dim=-1, keepdim=True)"),
    ),
    alternative(
        "q5_backward", "blocked scores set to the lowest float",
        backward('scores.masked_fill(mask, float("-inf"))', "scores.masked_fill(mask, torch.finfo(scores.dtype).min)"),
    ),
    mutant("q5_flops", "forward and backward swapped", flops("return forward.get_total_flops(), backward.get_total_flops()", "return backward.get_total_flops(), forward.get_total_flops()")),
    mutant("q5_flops", "one counter: the backward's count includes the forward", flops(COUNTERS, ONE_COUNTER + "    return forward, counter.get_total_flops()")),
    mutant("q5_flops", "multiply-adds, not FLOPs", flops("return forward.get_total_flops(), backward.get_total_flops()", "return forward.get_total_flops() // 2, backward.get_total_flops() // 2")),
    mutant("q5_flops", "backward counted with a second forward", flops("        output.backward(torch.ones_like(output))", "        attention_manual(*inputs, mask).backward(torch.ones_like(output))")),
    mutant("q5_flops", "inputs that do not require gradients", flops("tensor.detach().requires_grad_()", "tensor.detach()")),
    mutant(
        "q5_flops", "backward builds the softmax Jacobian",
        backward(JACOBIAN_PRODUCT, "        jacobian = torch.diag_embed(weights) - weights.unsqueeze(-1) * weights.unsqueeze(-2)\n        grad_scores = (jacobian @ grad_weights.unsqueeze(-1)).squeeze(-1) * ctx.scale"),
    ),
    alternative("q5_flops", "one counter, the backward by difference", flops(COUNTERS, ONE_COUNTER + "    return forward, counter.get_total_flops() - forward")),
    alternative("q5_flops", "backward from the output's sum", flops("output.backward(torch.ones_like(output))", "output.sum().backward()")),
    mutant("q5_blockwise", "accumulator not rescaled", blockwise("accumulator = accumulator * correction + ", "accumulator = accumulator + ")),
    mutant("q5_blockwise", "running sum not rescaled", blockwise("running_sum = running_sum * correction + ", "running_sum = running_sum + ")),
    mutant("q5_blockwise", "rescaled by the inverse correction", blockwise("correction = torch.exp(running_max - shift)", "correction = torch.exp(shift - running_max)")),
    mutant("q5_blockwise", "maximum of the block only", blockwise("new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))", "new_max = scores.amax(dim=-1, keepdim=True)")),
    mutant("q5_blockwise", "running maximum never updated", blockwise("        running_max = new_max\n", "")),
    mutant("q5_blockwise", "running maximum starting at 0", blockwise('running_max = query.new_full(rows, float("-inf"))', "running_max = query.new_zeros(rows)")),
    mutant("q5_blockwise", "last, shorter block dropped", blockwise("range(0, key.size(-2), block_size)", "range(0, key.size(-2) - block_size + 1, block_size)")),
    mutant("q5_blockwise", "blocks overlap by one key", blockwise("stop = start + block_size", "stop = start + block_size + 1")),
    mutant("q5_blockwise", "mask of the first block reused", blockwise("block = mask[..., start:stop]", "block = mask[..., :block_size]")),
    mutant("q5_blockwise", "float mask ignored", blockwise("            else:\n                scores = scores + block\n", "")),
    mutant("q5_blockwise", "shift by the maximum even when it is -inf", blockwise("shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)", "shift = new_max")),
    mutant("q5_blockwise", "fully blocked rows divided by zero", blockwise("return accumulator / running_sum.masked_fill(running_sum == 0, 1.0)", "return accumulator / running_sum")),
    alternative(
        "q5_blockwise", "NaN of exp(-inf + inf) zeroed",
        blockwise(SHIFT, "        probs = torch.exp(scores - new_max).nan_to_num(0.0)\n        correction = torch.exp(running_max - new_max).nan_to_num(0.0)"),
    ),
    alternative("q5_blockwise", "empty rows zeroed by where", blockwise("return accumulator / running_sum.masked_fill(running_sum == 0, 1.0)", "return torch.where(running_sum > 0, accumulator / running_sum, 0.0)")),
    alternative("q5_blockwise", "NaN of empty rows zeroed at the end", blockwise("return accumulator / running_sum.masked_fill(running_sum == 0, 1.0)", "return (accumulator / running_sum).nan_to_num(0.0)")),
    alternative("q5_blockwise", "block stop clamped to T_k", blockwise("stop = start + block_size", "stop = min(start + block_size, key.size(-2))")),
    alternative(
        "q5_blockwise", "blocks by split",
        blockwise(BLOCKS, SPLIT_BLOCKS),
        blockwise("probs @ value[..., start:stop, :]", "probs @ value_block"),
    ),
    mutant("q5_kv_attention", "mask without the cache's offset", kv("tril(diagonal=past)", "tril()")),
    mutant("q5_kv_attention", "is_causal=True, aligned top-left", kv(SDPA, "out = F.scaled_dot_product_attention(q, k, v, is_causal=True)")),
    mutant("q5_kv_attention", "offset counts the new positions too", kv("past = k.size(2) - new", "past = k.size(2)")),
    mutant("q5_kv_attention", "mask True where blocked, as the course's", kv("tril(diagonal=past)", "triu(diagonal=past + 1)")),
    mutant("q5_kv_attention", "new keys and values before the cached ones", kv(CAT, "k, v = torch.cat([k, cache[0]], dim=2), torch.cat([v, cache[1]], dim=2)")),
    mutant("q5_kv_attention", "input projection without its bias", kv("F.linear(x, attn.in_proj_weight, attn.in_proj_bias)", "F.linear(x, attn.in_proj_weight)")),
    mutant("q5_kv_attention", "output projection without its bias", kv("attn.out_proj(out.transpose(1, 2).reshape(batch, new, embed_dim))", "F.linear(out.transpose(1, 2).reshape(batch, new, embed_dim), attn.out_proj.weight)")),
    mutant("q5_kv_attention", "heads split without transposing", kv("t.view(batch, new, heads, embed_dim // heads).transpose(1, 2)", "t.view(batch, heads, new, embed_dim // heads)")),
    alternative(
        "q5_kv_attention", "mask compared by aranges",
        kv(ALLOWED, "allowed = torch.arange(k.size(2), device=x.device) <= torch.arange(past, past + new, device=x.device)[:, None]"),
    ),
    alternative(
        "q5_kv_attention", "additive float mask",
        kv(SDPA, "out = F.scaled_dot_product_attention(q, k, v, attn_mask=torch.zeros_like(allowed, dtype=q.dtype).masked_fill(~allowed, float('-inf')))"),
    ),
    alternative(
        "q5_kv_attention", "attention written out",
        kv(SDPA, "scores = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float('-inf'))\n    out = torch.softmax(scores, dim=-1) @ v"),
    ),
    mutant("q5_generate", "cache kept past block_size", generate(" and idx.size(1) <= block_size", "")),
    mutant("q5_generate", "cache kept one step past block_size", generate("idx.size(1) <= block_size", "idx.size(1) <= block_size + 1")),
    mutant(
        "q5_generate", "cache cropped to slide past block_size",
        generate(CACHED_STEP, "            if use_cache and cache is not None:\n                if idx.size(1) > block_size:\n                    cache = [(k[:, :, 1:], v[:, :, 1:]) for k, v in cache]\n                logits, cache = model(idx[:, -1:], cache, use_cache=True)"),
    ),
    mutant("q5_generate", "context not cropped", generate("model(idx[:, -block_size:], use_cache=use_cache)", "model(idx, use_cache=use_cache)")),
    mutant("q5_generate", "returned cache thrown away", generate("logits, cache = model(idx[:, -1:], cache, use_cache=True)", "logits, _ = model(idx[:, -1:], cache, use_cache=True)")),
    mutant("q5_generate", "whole sequence fed after the cache", generate("model(idx[:, -1:], cache, use_cache=True)", "model(idx, cache, use_cache=True)")),
    mutant("q5_generate", "logits times the temperature", generate("logits = logits / temperature", "logits = logits * temperature")),
    mutant("q5_generate", "top-k keeps k + 1", generate("min(top_k, logits.size(-1))", "min(top_k + 1, logits.size(-1))")),
    mutant("q5_generate", "generator ignored", generate("torch.multinomial(probs, 1, generator=generator)", "torch.multinomial(probs, 1)")),
    alternative("q5_generate", "the returned cache decides", generate("if use_cache and cache is not None and", "if cache is not None and")),
    alternative(
        "q5_generate", "no cache built once the window slides",
        generate("model(idx[:, -block_size:], use_cache=use_cache)", "model(idx[:, -block_size:], use_cache=use_cache and idx.size(1) <= block_size)"),
    ),
    alternative("q5_generate", "window recomputed from block_size on", generate("idx.size(1) <= block_size", "idx.size(1) < block_size")),
    alternative(
        "q5_generate", "top-k by scatter",
        generate(TOP_K, '                    top = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1)\n                    logits = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)'),
    ),
    mutant("q5_beam", "no length normalisation", beam(NORMALISED, "h[1]")),
    mutant("q5_beam", "length counted with the prompt", beam(NORMALISED, "h[1] / len(h[0]) ** alpha")),
    mutant("q5_beam", "no early stop once every beam has ended", beam("            if not live:\n                break\n", "")),
    mutant("q5_beam", "normalised score returned", beam("return tokens[len(prompt):], score", "return tokens[len(prompt):], score / (len(tokens) - len(prompt)) ** alpha")),
    mutant("q5_beam", "finished beams extended further", beam("(finished if token == eos_id else extended).append", "extended.append")),
    mutant("q5_beam", "finished hypotheses dropped while beams are live", beam("finished.extend(live)", "finished = live or finished")),
    mutant("q5_beam", "search stops at the first finished beam", beam("            if not live:\n", "            if not live or finished:\n")),
    mutant("q5_beam", "probabilities multiplied, not log-probabilities added", beam("live = [(prompt, 0.0)]", "live = [(prompt, 1.0)]"), beam(f"totals + {LOG_SOFTMAX}", "totals * torch.softmax(logits[:, -1].double(), dim=-1)")),
    mutant(
        "q5_beam", "probabilities multiplied, their log returned",
        beam("live = [(prompt, 0.0)]", "live = [(prompt, 1.0)]"),
        beam(f"totals + {LOG_SOFTMAX}", "totals * torch.softmax(logits[:, -1].double(), dim=-1)"),
        beam("return tokens[len(prompt):], score", "return tokens[len(prompt):], math.log(score)"),
    ),
    mutant("q5_beam", "logits added, not log-probabilities", beam(LOG_SOFTMAX, "logits[:, -1].double()")),
    mutant("q5_beam", "log_softmax over the beams", beam(LOG_SOFTMAX, "torch.log_softmax(logits[:, -1].double(), dim=0)")),
    mutant("q5_beam", "beams not cropped to block_size", beam("tokens[-block_size:] for tokens, _ in live", "tokens for tokens, _ in live")),
    alternative(
        "q5_beam", "extensions sorted in Python",
        beam(TOP_EXTENSIONS, "            scored = [(s, b, t) for b, row in enumerate(totals.tolist()) for t, s in enumerate(row)]\n            extended = []\n            for score, beam, token in sorted(scored, reverse=True)[:beam_width]:"),
    ),
    alternative("q5_beam", "log-probabilities in the model's dtype", beam(LOG_SOFTMAX, "torch.log_softmax(logits[:, -1], dim=-1)")),
]
