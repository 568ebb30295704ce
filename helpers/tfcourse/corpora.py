"""Text corpora for character-level language models, usable with no network.

- ``"pydoc"`` (the default): the English prose of CPython's documentation topics, shipped
  with every Python in ``pydoc_data.topics`` (about 465K characters on Python 3.11; the text
  changes a little between Python versions). Licence: :data:`PYDOC_LICENCE`.
- ``"shakespeare"``: tiny Shakespeare, downloaded once into a cache folder and verified by
  its SHA-256 checksum (:func:`tiny_shakespeare`).
- ``"markov"``: text sampled from a random Markov source whose entropy rate is known
  exactly (:class:`MarkovSource`), so a model's loss can be compared with the best possible.
- any UTF-8 text file (:func:`read_text_file`).

``load_corpus(name)`` returns any of them as a :class:`Corpus`.
"""

from __future__ import annotations

import bisect
import hashlib
import http.client
import os
import tempfile
import urllib.request
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

PYDOC_LICENCE = (
    "Python Software Foundation License Version 2: the CPython documentation's topic texts, "
    "shipped with Python as pydoc_data.topics"
)
SHAKESPEARE_URL = (
    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
)
SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
SHAKESPEARE_FILENAME = "tiny_shakespeare.txt"
SHAKESPEARE_SOURCE = (
    "tiny Shakespeare (char-rnn's input.txt, 1,115,394 bytes): public-domain Shakespeare "
    f"plays, from {SHAKESPEARE_URL}"
)
CACHE_DIR_ENV = "TFCOURSE_CACHE_DIR"
"""Environment variable naming the folder downloaded corpora are cached in."""

MARKOV_ALPHABET = "abcdefgh"
MARKOV_ORDER = 3
MARKOV_CONCENTRATION = 0.5
MARKOV_LENGTH = 500_000


class CorpusUnavailable(RuntimeError):
    """A corpus cannot be obtained: no network and no valid local copy."""


@dataclass(frozen=True)
class Corpus:
    """A named text with where it comes from and, for synthetic text, its entropy rate."""

    name: str
    text: str
    source: str
    """Where the text comes from and under which licence."""
    entropy_rate: float | None = None
    """The source's entropy rate in nats per character when known exactly, else ``None``."""

    def split(self, train_fraction: float = 0.9) -> tuple[str, str]:
        """The first ``train_fraction`` of the text and the rest (training, validation)."""
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
        cut = int(len(self.text) * train_fraction)
        return self.text[:cut], self.text[cut:]


def load_corpus(name: str | os.PathLike[str] = "pydoc") -> Corpus:
    """The corpus ``"pydoc"``, ``"shakespeare"`` or ``"markov"``, or the text file at ``name``.

    The three names win over files of the same name; write ``./pydoc`` to read such a file.
    """
    if name == "pydoc":
        return Corpus("pydoc", pydoc_topics_text(), PYDOC_LICENCE)
    if name == "shakespeare":
        return Corpus("shakespeare", tiny_shakespeare(), SHAKESPEARE_SOURCE)
    if name == "markov":
        source = MarkovSource.random(MARKOV_ALPHABET, MARKOV_ORDER, MARKOV_CONCENTRATION, seed=0)
        description = (
            f"synthetic: order-{MARKOV_ORDER} Markov source over {MARKOV_ALPHABET!r} with "
            f"Dirichlet({MARKOV_CONCENTRATION}) transition rows, seed 0 (generated; no licence)"
        )
        return Corpus(
            "markov", source.sample(MARKOV_LENGTH, seed=1), description, source.entropy_rate
        )
    path = Path(name)
    return Corpus(path.name, read_text_file(path), f"local file {path}")


def pydoc_topics_text() -> str:
    """CPython's documentation topics (``pydoc_data.topics``) as one English text.

    The topics are joined in sorted key order with a blank line between them, so the text
    is the same on every run of one Python version. Licence: :data:`PYDOC_LICENCE`.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as error:  # some minimal Linux Pythons leave pydoc_data out
        raise CorpusUnavailable(
            "this Python has no pydoc_data module; install your distribution's full Python "
            "standard library, or use load_corpus('shakespeare') or a text file"
        ) from error
    return "\n\n".join(topics[key] for key in sorted(topics))


def read_text_file(path: str | os.PathLike[str]) -> str:
    """The text of a UTF-8 file, newlines normalised to ``\\n`` and a byte-order mark dropped.

    Raises ``FileNotFoundError`` when the file is missing and ``ValueError`` when it is not
    UTF-8 or is empty, each naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no text file at {path.resolve()}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path} is not UTF-8 text: byte {data[error.start]:#04x} at offset {error.start} "
            "cannot be decoded; save the file as UTF-8"
        ) from error
    if not text:
        raise ValueError(f"{path} is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def default_cache_dir() -> Path:
    """Where downloads are cached: ``$TFCOURSE_CACHE_DIR``, else ``tfcourse`` in the user cache.

    The user cache is ``$XDG_CACHE_HOME``, else ``~/.cache``.
    """
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "tfcourse"


def tiny_shakespeare(
    cache_dir: str | os.PathLike[str] | None = None, url: str = SHAKESPEARE_URL
) -> str:
    """Tiny Shakespeare's text, downloaded from ``url`` on first use and cached.

    The cached copy lives in ``cache_dir`` (default: :func:`default_cache_dir`) as
    ``tiny_shakespeare.txt`` and is used only when its SHA-256 checksum matches. Offline,
    copy the file there yourself. Raises :class:`CorpusUnavailable` saying so when there is
    neither a valid copy nor a download.
    """
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cached_download(url, folder / SHAKESPEARE_FILENAME, SHAKESPEARE_SHA256)
    return read_text_file(path)


def cached_download(url: str, path: Path, sha256: str, timeout: float = 30.0) -> Path:
    """Return ``path`` once it holds the file with checksum ``sha256``, downloading if needed.

    A valid file already at ``path`` is used without touching the network. A download is
    written beside ``path`` under a temporary name and moved into place only after its
    checksum matched, so a failed, partial or corrupt download never takes its place.
    """
    if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
        return path
    stale = f"The file at {path} has the wrong checksum. " if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as part, urllib.request.urlopen(url, timeout=timeout) as reply:
            digest = hashlib.sha256()
            while chunk := reply.read(1 << 16):
                digest.update(chunk)
                part.write(chunk)
        if digest.hexdigest() != sha256:
            raise CorpusUnavailable(
                f"the download from {url} is corrupt or incomplete: its sha256 is "
                f"{digest.hexdigest()}, expected {sha256}. {stale}Nothing was kept; try again."
            )
        os.replace(temporary, path)
    except (OSError, http.client.HTTPException) as error:
        raise CorpusUnavailable(
            f"{stale}Cannot download {url} ({error}). Without a network, put a copy of the "
            f"file (sha256 {sha256}) at {path}, or set {CACHE_DIR_ENV} to a folder holding "
            f"{path.name}; load_corpus('pydoc') needs no download."
        ) from error
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


@dataclass(frozen=True, eq=False)
class MarkovSource:
    """A stationary order-``k`` Markov source over the characters of ``alphabet``.

    ``transitions[s, a]`` is the probability of character ``alphabet[a]`` after the context
    ``s``, the last ``order`` characters read as a base-``len(alphabet)`` number (the most
    recent character is the last digit). Every row sums to one.
    """

    alphabet: str
    order: int
    transitions: np.ndarray

    def __post_init__(self) -> None:
        size = len(self.alphabet)
        if size < 2 or len(set(self.alphabet)) != size:
            raise ValueError(
                f"the alphabet needs at least 2 distinct characters: {self.alphabet!r}"
            )
        if self.order < 0:
            raise ValueError(f"order must be at least 0, got {self.order}")
        if self.transitions.shape != (size**self.order, size):
            raise ValueError(
                f"transitions must have shape {(size**self.order, size)}, "
                f"got {self.transitions.shape}"
            )
        if (self.transitions < 0).any() or not np.allclose(self.transitions.sum(axis=1), 1.0):
            raise ValueError("every row of transitions must be a probability distribution")

    @classmethod
    def random(
        cls,
        alphabet: str = "abcd",
        order: int = 2,
        concentration: float = 0.5,
        seed: int = 0,
    ) -> MarkovSource:
        """A source whose transition rows are drawn from a symmetric Dirichlet distribution.

        A small ``concentration`` (below 1) gives peaked, predictable rows; a large one rows
        close to uniform. Same arguments, same source.
        """
        size = len(alphabet)
        rng = np.random.default_rng(seed)
        transitions = rng.dirichlet(np.full(size, concentration), size=size**order)
        return cls(alphabet, order, transitions)

    @cached_property
    def stationary(self) -> np.ndarray:
        """The stationary distribution over the ``len(alphabet) ** order`` contexts.

        It solves ``pi = pi @ C`` with ``sum(pi) = 1``, where ``C`` moves context ``s`` to
        ``s`` shifted by one character. Unique when every transition probability is positive,
        as for :meth:`random` sources.
        """
        system = (self.context_transitions() - np.eye(len(self.transitions))).T
        system[-1] = 1.0  # replace one (redundant) balance equation by the normalisation
        target = np.zeros(len(system))
        target[-1] = 1.0
        # Rounding can leave about -1e-17 for a context that is almost never visited.
        pi = np.maximum(np.linalg.solve(system, target), 0.0)
        return pi / pi.sum()

    def context_transitions(self) -> np.ndarray:
        """The (contexts, contexts) matrix of the chain of contexts: ``C[s, s']``."""
        contexts, size = self.transitions.shape
        matrix = np.zeros((contexts, contexts))
        for symbol in range(size):
            # Reading `symbol` after context s drops s's oldest character (the first digit).
            following = (np.arange(contexts) * size + symbol) % contexts
            matrix[np.arange(contexts), following] += self.transitions[:, symbol]
        return matrix

    @cached_property
    def entropy_rate(self) -> float:
        """The entropy rate in nats per character: ``-sum_s pi(s) sum_a P(a|s) log P(a|s)``."""
        p = self.transitions
        plogp = p * np.log(np.where(p > 0, p, 1.0))  # 0 log 0 = 0
        return float(-(self.stationary @ plogp.sum(axis=1)))

    def sample(self, length: int, seed: int = 0) -> str:
        """``length`` characters of the stationary source (the first context drawn from pi)."""
        rng = np.random.default_rng(seed)
        size = len(self.alphabet)
        context = int(rng.choice(len(self.stationary), p=self.stationary))
        symbols = [(context // size**power) % size for power in reversed(range(self.order))]
        cumulative = np.cumsum(self.transitions, axis=1)
        cumulative[:, -1] = 1.0  # a sum that rounds below 1 must not let u in [0, 1) past it
        rows, contexts = cumulative.tolist(), len(self.transitions)
        for u in rng.random(max(length - self.order, 0)).tolist():
            symbol = bisect.bisect_right(rows[context], u)
            symbols.append(symbol)
            context = (context * size + symbol) % contexts
        return "".join(self.alphabet[symbol] for symbol in symbols[:length])

    def nats_per_char(self, text: str) -> float:
        """The source's average negative log-likelihood of ``text``, in nats per character.

        Each character from position ``order`` on is scored given the ``order`` before it.
        """
        if len(text) <= self.order:
            raise ValueError(f"need more than {self.order} characters, got {len(text)}")
        index = {char: position for position, char in enumerate(self.alphabet)}
        unknown = set(text) - index.keys()
        if unknown:
            raise ValueError(f"characters outside the alphabet: {sorted(unknown)}")
        symbols = np.array([index[char] for char in text])
        size = len(self.alphabet)
        contexts = np.zeros(len(text) - self.order, dtype=np.int64)
        for offset in range(self.order):
            contexts = contexts * size + symbols[offset : len(text) - self.order + offset]
        probabilities = self.transitions[contexts, symbols[self.order :]]
        return float(-np.log(probabilities).mean())
