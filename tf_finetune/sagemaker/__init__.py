"""SageMaker: the training container's side, ``launch``, the SDK submission, instance types and the
endpoint's request handlers (``inference.py``)."""
