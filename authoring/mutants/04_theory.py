"""Notebook 4's wrong answers (mutants) and correct alternatives, per question.

See :mod:`tfcourse_instructor.grading.selftest.mutants`: every mutant must lose points on its
question, every alternative must keep all the points of the notebook.
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

cost = partial(Edit, "04_theory", "cost_functions")
kernel = partial(Edit, "04_theory", "kernel_functions")
init = partial(Edit, "04_theory", "init_scheme")
bptt = partial(Edit, "04_theory", "bptt_functions")
kv = partial(Edit, "04_theory", "kv_functions")
params = partial(Edit, "04_theory", "params_function")
STD = "std=math.sqrt(2.0 / (width * (depth + layer)))"
AUTOGRAD = """    leaf = W.clone().requires_grad_(True)
    v, loss = v0, 0.0
    for x, y in zip(xs, ys):
        a = leaf @ v + B @ x
        v = torch.where(a > 0, a, slope * a)
        loss = loss + 0.5 * (C @ v - y).square().sum()
    return torch.autograd.grad(loss, leaf)[0]
"""
LINEAR = "return (phi_q @ state) / (phi_q @ normaliser).unsqueeze(-1)"

VARIANTS = [
    mutant("q4_cost", "QKᵀ only", cost("return scores + mixing", "return scores")),
    mutant("q4_cost", "mixing counted with D", cost("mixing = T * T * M", "mixing = T * T * D")),
    mutant("q4_cost", "memory of the weights only", cost("return T * T + T * M", "return T * T")),
    mutant("q4_cost", "scores and weights both kept", cost("return T * T + T * M", "return 2 * T * T + T * M")),
    alternative("q4_cost", "one product", cost("return scores + mixing", "return T * T * (D + M)")),
    mutant("q4_kernel", "not normalised", kernel("return (weights @ v) / weights.sum(dim=-1, keepdim=True)", "return weights @ v")),
    mutant("q4_kernel", "normaliser from the queries", kernel("normaliser = phi_k.sum(dim=0)", "normaliser = phi_q.sum(dim=0)")),
    mutant("q4_kernel", "linear attention through the T×T matrix", kernel(LINEAR, "weights = phi_q @ phi_k.T\n    return (weights @ v) / weights.sum(dim=-1, keepdim=True)")),
    mutant("q4_kernel", "keys not mapped", kernel("feature_map(k)", "k")),
    alternative("q4_kernel", "einsum for the state", kernel("state = phi_k.T @ v", "state = torch.einsum('tf,tm->fm', phi_k, v)")),
    mutant("q4_init", "He initialisation, depth ignored", init(STD, "std=math.sqrt(2.0 / width)")),
    mutant("q4_init", "unit weights", init(STD, "std=1.0")),
    mutant("q4_init", "bias of one", init("nn.init.constant_(linear.bias, 0.0)", "nn.init.constant_(linear.bias, 1.0)")),
    alternative("q4_init", "PyTorch's default bias kept (zero mean, small)", init("\n    nn.init.constant_(linear.bias, 0.0)", "")),
    mutant("q4_bptt", "no recurrent term", bptt("upstream = C.T @ g + W.T @ delta_next", "upstream = C.T @ g")),
    mutant("q4_bptt", "W not transposed", bptt("W.T @ delta_next", "W @ delta_next")),
    mutant("q4_bptt", "autograd instead of the recursion", bptt("    grad = torch.zeros_like(W)\n", AUTOGRAD)),
    mutant("q4_bptt", "outer product with the new state", bptt("torch.outer(delta, states[tau])", "torch.outer(delta, states[tau + 1])")),
    mutant("q4_bptt", "leaky slope ignored", bptt("torch.where(a > 0, upstream, slope * upstream)", "upstream")),
    alternative("q4_bptt", "derivative read off the state", bptt("delta = torch.where(a > 0,", "delta = torch.where(states[tau + 1] > 0,")),
    mutant("q4_kv", "cache used at step 1", kv("if cache and t > 1:", "if cache:")),
    mutant("q4_kv", "context one too long", kv("n = P + t - 1", "n = P + t")),
    mutant("q4_kv", "MLP forgotten", kv("return L * (12 * d * d + 2 * n * d)", "return L * (4 * d * d + 2 * n * d)")),
    mutant("q4_kv", "keys cached, values not", kv("return 2 * L * d * (P + t - 1)", "return L * d * (P + t - 1)")),
    mutant("q4_kv", "last step not summed", kv("range(1, T + 1)", "range(1, T)")),
    mutant("q4_params", "positions forgotten", params("embeddings = (vocab_size + context) * d", "embeddings = vocab_size * d")),
    mutant("q4_params", "MLP biases forgotten", params("mlp = (d * 4 * d + 4 * d) + (4 * d * d + d)", "mlp = 8 * d * d")),
    mutant("q4_params", "final LayerNorm forgotten", params("+ layer_norm + head", "+ head")),
    mutant("q4_params", "tied head counted", params("head = 0 if tied else vocab_size * d", "head = vocab_size * d")),
    alternative("q4_params", "per layer in closed form", params("per_layer = 2 * layer_norm + attention + mlp", "per_layer = 12 * d * d + 13 * d")),
]
