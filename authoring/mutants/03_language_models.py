"""Notebook 3's wrong answers (mutants) and correct alternatives, per question.

See :mod:`tfcourse_instructor.grading.selftest.mutants`: every mutant must lose points on its
question, every alternative must keep all the points of the notebook.
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

tokenizer = partial(Edit, "03_language_models", "tokenizer")
batches = partial(Edit, "03_language_models", "batches")
metrics = partial(Edit, "03_language_models", "metrics")
evaluate = partial(Edit, "03_language_models", "evaluate")
schedule = partial(Edit, "03_language_models", "schedule")
step = partial(Edit, "03_language_models", "train_step")
loop = partial(Edit, "03_language_models", "train_loop")
checkpoint = partial(Edit, "03_language_models", "checkpoint")
sampling = partial(Edit, "03_language_models", "sampling")
sweep = partial(Edit, "03_language_models", "sweep")
STARTS = "torch.randint(len(data) - block_size, "
WINDOWS = "x = data[starts[:, None] + offsets]\n    y = data[starts[:, None] + offsets + 1]"
LOSS = "F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))"
NO_GRAD = "with torch.no_grad():"
CLIP = "    if grad_clip > 0:\n        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)\n"
ZERO = "    optimizer.zero_grad(set_to_none=True)\n"
TOP_K = (
    "        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]\n"
    '        logits = logits.masked_fill(logits < kth, float("-inf"))'
)
SAVE = 'torch.save({"config": asdict(model.config), "state_dict": model.state_dict()}, path)'

VARIANTS = [
    mutant("q3_tokenizer", "characters in order of appearance", tokenizer("sorted(set(text))", "list(dict.fromkeys(text))")),
    mutant("q3_tokenizer", "vocabulary one too large", tokenizer("return len(self.itos)", "return len(self.itos) + 1")),
    mutant("q3_tokenizer", "ids as int32", tokenizer("dtype=torch.long", "dtype=torch.int32")),
    mutant("q3_tokenizer", "decode joins with spaces", tokenizer('return "".join(', 'return " ".join(')),
    alternative("q3_tokenizer", "ids mapped then converted", tokenizer("torch.tensor([self.stoi[char] for char in s], dtype=torch.long)", "torch.tensor(list(map(self.stoi.__getitem__, s)), dtype=torch.long)")),
    mutant("q3_batches", "targets not shifted", batches("y = data[starts[:, None] + offsets + 1]", "y = data[starts[:, None] + offsets]")),
    mutant("q3_batches", "last start never drawn", batches(STARTS, "torch.randint(len(data) - block_size - 1, ")),
    mutant("q3_batches", "one start past the end", batches(STARTS, "torch.randint(len(data) - block_size + 1, ")),
    mutant("q3_batches", "global random generator", batches("(batch_size,), generator=generator)", "(batch_size,))")),
    mutant("q3_batches", "split keeps the validation share", batches("cut = int(len(data) * train_fraction)", "cut = int(len(data) * (1 - train_fraction))")),
    alternative("q3_batches", "slices stacked", batches(WINDOWS, "x = torch.stack([data[s : s + block_size] for s in starts])\n    y = torch.stack([data[s + 1 : s + block_size + 1] for s in starts])")),
    mutant("q3_metrics", "bits as log2 of the loss", metrics("return loss / math.log(2)", "return math.log2(loss)")),
    mutant("q3_metrics", "perplexity base 2", metrics("return math.exp(loss)", "return 2**loss")),
    mutant("q3_metrics", "loss summed", metrics(LOSS, "F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction='sum')")),
    mutant("q3_metrics", "logits transposed before the reshape", metrics(LOSS, "F.cross_entropy(logits.transpose(0, 1).reshape(-1, logits.size(-1)), targets.reshape(-1))")),
    mutant("q3_metrics", "softmax before the cross-entropy", metrics(LOSS, "F.cross_entropy(logits.softmax(-1).reshape(-1, logits.size(-1)), targets.reshape(-1))")),
    alternative("q3_metrics", "classes in dimension 1", metrics(LOSS, "F.cross_entropy(logits.transpose(1, 2), targets)")),
    alternative("q3_metrics", "bits through log2 of e", metrics("return loss / math.log(2)", "return loss * math.log2(math.e)")),
    mutant("q3_evaluate", "no eval()", evaluate("    model.eval()\n", "")),
    mutant("q3_evaluate", "no no_grad", evaluate(NO_GRAD, "if True:")),
    mutant("q3_evaluate", "train mode always restored", evaluate("model.train(was_training)", "model.train()")),
    mutant("q3_evaluate", "batches not weighted", evaluate("total += lm_loss(logits, y).item() * y.numel()\n            count += y.numel()", "total += lm_loss(logits, y).item()\n            count += 1")),
    mutant("q3_evaluate", "a window whose target is past the end", evaluate("torch.arange((len(data) - 1) // block_size)", "torch.arange(len(data) // block_size)")),
    alternative("q3_evaluate", "inference_mode", evaluate(NO_GRAD, "with torch.inference_mode():")),
    mutant("q3_schedule", "warm-up from zero", schedule("(step + 1) / (config.warmup_iters + 1)", "step / config.warmup_iters")),
    mutant("q3_schedule", "cosine over all steps", schedule("(step - config.warmup_iters) / (config.max_iters - config.warmup_iters)", "(step - config.warmup_iters) / config.max_iters")),
    mutant("q3_schedule", "no floor after max_iters", schedule("    if step >= config.max_iters:\n        return config.min_lr\n", "")),
    mutant("q3_schedule", "a full cosine period", schedule("math.cos(math.pi * progress)", "math.cos(2 * math.pi * progress)")),
    mutant("q3_schedule", "decay ignores the floor", schedule("config.learning_rate - config.min_lr", "config.learning_rate")),
    mutant("q3_train_step", "gradients never cleared", step(ZERO, "")),
    mutant("q3_train_step", "no clipping", step(CLIP, "")),
    mutant("q3_train_step", "clipped after the step", step(CLIP + "    optimizer.step()\n", "    optimizer.step()\n" + CLIP)),
    mutant("q3_train_step", "clipped by value", step("clip_grad_norm_", "clip_grad_value_")),
    mutant("q3_train_step", "lr not set", step('    for group in optimizer.param_groups:\n        group["lr"] = lr\n', "")),
    mutant("q3_train_step", "no train()", step("    model.train()\n", "")),
    alternative("q3_train_step", "zero_grad after the step", step(ZERO, ""), step("    optimizer.step()\n", "    optimizer.step()\n    optimizer.zero_grad()\n")),
    alternative("q3_train_step", "model.zero_grad", step("optimizer.zero_grad(set_to_none=True)", "model.zero_grad()")),
    mutant("q3_train", "config.seed ignored", loop("torch.Generator().manual_seed(config.seed)", "torch.Generator().manual_seed(0)")),
    mutant("q3_train", "global random batches", loop("config.batch_size, generator)", "config.batch_size)")),
    mutant("q3_train", "no evaluation after the last step", loop(" or step + 1 == config.max_iters", "")),
    mutant("q3_train", "evaluation steps off by one", loop('history["eval_steps"].append(step + 1)', 'history["eval_steps"].append(step)')),
    mutant("q3_train", "model left in train mode", loop("    model.eval()\n    return history", "    return history")),
    mutant("q3_train", "validated on the training split", loop("evaluate(model, val_data)", "evaluate(model, train_data)")),
    mutant("q3_checkpoint", "state dict only", checkpoint(SAVE, "torch.save(model.state_dict(), path)")),
    mutant("q3_checkpoint", "config saved as a dataclass", checkpoint("asdict(model.config)", "model.config")),
    mutant("q3_checkpoint", "reloaded model in train mode", checkpoint("return model.eval()", "return model")),
    mutant("q3_checkpoint", "only the vocabulary size restored", checkpoint('EncoderConfig(**checkpoint["config"])', 'EncoderConfig(vocab_size=checkpoint["config"]["vocab_size"])')),
    alternative("q3_checkpoint", "loaded onto the CPU", checkpoint("torch.load(path, weights_only=True)", 'torch.load(path, map_location="cpu", weights_only=True)')),
    mutant("q3_sampling", "logits times the temperature", sampling("logits = logits / temperature", "logits = logits * temperature")),
    mutant("q3_sampling", "top-k keeps k + 1", sampling("min(top_k, logits.size(-1))", "min(top_k + 1, logits.size(-1))")),
    mutant("q3_sampling", "argmax instead of a draw", sampling("torch.multinomial(probs, 1, generator=generator)", "probs.argmax(-1, keepdim=True)")),
    mutant("q3_sampling", "generate without no_grad", sampling(NO_GRAD, "if True:")),
    mutant("q3_sampling", "generate without eval()", sampling("    model.eval()\n", "")),
    mutant("q3_sampling", "context not cropped", sampling("model(idx[:, -model.config.block_size :])", "model(idx)")),
    mutant("q3_sampling", "first position's logits", sampling("logits[:, -1, :]", "logits[:, 0, :]")),
    alternative("q3_sampling", "generate under inference_mode", sampling(NO_GRAD, "with torch.inference_mode():")),
    alternative("q3_sampling", "top-k by scatter", sampling(TOP_K, '        top = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1)\n        logits = torch.full_like(logits, float("-inf")).scatter(-1, top.indices, top.values)')),
    mutant("q3_sweep", "val_loss holds the last training loss", sweep('"val_loss": history["val_loss"][-1]', '"val_loss": history["train_loss"][-1]')),
    mutant("q3_sweep", "no reseeding", sweep("        torch.manual_seed(train_config.seed)  # the same initial weights on every run\n", "")),
    mutant("q3_sweep", "matrices counted only", sweep('"parameters": model.count_parameters()', '"parameters": sum(p.numel() for p in model.parameters() if p.dim() > 1)')),
    mutant("q3_sweep", "nine points, dropout never varied", sweep('        ("dropout 0.2", replace(base_model, dropout=0.2), base_train),\n', "")),
    mutant("q3_sweep", "width changed, d_ff kept", sweep("return replace(base_model, d_model=d_model, d_ff=4 * d_model)", "return replace(base_model, d_model=d_model)")),
]
