"""tf_finetune: fine-tune TensorFlow Hub backbones for image and text classification.

The Python door is :func:`tf_finetune.fine_tune` (or :func:`tf_finetune.training.job.run` with a
:class:`tf_finetune.job_options.JobConfig`); errors a user can fix are
:class:`tf_finetune.errors.TfFinetuneError`.
"""

__version__ = "0.1.0"

from tf_finetune.api import fine_tune as fine_tune  # the notebook door; imports no TensorFlow
