"""tfcourse.vocab keeps torchtext's vocabulary semantics; CharTokenizer round-trips text."""

import json
import random
from collections import Counter

import numpy as np
import pytest
import torch

from tfcourse.corpora import pydoc_topics_text
from tfcourse.vocab import CharTokenizer, TokenNotFoundError, Vocab, build_vocab_from_iterator

SENTENCES = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "and", "the", "dog"]]


def ranked_by_frequency(sentences, min_freq=1):
    """The order build_vocab_from_iterator must produce: count descending, then token."""
    counts = Counter(token for sentence in sentences for token in sentence)
    kept = [token for token, count in counts.items() if count >= min_freq]
    return sorted(kept, key=lambda token: (-counts[token], token))


def test_tokens_by_frequency_then_alphabetically_after_specials():
    vocab = build_vocab_from_iterator(SENTENCES, specials=["<unk>", "<pad>"])
    assert vocab.get_itos() == ["<unk>", "<pad>", *ranked_by_frequency(SENTENCES)]
    assert vocab.get_itos()[2:5] == ["the", "cat", "dog"]  # 3, 2, 2 occurrences


def test_specials_last_and_never_twice():
    vocab = build_vocab_from_iterator(
        [["<unk>", "b", "a", "b"]], specials=["<unk>"], special_first=False
    )
    assert vocab.get_itos() == ["b", "a", "<unk>"]


def test_min_freq_drops_rare_tokens():
    vocab = build_vocab_from_iterator(SENTENCES, min_freq=2)
    assert vocab.get_itos() == ranked_by_frequency(SENTENCES, min_freq=2)
    assert "a" not in vocab
    assert "sat" in vocab


def test_max_tokens_counts_specials_and_keeps_the_most_frequent():
    vocab = build_vocab_from_iterator(SENTENCES, specials=["<unk>"], max_tokens=3)
    assert vocab.get_itos() == ["<unk>", *ranked_by_frequency(SENTENCES)[:2]]
    with pytest.raises(ValueError, match="no room"):
        build_vocab_from_iterator(SENTENCES, specials=["<unk>"], max_tokens=1)


def test_accepts_a_generator_of_sentences():
    vocab = build_vocab_from_iterator(sentence for sentence in SENTENCES)
    assert len(vocab) == len(ranked_by_frequency(SENTENCES))


def test_unknown_token_raises_until_a_default_index_is_set():
    vocab = build_vocab_from_iterator(SENTENCES, specials=["<unk>"])
    for error in (KeyError, RuntimeError):
        with pytest.raises(error, match="'bird' is not in the vocabulary"):
            vocab["bird"]
    vocab.set_default_index(vocab["<unk>"])
    assert vocab.get_default_index() == 0
    assert vocab(["the", "bird"]) == [vocab["the"], 0]
    vocab.set_default_index(None)
    with pytest.raises(TokenNotFoundError):
        vocab.lookup_indices(["bird"])


def test_lookups_are_inverse():
    vocab = build_vocab_from_iterator(SENTENCES)
    tokens = ["dog", "the", "and"]
    assert vocab.lookup_tokens(vocab.lookup_indices(tokens)) == tokens
    assert all(vocab.get_stoi()[token] == index for index, token in enumerate(vocab.get_itos()))
    assert vocab.lookup_token(np.int64(1)) == vocab.get_itos()[1]


def test_lookup_token_rejects_out_of_range():
    vocab = build_vocab_from_iterator(SENTENCES)
    for index in (-1, len(vocab)):
        with pytest.raises(IndexError, match=f"index {index} is out of range"):
            vocab.lookup_token(index)


def test_copies_do_not_alias_the_vocab():
    vocab = Vocab(["a", "b"])
    vocab.get_itos().append("c")
    vocab.get_stoi()["c"] = 2
    assert len(vocab) == 2
    assert "c" not in vocab


def test_insert_and_append_shift_indices():
    vocab = Vocab(["a", "b", "c"])
    vocab.insert_token("<pad>", 1)
    vocab.append_token("d")
    assert vocab.get_itos() == ["a", "<pad>", "b", "c", "d"]
    assert vocab.get_stoi() == {token: index for index, token in enumerate(vocab.get_itos())}
    with pytest.raises(ValueError, match="already in the vocabulary"):
        vocab.append_token("a")
    with pytest.raises(IndexError):
        vocab.insert_token("e", 6)
    with pytest.raises(ValueError, match="already"):
        Vocab(["a", "a"])


def test_save_and_load_as_readable_json(tmp_path):
    vocab = build_vocab_from_iterator([["é", "ß", "é"]], specials=["<unk>"])
    vocab.set_default_index(0)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    text = path.read_text("utf-8")
    assert '"é"' in text  # characters stay readable, not \u escapes
    assert json.loads(text)["itos"] == ["<unk>", "é", "ß"]
    assert Vocab.load(path) == vocab


def test_load_rejects_other_json(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"itos": ["a"]}')
    with pytest.raises(ValueError, match="not a vocabulary saved by tfcourse"):
        Vocab.load(path)


def test_char_ids_follow_sorted_characters_like_nanogpt():
    text = "hello, world\n"
    tokenizer = CharTokenizer.from_text(text)
    nanogpt_stoi = {char: index for index, char in enumerate(sorted(set(text)))}
    assert tokenizer.encode(text).tolist() == [nanogpt_stoi[char] for char in text]
    assert tokenizer.unk_id == len(nanogpt_stoi)
    assert tokenizer.vocab_size == len(nanogpt_stoi) + 1


def test_round_trip_on_the_default_corpus():
    text = pydoc_topics_text()
    tokenizer = CharTokenizer.from_text(text)
    ids = tokenizer.encode(text)
    assert ids.dtype == torch.long
    assert ids.shape == (len(text),)
    assert tokenizer.decode(ids) == text


def test_round_trip_on_random_strings_of_known_characters():
    alphabet = "ab \n\tZé€😀"
    tokenizer = CharTokenizer.from_text(alphabet)
    rng = random.Random(0)
    for length in (0, 1, 17, 500):
        text = "".join(rng.choice(alphabet) for _ in range(length))
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_unseen_characters_map_to_the_unknown_id():
    tokenizer = CharTokenizer.from_text("abc")
    ids = tokenizer.encode("abxc")
    assert ids.tolist() == [0, 1, tokenizer.unk_id, 2]
    assert tokenizer.decode(ids) == "ab<unk>c"


def test_without_unk_unseen_characters_raise():
    tokenizer = CharTokenizer.from_text("abc", unk=None)
    assert tokenizer.vocab_size == 3
    with pytest.raises(TokenNotFoundError, match="'x'"):
        tokenizer.encode("x")


def test_an_unk_that_occurs_in_the_text_is_not_added_twice():
    tokenizer = CharTokenizer.from_text("a?b", unk="?")
    assert tokenizer.vocab_size == 3
    assert tokenizer.encode("z").tolist() == [tokenizer.encode("?").item()]


def test_decode_accepts_tensors_lists_and_arrays():
    tokenizer = CharTokenizer.from_text("abc")
    expected = "cab"
    for ids in (
        [2, 0, 1],
        torch.tensor([2, 0, 1]),
        np.array([2, 0, 1]),
        torch.tensor([2, 0, 1], dtype=torch.int32),
    ):
        assert tokenizer.decode(ids) == expected
    assert tokenizer.decode(torch.tensor(2)) == "c"
    assert tokenizer.decode([]) == ""
    with pytest.raises(ValueError, match=r"1-d ids, got a tensor of shape \(1, 3\)"):
        tokenizer.decode(torch.tensor([[2, 0, 1]]))
    with pytest.raises(IndexError, match="index 9 is out of range"):
        tokenizer.decode([9])


def test_tokenizer_save_and_load(tmp_path):
    tokenizer = CharTokenizer.from_text("the quick brown fox")
    tokenizer.save(tmp_path / "tokenizer.json")
    loaded = CharTokenizer.load(tmp_path / "tokenizer.json")
    assert loaded.vocab == tokenizer.vocab
    assert torch.equal(loaded.encode("quiz!"), tokenizer.encode("quiz!"))
