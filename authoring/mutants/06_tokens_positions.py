"""Notebook 6's wrong answers (mutants) and correct alternatives, per question.

See :mod:`tfcourse_instructor.grading.selftest.mutants`: every mutant must lose points on its
question, every alternative must keep all the points of the notebook. A rotary attention whose cache
holds unrotated keys is right in its outputs and wrong in what it keeps: the task asks for rotated
keys, and q6_rotary_attention checks the cache.
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

merge = partial(Edit, "06_tokens_positions", "bpe_merge")
train = partial(Edit, "06_tokens_positions", "bpe_train")
codec = partial(Edit, "06_tokens_positions", "bpe_codec")
rope = partial(Edit, "06_tokens_positions", "rope")
rotary = partial(Edit, "06_tokens_positions", "rotary_attention")

MATCH = "ids[i] == pair[0] and ids[i + 1] == pair[1]"
MERGE_LOOP = (
    "    out = []\n"
    "    i = 0\n"
    "    while i < len(ids):\n"
    "        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:\n"
    "            out.append(new_id)\n"
    "            i += 2\n"
    "        else:\n"
    "            out.append(ids[i])\n"
    "            i += 1\n"
    "    return out"
)
MERGE_WITH_SKIP = (
    "    out, skip = [], False\n"
    "    for i, token in enumerate(ids):\n"
    "        if skip:\n"
    "            skip = False\n"
    "        elif tuple(ids[i : i + 2]) == tuple(pair):\n"
    "            out.append(new_id)\n"
    "            skip = True\n"
    "        else:\n"
    "            out.append(token)\n"
    "    return out"
)
BEST = "best = max(pair_counts, key=lambda p: (pair_counts[p], -p[0], -p[1]))"
INITIAL_COUNTS = (
    "    for index, ids in enumerate(words):\n"
    "        for pair in pairwise(ids):\n"
    "            pair_counts[pair] += counts[index]\n"
)
SUBTRACT = (
    "            for pair in pairwise(old):\n"
    "                pair_counts[pair] -= counts[index]\n"
    "                if pair_counts[pair] == 0:\n"
    "                    del pair_counts[pair]\n"
)
NAIVE_TRAIN = (
    "    words = {tuple(word.encode()): count for word, count in word_counts.items()}\n"
    "    merges = []\n"
    "    while len(merges) < num_merges:\n"
    "        pair_counts = Counter()\n"
    "        for ids, count in words.items():\n"
    "            for pair in pairwise(ids):\n"
    "                pair_counts[pair] += count\n"
    "        if not pair_counts:\n"
    "            break\n"
    "        top = max(pair_counts.values())\n"
    "        best = min(pair for pair, count in pair_counts.items() if count == top)\n"
    "        merges.append(best)\n"
    "        new_words = Counter()\n"
    "        for ids, count in words.items():\n"
    "            new_words[tuple(merge(list(ids), best, 255 + len(merges)))] += count\n"
    "        words = new_words\n"
    "    return merges\n"
)
LOWEST_RANK = "pair = min(pairwise(tokens), key=lambda p: ranks.get(p, len(ranks)))"
ENCODE_LOOP = (
    "            tokens = list(word.encode())\n"
    "            # Merging the pair of lowest rank first applies the merges in the order learned.\n"
    "            while len(tokens) > 1:\n"
    "                pair = min(pairwise(tokens), key=lambda p: ranks.get(p, len(ranks)))\n"
    "                if pair not in ranks:\n"
    "                    break\n"
    "                tokens = merge(tokens, pair, 256 + ranks[pair])\n"
)
ENCODE_IN_ORDER = (
    "            tokens = list(word.encode())\n"
    "            for rank, pair in enumerate(merges):\n"
    "                tokens = merge(tokens, tuple(pair), 256 + rank)\n"
)
VOCAB = (
    "    vocab = [bytes([byte]) for byte in range(256)]\n"
    "    for a, b in merges:\n"
    "        vocab.append(vocab[a] + vocab[b])\n"
    '    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")'
)
EXPAND = (
    "    def expand(token):\n"
    "        if token < 256:\n"
    "            return [token]\n"
    "        a, b = merges[token - 256]\n"
    "        return expand(a) + expand(b)\n"
    "\n"
    "    return bytes(b for i in ids for b in expand(i)).decode(\"utf-8\", errors=\"replace\")"
)
ROTATE = "    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)"
HALVES = "    first, second = x[..., :half], x[..., half:]\n"
COMPLEX = (
    "    z = torch.complex(x[..., :half].double(), x[..., half:].double())\n"
    "    z = z * torch.polar(torch.ones_like(angles), angles)\n"
    "    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)"
)
ROTATE_HALF = (
    "    cos, sin = torch.cat([cos, cos], dim=-1), torch.cat([sin, sin], dim=-1)\n"
    "    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin"
)
ROTATE_QK = "q, k = apply_rotary(q, positions, base), apply_rotary(k, positions, base)"
CAT = "k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)"
SDPA = "out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)"

VARIANTS = [
    mutant("q6_bpe_merge", "overlapping occurrences all merged", merge("            i += 2", "            i += 1")),
    mutant("q6_bpe_merge", "a pair at the end never merged", merge("i + 1 < len(ids)", "i + 2 < len(ids)")),
    mutant("q6_bpe_merge", "only the first occurrence merged", merge("            out.append(new_id)\n            i += 2", "            return out + [new_id] + list(ids[i + 2 :])")),
    mutant("q6_bpe_merge", "the pair read backwards", merge(MATCH, "ids[i] == pair[1] and ids[i + 1] == pair[0]")),
    mutant("q6_bpe_merge", "the last id dropped", merge("while i < len(ids):", "while i < len(ids) - 1:")),
    mutant("q6_bpe_merge", "only the first id of the pair compared", merge(MATCH, "ids[i] == pair[0]")),
    alternative("q6_bpe_merge", "a for loop with a skip flag", merge(MERGE_LOOP, MERGE_WITH_SKIP)),
    mutant("q6_bpe_train", "ties go to the largest pair", train(BEST, "best = max(pair_counts, key=lambda p: (pair_counts[p], p[0], p[1]))")),
    mutant("q6_bpe_train", "ties go to the first pair counted", train(BEST, "best = max(pair_counts, key=pair_counts.get)")),
    mutant("q6_bpe_train", "pieces not weighted by their counts", train(INITIAL_COUNTS, INITIAL_COUNTS.replace("+= counts[index]", "+= 1"))),
    mutant("q6_bpe_train", "a pair counted once per piece", train(INITIAL_COUNTS, INITIAL_COUNTS.replace("pairwise(ids)", "set(pairwise(ids))"))),
    mutant("q6_bpe_train", "new ids start at 255", train("new_id = 256 + len(merges)", "new_id = 255 + len(merges)")),
    mutant("q6_bpe_train", "old pairs not subtracted", train(SUBTRACT, "")),
    mutant("q6_bpe_train", "no early stop", train("while len(merges) < num_merges and pair_counts:", "while len(merges) < num_merges:")),
    alternative("q6_bpe_train", "all pairs recounted after each merge", train("    words = [list(word.encode()) for word in word_counts]\n", NAIVE_TRAIN)),
    alternative("q6_bpe_train", "the best pair by min over (-count, pair)", train(BEST, "best = min(pair_counts, key=lambda p: (-pair_counts[p], p))")),
    mutant("q6_bpe_codec", "the first known pair from the left merged first", codec(LOWEST_RANK, "pair = next((p for p in pairwise(tokens) if p in ranks), None)")),
    mutant("q6_bpe_codec", "merges applied across pieces", codec("for word in split_words(text):", "for word in [text]:")),
    mutant("q6_bpe_codec", "merged ids one too high", codec("tokens = merge(tokens, pair, 256 + ranks[pair])", "tokens = merge(tokens, pair, 257 + ranks[pair])")),
    mutant("q6_bpe_codec", "the most recent merge applied first", codec(LOWEST_RANK, "pair = max(pairwise(tokens), key=lambda p: ranks.get(p, -1))")),
    mutant("q6_bpe_codec", "a merge's bytes joined in the wrong order", codec("vocab.append(vocab[a] + vocab[b])", "vocab.append(vocab[b] + vocab[a])")),
    mutant("q6_bpe_codec", "invalid bytes dropped, not replaced", codec('errors="replace"', 'errors="ignore"')),
    mutant("q6_bpe_codec", "decoded as Latin-1", codec('.decode("utf-8", errors="replace")', '.decode("latin-1")')),
    alternative("q6_bpe_codec", "every merge applied in turn", codec(ENCODE_LOOP, ENCODE_IN_ORDER)),
    alternative("q6_bpe_codec", "ids expanded recursively", codec(VOCAB, EXPAND)),
    mutant("q6_rope", "interleaved pairs (x_2i, x_2i+1)", rope(HALVES, "    first, second = x[..., 0::2], x[..., 1::2]\n")),
    mutant("q6_rope", "θ_i = base^(-i/D)", rope("base ** (-2.0 * torch.arange", "base ** (-1.0 * torch.arange")),
    mutant("q6_rope", "rotation by minus the angle", rope(ROTATE, "    return torch.cat([first * cos + second * sin, second * cos - first * sin], dim=-1)")),
    mutant("q6_rope", "positions ignored: 0..T-1", rope("positions.to(device=x.device, dtype=torch.float64)", "torch.arange(x.size(-2), device=x.device, dtype=torch.float64)")),
    mutant("q6_rope", "base ignored", rope("theta = base **", "theta = 10000.0 **")),
    mutant(
        "q6_rope", "angles in float32",
        rope("torch.arange(half, dtype=torch.float64, device=x.device)", "torch.arange(half, dtype=torch.float32, device=x.device)"),
        rope("positions.to(device=x.device, dtype=torch.float64)", "positions.to(device=x.device, dtype=torch.float32)"),
    ),
    alternative("q6_rope", "complex multiplication", rope(ROTATE, COMPLEX)),
    alternative("q6_rope", "rotate-half with repeated cos and sin", rope(ROTATE, ROTATE_HALF)),
    mutant("q6_rotary_attention", "every chunk starts at position 0", rotary("positions = torch.arange(past, past + new, device=x.device)", "positions = torch.arange(new, device=x.device)")),
    mutant("q6_rotary_attention", "values rotated too", rotary(ROTATE_QK, "q, k, v = apply_rotary(q, positions, base), apply_rotary(k, positions, base), apply_rotary(v, positions, base)")),
    mutant("q6_rotary_attention", "only the queries rotated", rotary(ROTATE_QK, "q = apply_rotary(q, positions, base)")),
    mutant(
        "q6_rotary_attention", "cached keys rotated again",
        rotary(ROTATE_QK, "q = apply_rotary(q, positions, base)"),
        rotary(CAT, CAT + "\n    k = apply_rotary(k, torch.arange(k.size(2), device=x.device), base)"),
    ),
    mutant("q6_rotary_attention", "base not passed on", rotary(ROTATE_QK, "q, k = apply_rotary(q, positions), apply_rotary(k, positions)")),
    mutant("q6_rotary_attention", "mask without the cache's offset", rotary("tril(diagonal=past)", "tril()")),
    mutant("q6_rotary_attention", "is_causal=True, aligned top-left", rotary(SDPA, "out = F.scaled_dot_product_attention(q, k, v, is_causal=True)")),
    alternative(
        "q6_rotary_attention", "attention written out",
        rotary(SDPA, "scores = (q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))).masked_fill(~allowed, float('-inf'))\n    out = torch.softmax(scores, dim=-1) @ v"),
    ),
    alternative(
        "q6_rotary_attention", "mask compared by aranges",
        rotary("allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)",
               "allowed = torch.arange(k.size(2), device=x.device) <= positions[:, None]"),
    ),
]
