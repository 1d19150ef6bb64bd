"""Text preprocessors of the BERT family (TF-Hub's ``*_preprocess`` models): sequence length.

A preprocessing model in TF-Hub's interface maps strings to the encoder's three inputs
(``input_word_ids``, ``input_mask``, ``input_type_ids``, each ``int32 [batch, seq_length]``)
at its default sequence length (128 for ``bert_en_uncased_preprocess``). It also exposes the
two steps, ``.tokenize`` and ``.bert_pack_inputs(..., seq_length=)``, which is how another
length is used. Texts with more word pieces than fit are cut; :meth:`Preprocessor.count_long`
says how many.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tf_finetune.backbones.custom_ops import register_ops_for
from tf_finetune.errors import BackboneError

if TYPE_CHECKING:  # TensorFlow only when a preprocessor is loaded
    import tensorflow as tf
    from tensorflow_hub import KerasLayer

log = logging.getLogger(__name__)

MAX_SEQ_LENGTH = 512  # the position table of every TF-Hub BERT-family encoder
_SPECIAL_TOKENS = 2  # [CLS] and [SEP] around one segment
_COUNT_BATCH = 512


@dataclass(frozen=True)
class LongTexts:
    """Texts cut to the sequence length.

    Attributes:
        count: texts with more word pieces than fit (they are truncated).
        total: texts looked at.
        longest: word pieces of the longest text, [CLS] and [SEP] included.
        seq_length: the sequence length they were measured against.
    """

    count: int
    total: int
    longest: int
    seq_length: int

    def record(self) -> dict:
        """The counts as stored in ``metrics.json``."""
        return {"truncated": self.count, "texts": self.total, "longest_tokens": self.longest}


class Preprocessor:
    """A loaded text preprocessing SavedModel.

    Args:
        path: its local folder.
        name: what to call it in messages (the backbone's name).
    """

    def __init__(self, path: str, name: str) -> None:
        import tensorflow as tf

        register_ops_for(path, f"the text preprocessor of {name} ({path})")
        self.path, self.name = path, name
        self._module = tf.saved_model.load(path)
        self._tf = tf

    @property
    def has_steps(self) -> bool:
        """Whether it exposes ``.tokenize`` and ``.bert_pack_inputs`` (TF-Hub's BERT interface)."""
        return hasattr(self._module, "tokenize") and hasattr(self._module, "bert_pack_inputs")

    def default_seq_length(self) -> int | None:
        """The sequence length its root call produces (None: not a BERT-style preprocessor)."""
        outputs = self._module(self._tf.constant([""]))
        word_ids = outputs.get("input_word_ids") if isinstance(outputs, dict) else None
        return None if word_ids is None else int(word_ids.shape[1])

    def seq_length(self, requested: int | None) -> int | None:
        """The sequence length training uses: ``requested``, else the preprocessor's own.

        Raises:
            BackboneError: a length is requested but the preprocessor cannot change its own.
        """
        if requested is None:
            return self.default_seq_length()
        if not self.has_steps:
            raise BackboneError(
                f"max_seq_length={requested}: the preprocessor of {self.name} ({self.path}) has no "
                ".tokenize and .bert_pack_inputs, so its sequence length cannot be changed; leave "
                "max_seq_length unset"
            )
        return requested

    def keras_layers(self, requested: int | None) -> KerasLayer:
        """A function applying the preprocessor to a Keras string input.

        With ``requested`` unset the root call runs (its own length); otherwise tokenize,
        then ``bert_pack_inputs`` with ``seq_length=requested``.
        """
        from tf_finetune.backbones.tfhub import hub

        if requested is None:
            return hub.KerasLayer(self.path, name="preprocessor")
        # One layer over one traced function (strings in): a saved model reloads it as it is,
        # where two layers passing a list of ragged tensors would not reload (tf_keras).
        return hub.KerasLayer(_packing_module(self._module, requested), name="preprocessor")

    def count_long(self, texts: Sequence[str], seq_length: int) -> LongTexts | None:
        """How many of ``texts`` do not fit in ``seq_length`` word pieces (None without
        ``.tokenize``)."""
        if not self.has_steps or not texts:
            return None
        tf = self._tf
        longest, count = 0, 0
        for start in range(0, len(texts), _COUNT_BATCH):
            tokens = self._module.tokenize(tf.constant(list(texts[start : start + _COUNT_BATCH])))
            while isinstance(tokens, tf.RaggedTensor) and tokens.ragged_rank > 1:
                tokens = tokens.merge_dims(1, 2)
            lengths = tokens.row_lengths().numpy() + _SPECIAL_TOKENS
            longest = max(longest, int(lengths.max()))
            count += int((lengths > seq_length).sum())
        return LongTexts(count, len(texts), longest, seq_length)


def _packing_module(module: Any, seq_length: int) -> tf.Module:
    """A tf.Module whose ``__call__`` tokenizes strings and packs them to ``seq_length``."""
    import tensorflow as tf

    class BertPacking(tf.Module):
        def __init__(self) -> None:
            super().__init__(name="bert_packing")
            self.preprocessor = module  # tracked: its vocabulary table is saved with the model

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def __call__(self, texts: tf.Tensor) -> dict[str, tf.Tensor]:
            return self.preprocessor.bert_pack_inputs([self.preprocessor.tokenize(texts)], seq_length=seq_length)

    return BertPacking()


def describe_long(split: str, long: LongTexts) -> str:
    """One log line about truncation in ``split``."""
    if not long.count:
        return f"sequence length {long.seq_length}: every {split} text fits (longest {long.longest} word pieces)"
    return (
        f"sequence length {long.seq_length}: {long.count} of {long.total} {split} texts are "
        f"longer and are truncated (longest {long.longest} word pieces); set max_seq_length "
        f"(up to {MAX_SEQ_LENGTH}) to keep more"
    )
