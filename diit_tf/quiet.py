"""Quiet logging for entry points: TensorFlow's C++ logs and the stack's FutureWarnings / DeprecationWarnings.

Importing `diit_tf` changes nothing process-wide. Programs call `quiet_logging()` first thing, before TensorFlow
is imported (its C++ log level is read from the environment when it loads): the `diit` command (`diit_tf/cli.py`),
`python pipeline/diit.py`, the scripts under `scripts/` and the test suite's `tests/conftest.py`. Values the
caller already set in the environment win.

Example:
    from diit_tf.quiet import quiet_logging
    quiet_logging()
    import tensorflow as tf  # no oneDNN / CUDA notices
"""
import os
import warnings


def quiet_logging() -> None:
    """Hide TensorFlow's C++ INFO/WARNING/ERROR logs and library Future/DeprecationWarnings; Keras on TensorFlow."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
