"""Backbones behind one contract: features in, `{"representation": (B, d), "logit": (B, 1)}` out.

The representation is the last hidden layer (the paper's "middle spot"); the logit gives `ŷ = sigmoid(logit)`.
Every backbone is a plain Keras 3 functional model over `spec.keras_inputs()`, so a student is exportable as it is.

Example:
    student = build_backbone("dcn", spec, hidden_units=(128, 64), embedding_dim=16, name="student")
    out = student(features)          # out["representation"]: (B, 64), out["logit"]: (B, 1)
"""
from __future__ import annotations

from diit_tf.backbones.dcn import build_dcn
from diit_tf.backbones.dnn import build_dnn
from diit_tf.backbones.wdl import build_wdl

BACKBONES = {"dnn": build_dnn, "dcn": build_dcn, "wdl": build_wdl}


def build_backbone(backbone: str, spec, **options):
    """Build backbone `backbone` ("dnn", "dcn" or "wdl") for FeatureSpec `spec`.

    Options (all backbones): `hidden_units=(128, 64)`, `embedding_dim=16`, `dropout=0.0`, `activation="relu"`,
    `name` (the Keras model name). DCN adds `cross_layers=2` and `projection_dim=None`.
    """
    try:
        builder = BACKBONES[backbone]
    except KeyError:
        raise ValueError(f"`backbone` should be one of {sorted(BACKBONES)}. Received: {backbone!r}") from None
    return builder(spec, **options)


__all__ = ["BACKBONES", "build_backbone", "build_dcn", "build_dnn", "build_wdl"]
