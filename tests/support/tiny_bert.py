"""A tiny BERT pair in the real TF-Hub format, built by the tests (no download).

``save_bert_preprocessor`` mirrors ``bert_en_uncased_preprocess``: calling the root object on
a batch of strings gives the three-key dict of ``int32 [batch, seq_length]`` tensors, and
the ``.tokenize`` / ``.bert_pack_inputs`` sub-objects give the two steps, the second with an
overridable ``seq_length=``. Tokenizing uses tensorflow_text's ``BertTokenizer`` over a
vocabulary file kept as a SavedModel asset, as the real one does.

``save_bert_encoder`` mirrors the BERT encoders (``bert_en_uncased_L-*_H-*_A-*``): a tf_keras
model saved as a SavedModel, dict in (``input_word_ids``, ``input_mask``, ``input_type_ids``),
dict out (``pooled_output``, ``sequence_output``, ``encoder_outputs``, ``default``), with
trainable variables and dropout that honours ``training=``.
"""

from __future__ import annotations

import random
from pathlib import Path

import tensorflow as tf
import tensorflow_text as text
import tf_keras

from tiny_modules import FILLER, TEXT_WORDS, write_text_csv

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3
# Whole words and a few pieces, so that some words split into word pieces.
VOCABULARY = SPECIAL + FILLER + TEXT_WORDS[0] + TEXT_WORDS[1] + ["##s", "##y", "##ing", "##er", "."]
DEFAULT_SEQ_LENGTH = 128
HIDDEN = 32
MAX_POSITIONS = 512
INPUT_KEYS = ("input_word_ids", "input_mask", "input_type_ids")


class _Tokenize(tf.Module):
    def __init__(self, vocab_file: str):
        super().__init__()
        self.tokenizer = text.BertTokenizer(vocab_file, token_out_type=tf.int32, lower_case=True)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return self.tokenizer.tokenize(sentences)  # int32 ragged [batch, words, pieces]


def _pack(segments, seq_length):
    """BERT's packing: [CLS] a [SEP] (b [SEP]), each segment cut to an equal share, padded to
    seq_length. Cutting uses core ops only, as TF-Hub's preprocessors do (their only
    TensorFlow Text ops are the tokenizer's), so a served model needs no newer TF Text op."""
    flat = [s.merge_dims(1, -1) if s.ragged_rank > 1 else s for s in segments]
    share = (seq_length - len(flat) - 1) // len(flat)
    trimmed = [segment[:, :share] for segment in flat]
    ids, type_ids = text.combine_segments(trimmed, start_of_sequence_id=CLS_ID, end_of_segment_id=SEP_ID)
    word_ids, mask = text.pad_model_inputs(ids, max_seq_length=seq_length, pad_value=PAD_ID)
    type_ids, _ = text.pad_model_inputs(type_ids, max_seq_length=seq_length, pad_value=0)
    return {"input_word_ids": word_ids, "input_mask": mask, "input_type_ids": type_ids}


class _PackInputs(tf.Module):
    def __init__(self, default_seq_length: int):
        super().__init__()

        @tf.function(autograph=False)
        def call(inputs, seq_length=default_seq_length):
            return _pack(inputs, seq_length)

        self.__call__ = call
        for ragged_rank in (1, 2):
            for num_segments in (1, 2):
                call.get_concrete_function(
                    [tf.RaggedTensorSpec([None] * (ragged_rank + 1), tf.int32)] * num_segments,
                    seq_length=tf.TensorSpec([], tf.int32),
                )


class TinyBertPreprocessor(tf.Module):
    """Strings -> the encoder's three inputs, and the two steps as sub-objects."""

    def __init__(self, vocab_file: str, default_seq_length: int = DEFAULT_SEQ_LENGTH):
        super().__init__()
        self.vocab_file = tf.saved_model.Asset(vocab_file)
        self.tokenize = _Tokenize(vocab_file)
        self.bert_pack_inputs = _PackInputs(default_seq_length)
        self._default_seq_length = default_seq_length

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def __call__(self, sentences):
        return _pack([self.tokenize.tokenizer.tokenize(sentences)], self._default_seq_length)


def save_bert_preprocessor(path: Path, default_seq_length: int = DEFAULT_SEQ_LENGTH) -> Path:
    """Save the tiny preprocessor; its vocabulary file is written next to ``path`` first and
    travels inside the SavedModel as an asset."""
    vocab = path.parent / (path.name + ".vocab.txt")
    path.parent.mkdir(parents=True, exist_ok=True)
    vocab.write_text("\n".join(VOCABULARY) + "\n", encoding="utf-8")
    tf.saved_model.save(TinyBertPreprocessor(str(vocab), default_seq_length), str(path))
    return path


def build_bert_encoder(layers: int = 2, hidden: int = HIDDEN, seed: int = 7) -> tf_keras.Model:
    """A small transformer encoder with BERT's interface (not trained: random weights)."""
    init = tf_keras.initializers.TruncatedNormal(stddev=0.02, seed=seed)
    inputs = {key: tf_keras.Input([None], dtype=tf.int32, name=key) for key in INPUT_KEYS}
    word_ids, mask, type_ids = (inputs[key] for key in INPUT_KEYS)
    words = tf_keras.layers.Embedding(len(VOCABULARY), hidden, embeddings_initializer=init, name="word_embeddings")(
        word_ids
    )
    types = tf_keras.layers.Embedding(2, hidden, embeddings_initializer=init, name="type_embeddings")(type_ids)
    positions = tf_keras.layers.Embedding(
        MAX_POSITIONS, hidden, embeddings_initializer=init, name="position_embeddings"
    )(_PositionIds(name="position_ids")(word_ids))
    x = tf_keras.layers.Add()([words, types, positions])
    x = tf_keras.layers.LayerNormalization(epsilon=1e-12, name="embeddings_norm")(x)
    x = tf_keras.layers.Dropout(0.1, seed=seed)(x)
    attention_mask = _AttentionMask(name="attention_mask")(mask)
    layer_outputs = []
    for i in range(layers):
        attended = tf_keras.layers.MultiHeadAttention(
            num_heads=2, key_dim=hidden // 2, dropout=0.1, kernel_initializer=init, name=f"layer_{i}_attention"
        )(x, x, attention_mask=attention_mask)
        x = tf_keras.layers.LayerNormalization(epsilon=1e-12, name=f"layer_{i}_attention_norm")(
            x + tf_keras.layers.Dropout(0.1, seed=seed + i)(attended)
        )
        inner = tf_keras.layers.Dense(
            hidden * 2, activation="gelu", kernel_initializer=init, name=f"layer_{i}_intermediate"
        )(x)
        out = tf_keras.layers.Dense(hidden, kernel_initializer=init, name=f"layer_{i}_output")(inner)
        x = tf_keras.layers.LayerNormalization(epsilon=1e-12, name=f"layer_{i}_output_norm")(
            x + tf_keras.layers.Dropout(0.1, seed=seed + 10 + i)(out)
        )
        layer_outputs.append(x)
    first = tf_keras.layers.Lambda(lambda s: s[:, 0, :], name="first_token")(x)
    pooled = tf_keras.layers.Dense(hidden, activation="tanh", kernel_initializer=init, name="pooler")(first)
    outputs = {"pooled_output": pooled, "sequence_output": x, "encoder_outputs": layer_outputs, "default": pooled}
    return tf_keras.Model(inputs, outputs, name="tiny_bert_encoder")


def save_bert_encoder(path: Path, layers: int = 2, hidden: int = HIDDEN) -> Path:
    """Save the tiny encoder as a TF-Hub reusable SavedModel (as BERT encoders are)."""
    build_bert_encoder(layers, hidden).save(str(path), include_optimizer=False, save_format="tf")
    return path


LONG_TEXTS = 4  # rows of write_bert_csv longer than 16 word pieces
LONG_WORDS = 20


def write_bert_csv(path: Path) -> Path:
    """write_text_csv's topic texts (labels 0 and 1), then LONG_TEXTS rows of LONG_WORDS topic
    words each (more than 16 word pieces with [CLS] and [SEP])."""
    write_text_csv(path, labels=(0, 1))
    rng = random.Random(1)
    with open(path, "a", encoding="utf-8") as handle:
        for i in range(LONG_TEXTS):
            words = [rng.choice(TEXT_WORDS[i % 2] + FILLER) for _ in range(LONG_WORDS)]
            handle.write(f"{i % 2},{' '.join(words)}\n")
    return path


def save_bert_pair(root: Path, bundle: bool = True) -> tuple[Path, Path]:
    """An encoder folder and a preprocessor folder; with ``bundle`` the preprocessor is inside
    the encoder folder as ``preprocessor/``, as ``fetch-model`` packs it."""
    encoder = save_bert_encoder(root / "encoder")
    preprocessor = save_bert_preprocessor((encoder if bundle else root) / "preprocessor")
    return encoder, preprocessor


class _PositionIds(tf_keras.layers.Layer):
    """0, 1, 2, ... for every token of every row (custom layers here take no arguments, so
    tf_keras can rebuild them from their config)."""

    def call(self, word_ids):
        return tf.broadcast_to(tf.range(tf.shape(word_ids)[1])[tf.newaxis], tf.shape(word_ids))


class _AttentionMask(tf_keras.layers.Layer):
    def call(self, mask):
        return tf.cast(mask[:, tf.newaxis, :], tf.bool)  # [batch, 1 (queries), keys]
