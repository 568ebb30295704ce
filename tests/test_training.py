"""The reference training pieces (tfcourse_instructor.reference: training, sampling, sweep) on
small models."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from tfcourse.corpora import MarkovSource
from tfcourse.encoder_config import EncoderConfig
from tfcourse.optimizer import TrainConfig, make_optimizer
from tfcourse.vocab import CharTokenizer
from tfcourse_instructor.reference.encoder import CausalLM
from tfcourse_instructor.reference.sampling import generate_text, sample_next_token, top_k_filter
from tfcourse_instructor.reference.sweep import COLUMNS, SweepPoint, format_results, run_sweep
from tfcourse_instructor.reference.training import (
    Metrics,
    evaluate,
    get_batch,
    learning_rate,
    load_checkpoint,
    save_checkpoint,
    split_ids,
    train,
    train_step,
)


def tiny_model(seed: int = 0, **overrides: object) -> CausalLM:
    settings: dict[str, object] = dict(
        vocab_size=9, block_size=8, n_layer=1, n_head=2, d_model=16, d_ff=32, dropout=0.0
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    return CausalLM(EncoderConfig(**settings))  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def markov_ids() -> tuple[torch.Tensor, float]:
    """Ids of 20K characters from a first-order Markov source over 8 letters, and its
    entropy rate (the best loss any model can reach)."""
    source = MarkovSource.random(alphabet="abcdefgh", order=1, concentration=0.3, seed=0)
    text = source.sample(20_000, seed=1)
    return CharTokenizer.from_text(text).encode(text), source.entropy_rate


def test_split_keeps_order_and_takes_the_first_part_for_training():
    ids = torch.arange(100)
    train_ids, val_ids = split_ids(ids, 0.9)
    assert torch.equal(torch.cat([train_ids, val_ids]), ids) and len(train_ids) == 90


def test_targets_are_the_inputs_shifted_by_one_window_of_data():
    data = torch.arange(50) * 3  # distinct values: a window's start is recoverable
    x, y = get_batch(data, block_size=7, batch_size=64, generator=torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (64, 7) and x.dtype == torch.long
    starts = x[:, 0] // 3
    expected = data[starts[:, None] + torch.arange(8)]
    assert torch.equal(x, expected[:, :-1]) and torch.equal(y, expected[:, 1:])


def test_every_window_start_is_drawn_including_the_last():
    data = torch.arange(12)
    x, _ = get_batch(
        data, block_size=4, batch_size=2000, generator=torch.Generator().manual_seed(1)
    )
    assert set(x[:, 0].tolist()) == set(range(12 - 4))


def test_batches_follow_the_generator():
    data = torch.arange(1000)
    first = get_batch(data, 8, 4, torch.Generator().manual_seed(5))
    again = get_batch(data, 8, 4, torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    config = TrainConfig(max_iters=1100, learning_rate=1e-3, min_lr=1e-4, warmup_iters=100)
    warm = [learning_rate(step, config) for step in range(100)]
    assert warm == pytest.approx([1e-3 * (s + 1) / 101 for s in range(100)])
    assert learning_rate(100, config) == pytest.approx(1e-3)
    assert learning_rate(600, config) == pytest.approx((1e-3 + 1e-4) / 2)  # half-way: cos = 0
    decay = [learning_rate(step, config) for step in range(100, 1101)]
    assert all(a >= b for a, b in itertools.pairwise(decay))
    assert learning_rate(1100, config) == learning_rate(5000, config) == pytest.approx(1e-4)


def test_metrics_derive_perplexity_and_bits_from_nats():
    metrics = Metrics(math.log(8))
    assert metrics.perplexity == pytest.approx(8.0)
    assert metrics.bits_per_char == pytest.approx(3.0)


def test_a_training_step_lowers_the_loss_and_clips_the_gradient():
    model = tiny_model()
    optimizer = make_optimizer(model, TrainConfig())
    x, y = get_batch(torch.randint(0, 9, (200,)), 8, 16, torch.Generator().manual_seed(0))
    first = train_step(model, optimizer, x, y, lr=1e-2, grad_clip=0.5)
    norm = torch.cat([p.grad.flatten() for p in model.parameters()]).norm()
    assert norm <= 0.5 + 1e-5
    assert all(group["lr"] == 1e-2 for group in optimizer.param_groups)
    second = train_step(model, optimizer, x, y, lr=1e-2)
    assert second < first and model.training


def test_weight_decay_applies_to_matrices_only():
    groups = make_optimizer(tiny_model(), TrainConfig(weight_decay=0.1)).param_groups
    decayed, plain = groups
    assert decayed["weight_decay"] == 0.1 and all(p.dim() == 2 for p in decayed["params"])
    assert plain["weight_decay"] == 0.0 and all(p.dim() == 1 for p in plain["params"])


def test_evaluate_is_the_mean_cross_entropy_over_the_tiling_windows():
    model = tiny_model(dropout=0.5).train()
    data = torch.randint(0, 9, (8 * 5 + 3,))
    metrics = evaluate(model, data, batch_size=2)
    model.eval()
    windows = torch.arange(5)[:, None] * 8 + torch.arange(8)
    with torch.no_grad():
        logits, _ = model(data[windows])
    expected = F.cross_entropy(logits.reshape(-1, 9), data[windows + 1].reshape(-1)).item()
    assert metrics.loss == pytest.approx(expected, abs=1e-6)
    assert evaluate(model.train(), data).loss == pytest.approx(expected, abs=1e-6)
    assert model.training  # the mode it found is restored


def test_evaluate_with_a_cap_spreads_windows_over_the_data():
    model = tiny_model().eval()
    data = torch.cat([torch.zeros(400, dtype=torch.long), torch.full((400,), 3)])
    capped = evaluate(model, data, batch_size=2, max_batches=2).loss
    first_half = evaluate(model, data[:401], batch_size=2).loss
    assert capped != pytest.approx(first_half)


def test_training_approaches_the_entropy_rate_of_a_markov_source(markov_ids):
    ids, entropy_rate = markov_ids
    train_ids, val_ids = split_ids(ids)
    model = tiny_model()
    config = TrainConfig(
        max_iters=150, batch_size=16, learning_rate=1e-2, min_lr=1e-3, warmup_iters=10,
        eval_interval=50,
    )  # fmt: skip
    history = train(model, train_ids, val_ids, config, progress=False)
    assert history.eval_steps == [50, 100, 150] and len(history.train_loss) == 150
    uniform = math.log(8)
    # Within 0.1 nats of the best possible loss (0.06 measured), far below the uniform model's.
    assert history.final_val_loss < entropy_rate + 0.1 < uniform - 0.3
    assert not model.training


def test_training_is_reproducible(markov_ids):
    ids, _ = markov_ids
    train_ids, val_ids = split_ids(ids)
    config = TrainConfig(max_iters=20, batch_size=4, eval_interval=10, eval_batches=2)
    runs = [train(tiny_model(), train_ids, val_ids, config, progress=False) for _ in range(2)]
    assert runs[0].train_loss == runs[1].train_loss and runs[0].val_loss == runs[1].val_loss


def test_checkpoint_round_trip_restores_config_and_weights(tmp_path):
    model = tiny_model(positional="sinusoidal", tie_weights=False).eval()
    save_checkpoint(tmp_path / "model.pt", model)
    loaded = load_checkpoint(tmp_path / "model.pt")
    assert loaded.config == model.config and not loaded.training
    idx = torch.randint(0, 9, (2, 8))
    assert torch.equal(loaded(idx)[0], model(idx)[0])


def test_top_k_filter_keeps_the_k_largest_logits():
    logits = torch.tensor([[0.1, 3.0, -1.0, 2.0, 0.5], [5.0, 4.0, 3.0, 2.0, 1.0]])
    kept = torch.isfinite(top_k_filter(logits, 2))
    assert kept.tolist() == [[False, True, False, True, False], [True, True, False, False, False]]
    assert torch.equal(top_k_filter(logits, 10), logits)


def test_sampling_follows_softmax_at_temperature_one():
    logits = torch.tensor([[1.0, 0.0, -1.0, 0.5]]).expand(20_000, 4)
    draws = sample_next_token(logits, generator=torch.Generator().manual_seed(0))
    assert draws.shape == (20_000, 1)
    frequencies = torch.bincount(draws.flatten(), minlength=4) / 20_000
    # Standard error of each frequency is below 0.0036: 0.015 is more than four of them.
    assert torch.allclose(frequencies, torch.softmax(logits[0], -1), atol=0.015)


def test_low_temperature_and_top_1_are_greedy_and_top_k_never_leaves_the_top():
    logits = torch.randn(500, 10, generator=torch.Generator().manual_seed(1))
    greedy = logits.argmax(-1, keepdim=True)
    generator = torch.Generator().manual_seed(2)
    top2 = torch.topk(logits, 2).values
    clear = top2[:, 0] - top2[:, 1] > 0.02  # at temperature 1e-3: odds of e^-20 for the second
    cold = sample_next_token(logits[clear], temperature=1e-3, generator=generator)
    assert torch.equal(cold, greedy[clear])
    assert torch.equal(sample_next_token(logits, top_k=1, generator=generator), greedy)
    draws = sample_next_token(logits, top_k=3, generator=generator)
    assert (draws == torch.topk(logits, 3).indices).any(-1).all()
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, temperature=0.0)


def test_generate_text_extends_the_prompt_and_is_seeded():
    tokenizer = CharTokenizer.from_text("abcdefgh", unk=None)
    model = tiny_model(vocab_size=tokenizer.vocab_size, block_size=4)
    text = generate_text(model, tokenizer, "abc", 10, top_k=3, seed=7)
    assert text.startswith("abc") and len(text) == 13  # longer than block_size: cropped input
    assert text == generate_text(model, tokenizer, "abc", 10, top_k=3, seed=7)


def test_sweep_returns_one_row_per_point_with_every_column(markov_ids):
    ids, _ = markov_ids
    train_ids, val_ids = split_ids(ids)
    points = [
        SweepPoint(
            f"L{layers}",
            EncoderConfig(vocab_size=9, block_size=8, n_layer=layers, n_head=2, d_model=16),
            TrainConfig(max_iters=5, batch_size=4, eval_batches=1),
        )
        for layers in (1, 2)
    ]
    results = run_sweep(points, train_ids, val_ids, progress=False)
    assert [r.name for r in results] == ["L1", "L2"]
    for result, point in zip(results, points, strict=True):
        assert result.parameters == CausalLM(point.model).count_parameters()
        assert result.val_loss > 0 and result.seconds > 0
        assert result.bits_per_char == pytest.approx(result.val_loss / math.log(2))
    table = format_results(results).splitlines()
    assert table[0].split() == list(COLUMNS) and len(table) == 3
