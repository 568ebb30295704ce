"""Notebook 2's wrong answers (mutants) and correct alternatives, per question.

See :mod:`tfcourse_instructor.grading.selftest.mutants`: every mutant must lose points on its
question, every alternative must keep all the points of the notebook.
"""

from functools import partial

from tfcourse_instructor.grading.selftest.mutants import alternative, mutant
from tfcourse_instructor.grading.selftest.samples import Edit

positional = partial(Edit, "02_encoder", "positional")
feedforward = partial(Edit, "02_encoder", "feedforward")
layer = partial(Edit, "02_encoder", "encoder_layer")
encoder = partial(Edit, "02_encoder", "encoder")
lm = partial(Edit, "02_encoder", "lm")
params = partial(Edit, "02_encoder", "params")
SIN_COS = "table[:, 0::2] = torch.sin(angle)\n    table[:, 1::2] = torch.cos(angle)"
FREQUENCY = "torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)"
FF = "return self.linear2(self.dropout(self.activation(self.linear1(x))))"
PRE_ATTN = "x = x + self.attention_block(self.norm1(x), src_mask, src_key_padding_mask)"
PRE_FF = "x = x + self.feed_forward_block(self.norm2(x))"
POST_ATTN = "x = self.norm1(x + self.attention_block(x, src_mask, src_key_padding_mask))"
LAYERS = "nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layer))"
MASKED = "x = self.encoder(x, nn.Transformer.generate_square_subsequent_mask(idx.size(1), device=idx.device))"
LOSS = "F.cross_entropy(logits.flatten(0, 1), targets.flatten())"

VARIANTS = [
    mutant("q2_positional", "sine and cosine swapped", positional(SIN_COS, SIN_COS.replace("sin", "SIN").replace("cos", "sin").replace("SIN", "cos"))),
    mutant("q2_positional", "frequency exponent i, not 2i", positional(FREQUENCY, "torch.arange(d_model // 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)")),
    mutant("q2_positional", "log base 10", positional("math.log(10000.0)", "math.log10(10000.0)")),
    mutant("q2_positional", "learned positions start at 1", positional("self.embedding.weight[: x.size(1)]", "self.embedding.weight[1 : x.size(1) + 1]")),
    mutant("q2_positional", "sinusoidal replaces the input", positional("return x + self.pe[: x.size(1)].to(x.dtype)", "return self.pe[: x.size(1)].to(x.dtype).expand_as(x)")),
    alternative("q2_positional", "powers of 10000", positional(f"torch.exp(\n        {FREQUENCY}\n    )", "1.0 / 10000.0 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)")),
    alternative("q2_positional", "embedding of aranged positions", positional("self.embedding.weight[: x.size(1)]", "self.embedding(torch.arange(x.size(1), device=x.device))")),
    mutant("q2_feedforward", "no activation", feedforward(FF, "return self.linear2(self.dropout(self.linear1(x)))")),
    mutant("q2_feedforward", "always ReLU", feedforward(FF, "return self.linear2(self.dropout(torch.relu(self.linear1(x))))")),
    mutant("q2_feedforward", "dropout after the output layer", feedforward(FF, "return self.dropout(self.linear2(self.activation(self.linear1(x))))")),
    mutant("q2_feedforward", "no dropout", feedforward(FF, "return self.linear2(self.activation(self.linear1(x)))")),
    alternative("q2_feedforward", "functional dropout", feedforward(FF, "return self.linear2(F.dropout(self.activation(self.linear1(x)), self.dropout.p, self.training))")),
    mutant("q2_encoder_layer", "pre-norm adds to the normalised input", layer(PRE_ATTN, "x = self.norm1(x)\n            x = x + self.attention_block(x, src_mask, src_key_padding_mask)")),
    mutant("q2_encoder_layer", "post-norm computed as pre-norm", layer(POST_ATTN, "x = x + self.attention_block(self.norm1(x), src_mask, src_key_padding_mask)")),
    mutant("q2_encoder_layer", "dropout on the residual path", layer(PRE_FF, "x = self.dropout2(x + self.feed_forward_block(self.norm2(x)))")),
    mutant("q2_encoder_layer", "padding mask not passed", layer("key_padding_mask=key_padding_mask", "key_padding_mask=None")),
    mutant("q2_encoder_layer", "attention mask not passed", layer("attn_mask=attn_mask", "attn_mask=None")),
    mutant("q2_encoder_layer", "one LayerNorm for both blocks", layer("x = self.norm2(x + self.feed_forward_block(x))", "x = self.norm1(x + self.feed_forward_block(x))")),
    alternative("q2_encoder_layer", "weights computed and dropped", layer("need_weights=False", "need_weights=True")),
    mutant("q2_encoder", "one layer shared by the stack", encoder(LAYERS, "nn.ModuleList([EncoderLayer(config)] * config.n_layer)")),
    mutant("q2_encoder", "no final LayerNorm", encoder("return self.norm(x)", "return x")),
    mutant("q2_encoder", "attention mask not passed", encoder("x = layer(x, mask, src_key_padding_mask)", "x = layer(x, None, src_key_padding_mask)")),
    mutant("q2_encoder", "padding mask not passed", encoder("x = layer(x, mask, src_key_padding_mask)", "x = layer(x, mask)")),
    mutant("q2_encoder", "one layer too few", encoder("range(config.n_layer)", "range(config.n_layer - 1)")),
    alternative("q2_encoder", "a list of layers", encoder(LAYERS, "nn.ModuleList([EncoderLayer(config) for _ in range(config.n_layer)])")),
    mutant("q2_lm", "head copied, not tied", lm("self.lm_head.weight = self.token_embedding.weight", "self.lm_head.weight.data = self.token_embedding.weight.data.clone()")),
    mutant("q2_lm", "no causal mask", lm(MASKED, "x = self.encoder(x)")),
    mutant("q2_lm", "causal mask one step late", lm(MASKED, "x = self.encoder(x, torch.ones(idx.size(1), idx.size(1), dtype=torch.bool, device=idx.device).triu(2))")),
    mutant("q2_lm", "no positions", lm("self.position(self.token_embedding(idx))", "self.token_embedding(idx)")),
    mutant("q2_lm", "no embedding dropout", lm("x = self.drop(self.position(self.token_embedding(idx)))", "x = self.position(self.token_embedding(idx))")),
    mutant("q2_lm", "targets shifted again in the loss", lm(LOSS, "F.cross_entropy(logits[:, :-1].flatten(0, 1), targets[:, 1:].flatten())")),
    alternative("q2_lm", "cross-entropy over (B, V, T)", lm(LOSS, "F.cross_entropy(logits.transpose(1, 2), targets)")),
    alternative("q2_lm", "tril mask", lm(MASKED, "x = self.encoder(x, ~torch.ones(idx.size(1), idx.size(1), dtype=torch.bool, device=idx.device).tril())")),
    mutant("q2_params", "attention biases forgotten", params("attention = 4 * d * d + 4 * d", "attention = 4 * d * d")),
    mutant("q2_params", "tied head counted", params("head = 0 if config.tie_weights else v * d", "head = v * d")),
    mutant("q2_params", "final LayerNorm forgotten", params("+ 2 * d + head", "+ head")),
    mutant("q2_params", "one LayerNorm per layer", params("layer = attention + feed_forward + 2 * 2 * d", "layer = attention + feed_forward + 2 * d")),
    mutant("q2_params", "sinusoidal table counted", params('(config.block_size * d if config.positional == "learned" else 0)', "config.block_size * d")),
    alternative("q2_params", "feed-forward factored", params("feed_forward = d * f + f + f * d + d", "feed_forward = 2 * d * f + f + d")),
]
