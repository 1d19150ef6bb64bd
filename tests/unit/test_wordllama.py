"""The built-in ``wordllama-words256`` text backbone, called directly: the tokenizer, which pieces
of the real ``wordllama`` package become words and which vectors they get (checked against the
package's safetensors file and tokenizer JSON, read here independently), the mean-of-word-vectors
TextEmbedding (checked with numpy on small hand-made vocabularies, and after a save and reload),
and building the module into the cache once, atomically (``ensure_module`` / ``ensure_builtin``).
The full module is built once for the whole file."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import re
import resource
import signal
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tf_finetune.backbones.builtin import BUILTINS, ensure_builtin
from tf_finetune.backbones.builtin import wordllama as wl
from tf_finetune.errors import BackboneError

NAME = "wordllama-words256"
PACKAGE = Path(importlib.util.find_spec("wordllama").origin).parent
WORD_START = "\u2581"


def _package_vocab() -> dict[str, int]:
    tokenizer = PACKAGE / "tokenizers" / "l2_supercat_tokenizer_config.json"
    return json.loads(tokenizer.read_text("utf-8"))["model"]["vocab"]


def _package_rows() -> np.ndarray:
    """The embedding matrix, parsed from the safetensors layout (8-byte header size, JSON header, data)."""
    raw = (PACKAGE / "weights" / "l2_supercat_256.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    (entry,) = [v for k, v in json.loads(raw[8 : 8 + size]).items() if k != "__metadata__"]
    assert entry["dtype"] == "F16"
    start, end = entry["data_offsets"]
    return np.frombuffer(raw[8 + size + start : 8 + size + end], "<f2").reshape(entry["shape"]).astype(np.float32)


def _whole_word(word: str) -> bool:
    """Letters, marks and digits only, or one punctuation mark or symbol (not SentencePiece's own mark)."""
    kinds = {unicodedata.category(c)[0] for c in word}
    return kinds <= set("LMN") or (len(word) == 1 and kinds <= set("PS") and word != WORD_START)


@pytest.fixture(scope="module")
def package():
    """(vocabulary, rows, expected words, their piece ids), all from the package's own files."""
    vocab = _package_vocab()
    best: dict[str, tuple[bool, int]] = {}
    for piece, piece_id in vocab.items():
        word = piece[1:]
        if piece.startswith(WORD_START) and word and _whole_word(word):
            rank = (word != word.lower(), piece_id)
            best[word.lower()] = min(rank, best.get(word.lower(), rank))
    words = sorted(best, key=lambda w: best[w][1])
    return vocab, _package_rows(), words, [best[w][1] for w in words]


@pytest.fixture(scope="module")
def read():
    return wl.read_word_vectors(PACKAGE)


@contextlib.contextmanager
def _build_messages():
    """The messages wordllama logs at INFO (one per build) while active."""
    messages: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = logging.getLogger(wl.__name__)
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the module folder, the cache, what the build logged): ensure_builtin into an empty cache."""
    cache = tmp_path_factory.mktemp("wordllama-cache")
    with _build_messages() as messages:
        folder = ensure_builtin(NAME, cache)
    return folder, cache, messages


def _save(module, path: Path) -> Path:
    wl.save_module(module, path)
    return path


WORDS = ["the", "rain", "snow", "école", ",", "!", "über"]
VECTORS = np.random.default_rng(7).normal(size=(len(WORDS), 5)).astype(np.float32)
# (sentence, the vocabulary words it holds, one entry per occurrence)
SENTENCES = [
    ("rain snow", ["rain", "snow"]),
    ("The RAIN, the rain!", ["the", "rain", ",", "the", "rain", "!"]),
    ("ÉCOLE über alles", ["école", "über"]),
    ("drizzle and snow", ["snow"]),
    ("snow\u00a0rain", ["snow", "rain"]),  # a non-breaking space separates words too
    ("nothing known here", []),
    ("", []),
]


def _mean_of(words: list[str], vocabulary: list[str], vectors: np.ndarray) -> np.ndarray:
    if not words:
        return np.zeros(vectors.shape[1], np.float32)
    return vectors[[vocabulary.index(w) for w in words]].mean(axis=0)


def _tiny_module(folder: Path) -> wl.TextEmbedding:
    folder.mkdir(parents=True, exist_ok=True)
    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(WORDS) + "\n", encoding="utf-8")
    return wl.TextEmbedding(str(vocab), VECTORS)


def _tokens(texts: list[str]) -> list[list[str]]:
    return [[t.decode("utf-8") for t in row] for row in wl.tokenize(tf.constant(texts)).to_list()]


def test_tokenize_lower_cases_every_script_and_splits_on_any_run_of_whitespace():
    texts = ["Hello  World", "ÉCOLE\tÜber\nALLES ", "ΑΘΗΝΑ МОСКВА", "", " \t\n "]
    assert _tokens(texts) == [["hello", "world"], ["école", "über", "alles"], ["αθηνα", "москва"], [], []]


def test_tokenize_makes_each_punctuation_mark_and_symbol_its_own_token():
    texts = ["Hello, world!", "don't", "«Oui»", "a+b=c", "€5...", "e-mail"]
    assert _tokens(texts) == [
        ["hello", ",", "world", "!"],
        ["don", "'", "t"],
        ["«", "oui", "»"],
        ["a", "+", "b", "=", "c"],
        ["€", "5", ".", ".", "."],
        ["e", "-", "mail"],
    ]


def test_tokenize_keeps_combining_marks_and_digits_inside_their_word():
    assert _tokens(["Nai\u0308ve abc123 x²"]) == [["nai\u0308ve", "abc123", "x²"]]


@pytest.mark.parametrize("piece", ["hello", "école", "nai\u0308ve", "2024", "½", ",", "«", "€", "—"])
def test_letters_marks_digits_or_one_punctuation_mark_or_symbol_are_a_word(piece):
    assert wl._is_word(piece)


@pytest.mark.parametrize("piece", ["e-mail", "he's", "a.", "..", WORD_START, "\xa0", "\r", "\u200b", "a b"])
def test_pieces_mixing_letters_and_punctuation_or_made_of_spaces_and_controls_are_not_words(piece):
    assert not wl._is_word(piece)


def test_the_vocabulary_is_the_lower_cased_whole_word_pieces_most_frequent_first(package, read):
    _, _, expected_words, _ = package
    words, _ = read
    assert words == expected_words  # ordered by piece id: SentencePiece numbers its pieces by frequency
    assert len(set(words)) == len(words) and all(w == w.lower() for w in words)


def test_each_word_gets_the_packages_row_of_its_piece(package, read):
    _, rows, _, piece_ids = package
    _, vectors = read
    assert vectors.dtype == np.float32 and vectors.shape == (len(piece_ids), 256)
    np.testing.assert_array_equal(vectors, rows[piece_ids])


def test_a_lower_case_piece_wins_over_a_more_frequent_capitalised_one(package, read):
    vocab, rows, _, _ = package
    words, vectors = read
    for word in ("i", "however"):
        lower, capital = vocab[WORD_START + word], vocab[WORD_START + word.capitalize()]
        assert capital < lower  # the capitalised piece is the more frequent one
        np.testing.assert_array_equal(vectors[words.index(word)], rows[lower])
    # A word the package has only capitalised still gets in, lower-cased.
    assert WORD_START + "john" not in vocab
    np.testing.assert_array_equal(vectors[words.index("john")], rows[vocab[WORD_START + "John"]])
    # Pieces of runs of punctuation or of word-start marks are no words.
    assert {WORD_START + "...", WORD_START + "--", WORD_START * 4} <= set(vocab)
    assert {"...", "--", WORD_START * 3}.isdisjoint(words) and "John" not in words


def test_every_word_of_the_vocabulary_is_the_one_token_tokenize_makes_of_it(read):
    words, _ = read
    assert _tokens(words) == [[w] for w in words]


def test_text_embedding_is_the_mean_of_the_known_words_vectors_and_zeros_without_one(tmp_path):
    module = _tiny_module(tmp_path)
    out = module(tf.constant([s for s, _ in SENTENCES])).numpy()
    expected = np.stack([_mean_of(known, WORDS, VECTORS) for _, known in SENTENCES])
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    assert not out[-2:].any()


def test_text_embedding_of_an_empty_batch_is_an_empty_batch_of_vectors(tmp_path):
    assert _tiny_module(tmp_path)(tf.constant([], tf.string)).shape == (0, VECTORS.shape[1])


def test_text_embedding_trains_its_one_variable_only_on_the_rows_of_known_words(tmp_path):
    module = _tiny_module(tmp_path)
    assert module.trainable_variables == [module.embeddings] and module.embeddings.trainable
    np.testing.assert_array_equal(module.embeddings.numpy(), VECTORS)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(module(tf.constant([s for s, _ in SENTENCES])))
    gradient = tf.convert_to_tensor(tape.gradient(loss, module.embeddings)).numpy()
    expected = np.zeros_like(VECTORS)
    for _, known in SENTENCES:
        for word in known:  # d(sum of the mean)/d(row) = occurrences / known words in the sentence
            expected[WORDS.index(word)] += 1.0 / len(known)
    np.testing.assert_allclose(gradient, expected, rtol=1e-6)


def test_a_saved_text_embedding_reloads_with_the_same_output_in_tensorflow_and_keras(tmp_path):
    import tensorflow_hub as hub

    module = _tiny_module(tmp_path / "src")
    saved = _save(module, tmp_path / "module")
    (tmp_path / "src" / "vocab.txt").unlink()  # the SavedModel carries its own copy as an asset
    texts = tf.constant([s for s, _ in SENTENCES])
    expected = np.stack([_mean_of(known, WORDS, VECTORS) for _, known in SENTENCES])
    loaded = tf.saved_model.load(str(saved))
    np.testing.assert_allclose(loaded(texts).numpy(), expected, rtol=1e-6, atol=1e-6)
    served = loaded.signatures["serving_default"](inputs=texts)
    (output,) = served.values()
    np.testing.assert_allclose(output.numpy(), expected, rtol=1e-6, atol=1e-6)
    layer = hub.KerasLayer(str(saved), trainable=True)
    np.testing.assert_allclose(layer(texts).numpy(), expected, rtol=1e-6, atol=1e-6)
    assert [tuple(w.shape) for w in layer.trainable_weights] == [VECTORS.shape]


def test_the_builtin_is_built_once_into_the_cache_with_the_packages_words_and_licence(built, package):
    folder, cache, messages = built
    _, _, words, _ = package
    assert folder == cache / "builtin" / NAME and (folder / "saved_model.pb").is_file()
    assert [p.name for p in (cache / "builtin").iterdir()] == [NAME]  # no staging folder left
    assert len(messages) == 1 and f"{len(words)} words x 256 dims" in messages[0]
    assert (folder / "assets" / "vocab.txt").read_text("utf-8").splitlines() == words
    (licence,) = PACKAGE.parent.glob("wordllama-*.dist-info/licenses/LICENSE")
    assert (folder / "LICENSE").read_bytes() == licence.read_bytes()


def test_the_built_module_embeds_a_sentence_as_the_mean_of_the_packages_rows(built, package):
    folder, _, _ = built
    vocab, rows, words, _ = package
    loaded = tf.saved_model.load(str(folder))
    known = ["über", "the", "cat", ",", "however", ",", "sat", "on", "the", "mat", "."]
    assert "zzqxv" not in words and set(known) <= set(words)
    out = loaded(tf.constant(["Über THE cat, however, sat on the zzqxv mat.", "zzqxv"])).numpy()
    pieces = [vocab[WORD_START + w] for w in known]
    np.testing.assert_allclose(out[0], rows[pieces].mean(axis=0), rtol=1e-5, atol=1e-6)
    assert out.shape == (2, 256) and not out[1].any()
    assert [tuple(v.shape) for v in loaded.trainable_variables] == [(len(words), 256)]


def test_a_second_call_returns_the_same_folder_without_rebuilding(built):
    folder, cache, _ = built
    before = sorted((str(p), p.stat().st_mtime_ns) for p in cache.rglob("*"))
    with _build_messages() as messages:
        assert ensure_builtin(NAME, cache) == folder
        assert wl.ensure_module(folder) == folder
    assert messages == []
    assert sorted((str(p), p.stat().st_mtime_ns) for p in cache.rglob("*")) == before


@contextlib.contextmanager
def _file_size_limit(limit: int):
    """Writes past ``limit`` bytes of a file fail with EFBIG ("File too large"), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel ends the process
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_build_that_fails_half_way_leaves_neither_a_module_nor_a_staging_folder(tmp_path):
    # The 13 MB of vectors stop at 4 MB: the SavedModel is half written when the build fails.
    with _file_size_limit(4 << 20), pytest.raises(tf.errors.OpError, match="File too large"):
        wl.ensure_module(tmp_path / NAME)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["wordllama", "WORDLLAMA-words256", "../wordllama-words256", ""])
def test_an_unknown_builtin_is_one_clear_error_that_builds_nothing(tmp_path, name):
    assert name not in BUILTINS
    with pytest.raises(BackboneError, match=re.escape(f"unknown built-in backbone {name!r}; known: {NAME}")):
        ensure_builtin(name, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_damaged_module_folder_in_the_cache_is_one_error_naming_it(tmp_path):
    damaged = tmp_path / NAME
    damaged.mkdir()
    (damaged / "variables").mkdir()  # what an interrupted copy or a half-deleted cache leaves
    with pytest.raises(BackboneError, match=f"{re.escape(str(damaged))} holds no saved_model.pb .*delete that folder"):
        wl.ensure_module(damaged)
    assert [p.name for p in tmp_path.iterdir()] == [NAME]  # no staging folder left
