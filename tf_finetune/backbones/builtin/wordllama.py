"""A TF-Hub-format text embedding built from the word vectors in the ``wordllama`` package.

The package ships Llama-2 tokenizer pieces and their 256-d ``l2_supercat`` embeddings. The
module keeps the pieces that are whole words, lower-cased, and embeds a sentence as the
mean of its known words' vectors (zeros when no word is known), using core TF ops only, so
the SavedModel loads anywhere TensorFlow does. Trainable: fine-tuning updates the vectors.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_finetune import storage
from tf_finetune.errors import BackboneError

log = logging.getLogger(__name__)

_WEIGHTS = "weights/l2_supercat_256.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
_WORD_START = "\u2581"  # SentencePiece's mark of a piece that starts a word


def tokenize(texts: tf.Tensor) -> tf.RaggedTensor:
    """Lower-case, make each punctuation mark its own token, split on whitespace."""
    lowered = tf.strings.lower(texts, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, r"([^\pL\pM\pN\s])", r" \1 ")
    return tf.strings.split(spaced)


def _package_dir() -> Path:
    spec = importlib.util.find_spec("wordllama")  # located, never imported
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "the built-in backbone wordllama-words256 needs the 'wordllama' package: pip install wordllama"
        )
    return Path(list(spec.submodule_search_locations)[0])


def _is_word(piece: str) -> bool:
    categories = [unicodedata.category(c)[0] for c in piece]
    if all(c in "LMN" for c in categories):
        return True
    return len(piece) == 1 and categories[0] not in "LMNZC" and piece != _WORD_START and not piece.isspace()


def read_word_vectors(package: Path) -> tuple[list[str], np.ndarray]:
    """Whole-word vocabulary (lower-case, most frequent first) and its float32 vectors."""
    from safetensors.numpy import load

    (matrix,) = load((package / _WEIGHTS).read_bytes()).values()
    vocab = json.loads((package / _TOKENIZER).read_text("utf-8"))["model"]["vocab"]
    pieces = [(p[1:], i) for p, i in vocab.items() if p.startswith(_WORD_START) and len(p) > 1 and _is_word(p[1:])]
    tokens = tokenize(tf.constant([w for w, _ in pieces])).to_list()
    best: dict[str, tuple[int, int]] = {}
    for (word, piece_id), toks in zip(pieces, tokens):
        if len(toks) != 1:
            continue
        key = toks[0].decode("utf-8")
        rank = (0 if word == key else 1, piece_id)  # prefer the lower-case piece, then the earliest
        if key not in best or rank < best[key]:
            best[key] = rank
    ordered = sorted(best.items(), key=lambda kv: kv[1][1])
    words = [w for w, _ in ordered]
    return words, matrix[[r[1] for _, r in ordered]].astype(np.float32)


class TextEmbedding(tf.train.Checkpoint):
    """Reusable SavedModel object: sentences -> mean of the known words' vectors."""

    def __init__(self, vocab_file: str, vectors: np.ndarray):
        super().__init__()
        self._vocab = tf.saved_model.Asset(vocab_file)
        initializer = tf.lookup.TextFileInitializer(
            self._vocab, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER
        )
        self._table = tf.lookup.StaticHashTable(initializer, default_value=-1)
        self.embeddings = tf.Variable(vectors, trainable=True, name="embeddings")
        self.variables = [self.embeddings]
        self.trainable_variables = [self.embeddings]
        self.regularization_losses: list = []

    @tf.function
    def __call__(self, inputs: tf.Tensor, training: bool = False) -> tf.Tensor:
        del training  # no dropout or batch norm
        ids = self._table.lookup(tokenize(inputs))
        ids = tf.ragged.boolean_mask(ids, ids >= 0)
        total = tf.reduce_sum(tf.ragged.map_flat_values(tf.gather, self.embeddings, ids), axis=1)
        count = tf.cast(ids.row_lengths(), tf.float32)[:, tf.newaxis]
        return tf.math.divide_no_nan(total, count)


def save_module(module: TextEmbedding, out_dir: Path) -> None:
    """Save ``module`` as a TF-Hub SavedModel: ``__call__`` traced for training and inference,
    and the inference one as the ``serving_default`` signature."""
    spec = tf.TensorSpec([None], tf.string, name="inputs")
    for training in (False, True):
        module.__call__.get_concrete_function(spec, training=training)
    serving = module.__call__.get_concrete_function(spec, training=False)
    tf.saved_model.save(module, str(out_dir), signatures={"serving_default": serving})


def build_module(out_dir: Path) -> None:
    """Write the SavedModel (with ``assets/vocab.txt`` and the package's licence) to ``out_dir``."""
    package = _package_dir()
    words, vectors = read_word_vectors(package)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_file = Path(tmp) / "vocab.txt"
        vocab_file.write_text("\n".join(words) + "\n", encoding="utf-8")
        save_module(TextEmbedding(str(vocab_file), vectors), out_dir)
    licence = next(package.parent.glob("wordllama-*.dist-info/licenses/LICENSE"), None) or next(
        package.parent.glob("wordllama-*.dist-info/LICENSE*"), None
    )
    if licence:
        shutil.copy(licence, out_dir / "LICENSE")
    log.info("built wordllama-words256: %d words x %d dims -> %s", len(words), vectors.shape[1], out_dir)


def ensure_module(target: Path) -> Path:
    """Build the module into ``target`` unless it is already there; returns ``target``."""
    if (target / "saved_model.pb").is_file():
        return target
    if target.is_dir() and any(target.iterdir()):  # modules arrive whole (a rename): this one was damaged
        raise BackboneError(
            f"{target} holds no saved_model.pb (a damaged cache entry): delete that folder and run again"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        build_module(staging)
        storage.move_into_place(staging, target)  # atomic: readers never see a half-built module
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
