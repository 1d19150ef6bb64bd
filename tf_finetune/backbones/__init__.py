"""Backbones: from a handle to a local TF-Hub SavedModel, one concern per module.

- :mod:`~tf_finetune.backbones.loading`: a handle (hub URL, folder, archive, ``builtin:``,
  Keras file) to a local SavedModel folder; its image size and requirements.
- :mod:`~tf_finetune.backbones.tfhub`: ``tensorflow_hub``, importable anywhere.
- :mod:`~tf_finetune.backbones.keras_import`: a whole Keras classifier imported as a
  backbone (with :mod:`keras_graph`, :mod:`keras_pixels` and :mod:`keras_module`).
- :mod:`~tf_finetune.backbones.packing`: ``fetch-model`` and ``import-backbone``, a backbone
  packed for network-isolated jobs.
- :mod:`~tf_finetune.backbones.bert_inputs` and :mod:`~tf_finetune.backbones.custom_ops`:
  BERT-style text preprocessors and the TensorFlow Text ops they need.
- :mod:`~tf_finetune.backbones.builtin`: modules built locally from pip packages.

The spec of a backbone is :class:`tf_finetune.registry.ModelSpec`, for catalogue entries and
bare handles alike.
"""
