"""SageMaker script-mode entry point: fine-tune a TF-Hub backbone with tf_finetune.

``tf-finetune launch`` sends it, with ``requirements.txt`` and the package beside it
(``tf_finetune.sagemaker.sdk.source_folder``; docs/sagemaker.md shows the same with SDK v3's
ModelTrainer and v2's TensorFlow estimator). In the container, SDK v3's drivers or the v2
``sagemaker-training`` toolkit run this file with the hyperparameters as arguments and the
SM_* variables set; everything else is in tf_finetune.sagemaker.container.
"""

import sys

from tf_finetune.sagemaker.container import main

if __name__ == "__main__":
    sys.exit(main())
