"""tfcourse.ngram: Witten-Bell probabilities from the definition, and the entropy floor."""

import itertools
import math
from collections import Counter, defaultdict

import numpy as np
import pytest
import torch

from tfcourse.corpora import MarkovSource
from tfcourse.ngram import NGramModel
from tfcourse.vocab import CharTokenizer


def followers(ids, order):
    """For every history of length 0 .. order-1 seen in ids: a Counter of the next ids."""
    table = defaultdict(Counter)
    for position, token in enumerate(ids):
        for length in range(min(position, order - 1) + 1):
            table[tuple(ids[position - length : position])][token] += 1
    return table


def witten_bell(table, history, token, vocab_size):
    """Interpolated Witten-Bell P(token | history), written out from its definition."""
    if history is None:  # below the empty history: uniform
        return 1 / vocab_size
    lower = witten_bell(table, history[1:] if history else None, token, vocab_size)
    after = table.get(history, Counter())
    total, types = sum(after.values()), len(after)
    if total == 0:
        return lower
    return (after[token] + types * lower) / (total + types)


def as_ids(text, alphabet):
    return [alphabet.index(char) for char in text]


def test_abracadabra_by_hand():
    tokenizer = CharTokenizer.from_text("abracadabra", unk=None)  # a b c d r -> 0 1 2 3 4
    model = NGramModel(order=3, vocab_size=5).fit(tokenizer.encode("abracadabra"))
    # 11 tokens; 'a' 5 times; 5 distinct tokens follow the empty history.
    p_a = (5 + 5 * (1 / 5)) / (11 + 5)
    # 'r' occurs twice, both times followed by 'a': c(r)=2, one type.
    p_a_after_r = (2 + 1 * p_a) / (2 + 1)
    # 'br' also occurs twice, always followed by 'a'.
    p_a_after_br = (2 + 1 * p_a_after_r) / (2 + 1)
    a = tokenizer.encode("a").item()
    assert model.next_distribution(tokenizer.encode("br"))[a].item() == pytest.approx(p_a_after_br)
    # 'rr' was never seen: its distribution is that of the shorter history 'r'.
    torch.testing.assert_close(
        model.next_distribution(tokenizer.encode("rr")),
        model.next_distribution(tokenizer.encode("r")),
    )
    assert model.next_distribution(tokenizer.encode("r"))[a].item() == pytest.approx(p_a_after_r)


def test_every_distribution_matches_the_definition():
    vocab_size, order = 3, 3
    ids = [int(i) for i in np.random.default_rng(0).integers(0, vocab_size, 40)]
    model = NGramModel(order, vocab_size).fit(ids)
    table = followers(ids, order)
    for length in range(order):
        for history in itertools.product(range(vocab_size), repeat=length):
            expected = [witten_bell(table, history, w, vocab_size) for w in range(vocab_size)]
            actual = model.next_distribution(list(history))
            np.testing.assert_allclose(actual.numpy(), expected, rtol=1e-12)


def test_probabilities_sum_to_one_for_every_context():
    vocab_size, order = 4, 4
    ids = np.random.default_rng(1).integers(0, vocab_size, 60)  # most 3-histories unseen
    model = NGramModel(order, vocab_size).fit(ids)
    for length in range(order + 1):  # one longer than used: the oldest id is ignored
        for history in itertools.product(range(vocab_size), repeat=length):
            distribution = model.next_distribution(list(history))
            assert distribution.shape == (vocab_size,)
            assert distribution.dtype == torch.float64
            assert (distribution > 0).all()
            assert distribution.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_nats_per_token_scores_each_position_from_its_own_history():
    ids = [int(i) for i in np.random.default_rng(2).integers(0, 5, 300)]
    model = NGramModel(4, 5).fit(ids[:250])
    held_out = ids[250:]
    # The first positions of held_out have 0, 1 and 2 ids before them, not ids[:250].
    expected = -np.mean(
        [math.log(model.next_distribution(held_out[:t])[held_out[t]]) for t in range(50)]
    )
    assert model.nats_per_token(held_out) == pytest.approx(expected, rel=1e-12)
    assert model.nats_per_token(torch.tensor(held_out)) == pytest.approx(expected, rel=1e-12)


def test_order_k_plus_one_reaches_the_entropy_rate_of_an_order_k_source():
    source = MarkovSource.random("abcd", order=2, concentration=0.5, seed=0)
    train = as_ids(source.sample(300_000, seed=1), source.alphabet)
    validation_text = source.sample(50_000, seed=2)
    validation = as_ids(validation_text, source.alphabet)
    true_loss = source.nats_per_char(validation_text)
    # The sample's own loss under the true model is within noise (SE ~0.003) of the rate.
    assert true_loss == pytest.approx(source.entropy_rate, abs=0.01)

    matched = NGramModel(order=3, vocab_size=4).fit(train).nats_per_token(validation)
    # Above the true model by its estimation cost, about (16 histories x 3 free
    # probabilities) / (2 x 300K) ~ 1e-4 nats, plus smoothing; below it only by the noise of
    # the log-likelihood ratio on 50K characters, far under 5e-4.
    assert true_loss - 5e-4 < matched < true_loss + 2e-3

    unigram = NGramModel(order=1, vocab_size=4).fit(train).nats_per_token(validation)
    marginal = source.stationary @ source.transitions
    assert unigram == pytest.approx(-(marginal * np.log(marginal)).sum(), abs=0.01)
    assert unigram > source.entropy_rate + 0.2


def test_generate_samples_from_next_distribution():
    ids = np.random.default_rng(3).integers(0, 2, 200)
    model = NGramModel(order=2, vocab_size=2).fit(ids)
    generated = model.generate([0], 3000, torch.Generator().manual_seed(0))
    assert generated.dtype == torch.long
    assert generated.shape == (3001,)
    assert generated[0] == 0
    pairs = Counter(zip(generated[:-1].tolist(), generated[1:].tolist(), strict=True))
    for previous in (0, 1):
        seen = pairs[previous, 0] + pairs[previous, 1]
        p_one = model.next_distribution([previous])[1].item()
        # Binomial: 4 standard errors of the frequency of a 1 after `previous`.
        assert abs(pairs[previous, 1] / seen - p_one) < 4 * math.sqrt(p_one * (1 - p_one) / seen)


def test_generate_is_reproducible_with_a_seeded_generator():
    model = NGramModel(order=3, vocab_size=6).fit(np.random.default_rng(4).integers(0, 6, 500))
    first = model.generate([1, 2], 50, torch.Generator().manual_seed(7))
    again = model.generate(torch.tensor([1, 2]), 50, torch.Generator().manual_seed(7))
    other = model.generate([1, 2], 50, torch.Generator().manual_seed(8))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_invalid_input_is_rejected():
    with pytest.raises(RuntimeError, match="call fit"):
        NGramModel(2, 3).nats_per_token([0, 1])
    model = NGramModel(2, 3).fit([0, 1, 2])
    with pytest.raises(ValueError, match=r"ids must lie in 0 \.\. 2, got 0 \.\. 3"):
        model.nats_per_token([0, 3])
    with pytest.raises(ValueError, match="1-d sequence of integer ids"):
        model.fit(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="1-d sequence of integer ids"):
        model.fit([0.5, 1.0])
    with pytest.raises(ValueError, match="empty"):
        model.nats_per_token([])
    with pytest.raises(ValueError, match="overflows"):
        NGramModel(order=10, vocab_size=100)
