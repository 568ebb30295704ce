"""tfcourse.corpora: offline corpora, the verified downloader and the Markov source."""

import hashlib
import itertools
import math
import socket
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from tfcourse.corpora import (
    CACHE_DIR_ENV,
    PYDOC_LICENCE,
    SHAKESPEARE_FILENAME,
    SHAKESPEARE_SHA256,
    CorpusUnavailable,
    MarkovSource,
    cached_download,
    load_corpus,
    pydoc_topics_text,
    read_text_file,
    tiny_shakespeare,
)

SHARED_SHAKESPEARE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "tiny_shakespeare.txt"
)
needs_shakespeare = pytest.mark.skipif(
    not SHARED_SHAKESPEARE.is_file(), reason=f"no local copy at {SHARED_SHAKESPEARE}"
)


def closed_port_url() -> str:
    """An http URL on localhost where nothing listens: connecting fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/input.txt"


# --- pydoc, local files, load_corpus -------------------------------------------------------


def test_pydoc_text_is_the_sorted_topics_joined_by_blank_lines():
    from pydoc_data.topics import topics

    text = pydoc_topics_text()
    assert text == pydoc_topics_text()
    assert text.startswith(topics[min(topics)])
    assert text.endswith(topics[max(topics)])
    assert len(text) == sum(map(len, topics.values())) + 2 * (len(topics) - 1)
    assert len(text) > 300_000


def test_default_corpus_is_pydoc_with_its_licence():
    corpus = load_corpus()
    assert corpus.name == "pydoc"
    assert corpus.text == pydoc_topics_text()
    assert corpus.source == PYDOC_LICENCE
    assert "Python Software Foundation License" in PYDOC_LICENCE
    assert corpus.entropy_rate is None


def test_split_is_first_part_then_last_part():
    corpus = load_corpus()
    train, validation = corpus.split(0.9)
    assert train + validation == corpus.text
    assert len(train) == int(0.9 * len(corpus.text))
    with pytest.raises(ValueError, match="between 0 and 1"):
        corpus.split(1.0)


def test_local_file_as_corpus(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("\ufeffline one\r\nline two\rline three\n".encode())
    corpus = load_corpus(path)
    assert corpus.name == "notes.txt"
    assert corpus.text == "line one\nline two\nline three\n"
    assert load_corpus(str(path)).text == corpus.text


def test_read_text_file_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no text file at .*missing\.txt"):
        read_text_file(tmp_path / "missing.txt")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8 text: byte 0xe9 at offset 3"):
        read_text_file(tmp_path / "latin1.txt")
    (tmp_path / "empty.txt").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty\.txt is empty"):
        read_text_file(tmp_path / "empty.txt")


def test_markov_corpus_carries_its_entropy_rate():
    corpus = load_corpus("markov")
    assert corpus == load_corpus("markov")
    assert 0 < corpus.entropy_rate < math.log(len(set(corpus.text)))
    assert "Markov" in corpus.source


# --- the downloader ------------------------------------------------------------------------


def test_download_verifies_and_caches(tmp_path):
    served = tmp_path / "served.txt"
    served.write_bytes(b"some text\n" * 1000)
    checksum = hashlib.sha256(served.read_bytes()).hexdigest()
    target = tmp_path / "cache" / "copy.txt"
    assert cached_download(served.as_uri(), target, checksum) == target
    assert target.read_bytes() == served.read_bytes()
    # Once cached, the network is not needed.
    assert cached_download(closed_port_url(), target, checksum) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["copy.txt"]


@pytest.mark.parametrize("damage", ["flipped byte", "truncated"])
def test_corrupt_or_partial_download_is_never_kept(tmp_path, damage):
    good = b"some text\n" * 1000
    damaged = good[:100] + b"X" + good[101:] if damage == "flipped byte" else good[:5000]
    served = tmp_path / "served.txt"
    served.write_bytes(damaged)
    cache = tmp_path / "cache"
    with pytest.raises(CorpusUnavailable, match="corrupt or incomplete: its sha256 is"):
        cached_download(served.as_uri(), cache / "copy.txt", hashlib.sha256(good).hexdigest())
    assert list(cache.iterdir()) == []


def test_offline_error_says_where_to_put_the_file(tmp_path):
    with pytest.raises(CorpusUnavailable) as error:
        tiny_shakespeare(cache_dir=tmp_path, url=closed_port_url())
    message = str(error.value)
    assert f"put a copy of the file (sha256 {SHAKESPEARE_SHA256}) at" in message
    assert str(tmp_path / SHAKESPEARE_FILENAME) in message
    assert CACHE_DIR_ENV in message
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_local_copy_is_reported_offline(tmp_path):
    (tmp_path / SHAKESPEARE_FILENAME).write_text("not Shakespeare")
    with pytest.raises(CorpusUnavailable, match="has the wrong checksum"):
        tiny_shakespeare(cache_dir=tmp_path, url=closed_port_url())


@needs_shakespeare
def test_tiny_shakespeare_downloads_once_then_works_offline(tmp_path):
    text = tiny_shakespeare(cache_dir=tmp_path, url=SHARED_SHAKESPEARE.as_uri())
    assert len(text) == 1_115_394
    assert text.startswith("First Citizen:\n")
    assert len(set(text)) == 65
    assert tiny_shakespeare(cache_dir=tmp_path, url=closed_port_url()) == text


@needs_shakespeare
def test_a_wrong_local_copy_is_replaced_by_a_good_download(tmp_path):
    (tmp_path / SHAKESPEARE_FILENAME).write_text("not Shakespeare")
    text = tiny_shakespeare(cache_dir=tmp_path, url=SHARED_SHAKESPEARE.as_uri())
    assert text == SHARED_SHAKESPEARE.read_text()


@needs_shakespeare
def test_cache_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "from-env"))
    tiny_shakespeare(url=SHARED_SHAKESPEARE.as_uri())
    cached = tmp_path / "from-env" / SHAKESPEARE_FILENAME
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == SHAKESPEARE_SHA256
    assert load_corpus("shakespeare").text.startswith("First Citizen:")


# --- the Markov source ---------------------------------------------------------------------


def test_stationary_distribution_is_stationary():
    source = MarkovSource.random("abc", order=2, concentration=0.5, seed=3)
    pi = source.stationary
    assert pi.shape == (9,)
    assert (pi > 0).all()
    assert pi.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(pi @ source.context_transitions(), pi, atol=1e-12)


def test_two_state_chain_matches_its_closed_form():
    # P = [[1-p, p], [q, 1-q]]: pi = (q, p) / (p + q), H = pi_0 h(p) + pi_1 h(q).
    p, q = 0.1, 0.3
    source = MarkovSource("xy", 1, np.array([[1 - p, p], [q, 1 - q]]))
    np.testing.assert_allclose(source.stationary, [q / (p + q), p / (p + q)], atol=1e-12)

    def binary_entropy(r):
        return -r * math.log(r) - (1 - r) * math.log(1 - r)

    expected = (q * binary_entropy(p) + p * binary_entropy(q)) / (p + q)
    assert source.entropy_rate == pytest.approx(expected, abs=1e-12)


def test_order_zero_is_independent_draws():
    probabilities = np.array([[0.5, 0.25, 0.25]])
    source = MarkovSource("abc", 0, probabilities)
    assert source.entropy_rate == pytest.approx(-(probabilities * np.log(probabilities)).sum())
    assert len(source.sample(10)) == 10


def test_empirical_log_loss_of_the_true_model_approaches_the_entropy_rate():
    source = MarkovSource.random("abcd", order=2, concentration=0.5, seed=0)
    text = source.sample(400_000, seed=1)
    blocks = [text[start : start + 20_000] for start in range(0, len(text), 20_000)]
    block_losses = np.array([source.nats_per_char(block) for block in blocks])
    # Blocks of 20K characters are nearly independent (the chain mixes within tens of
    # characters), so their spread gives the standard error of the mean loss.
    standard_error = block_losses.std(ddof=1) / math.sqrt(len(blocks))
    assert standard_error < 0.005
    assert abs(source.nats_per_char(text) - source.entropy_rate) < 5 * standard_error


def test_sample_frequencies_of_contexts_match_the_stationary_distribution():
    source = MarkovSource.random("ab", order=3, concentration=1.0, seed=5)
    text = source.sample(200_000, seed=2)
    counts = Counter(text[i : i + 3] for i in range(len(text) - 2))
    # Context s is its 3 characters read as a base-2 number, oldest first: product's order.
    names = ["".join(letters) for letters in itertools.product("ab", repeat=3)]
    frequencies = np.array([counts[name] for name in names]) / (len(text) - 2)
    # Binomial standard error is at most sqrt(0.25 / n) ~ 0.0011; correlation inflates it.
    np.testing.assert_allclose(frequencies, source.stationary, atol=0.01)


def test_samples_are_reproducible_and_use_the_alphabet():
    source = MarkovSource.random("xyz", order=1, seed=0)
    assert source.sample(1000, seed=4) == source.sample(1000, seed=4)
    assert source.sample(1000, seed=4) != source.sample(1000, seed=5)
    assert set(source.sample(1000)) == set("xyz")
    assert source.sample(1) in set("xyz")
    same = MarkovSource.random("xyz", order=1, seed=0)
    np.testing.assert_array_equal(same.transitions, source.transitions)


def test_concentration_moves_the_entropy_rate_between_zero_and_uniform():
    rates = [
        MarkovSource.random("abcd", order=2, concentration=c, seed=0).entropy_rate
        for c in (0.05, 0.5, 50.0)
    ]
    assert 0 < rates[0] < rates[1] < rates[2] < math.log(4)
    assert rates[2] > 0.99 * math.log(4)


def test_invalid_sources_are_rejected():
    with pytest.raises(ValueError, match="shape"):
        MarkovSource("ab", 2, np.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="probability distribution"):
        MarkovSource("ab", 1, np.array([[0.5, 0.6], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="distinct"):
        MarkovSource("aa", 0, np.array([[0.5, 0.5]]))
    source = MarkovSource.random("ab", order=1)
    with pytest.raises(ValueError, match=r"outside the alphabet: \['c'\]"):
        source.nats_per_char("abcab")
