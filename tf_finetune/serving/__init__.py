"""The fine-tuned model as files and in use: export, serving signatures, TFLite and the predictor."""
