"""SageMaker script-mode entry point: fine-tune a TF-Hub backbone with tf_finetune.

    TensorFlow(entry_point="train.py", source_dir="entrypoints", dependencies=["tf_finetune"],
               hyperparameters={"model_id": "mobilenet-v2-100-224", "epochs": 5}, ...)
        .fit({"training": "s3://bucket/data/", "validation": "s3://bucket/val/"})

The sagemaker-training toolkit runs this file with the hyperparameters as arguments and the
SM_* variables set; everything else is in tf_finetune.sagemaker.
"""
import sys

from tf_finetune.sagemaker import main

if __name__ == "__main__":
    sys.exit(main())
