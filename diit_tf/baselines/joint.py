"""One multi-domain model trained on every domain (shared bottom with a domain embedding and per-domain heads).

The bottom is the chosen backbone over the features plus one extra categorical input, the domain id (its own
embedding, so the whole bottom is domain-aware); the output is the bottom's logit plus a per-domain linear head on
the shared representation, `z(x, d) = z_shared(x, d) + w_d · e(x, d)` (heads zero-initialised). Trained
incrementally on all domains' rows of each period; served for the target with `domain_id = index(target)`.
This is the "shared-bottom with a domain embedding" reading of docs/method.md's joint baseline; STAR's star-topology
layers are `diit_tf/baselines/star.py`, HAMUR's hyper adapters `diit_tf/baselines/hamur.py`.

Example:
    model = build_joint_model("dnn", spec)
    x = joint_features(period_rows)                   # features + "domain_id"
"""
from __future__ import annotations

import keras
import numpy as np

from diit_tf.backbones import build_backbone
from diit_tf.features import FeatureSpec
from diit_tf.layers import DomainTag

DOMAIN_FEATURE = "domain_id"


def joint_spec(spec: FeatureSpec, domain_feature: str = DOMAIN_FEATURE) -> FeatureSpec:
    """`spec` plus one categorical input holding the domain index (one bucket per domain)."""
    if domain_feature in spec.categorical or domain_feature in spec.numeric:
        raise ValueError(f"feature {domain_feature!r} already exists in the spec; pick another `domain_feature`")
    if len(spec.domains) < 2:
        raise ValueError(f"a joint model needs at least 2 domains. Received: {list(spec.domains)}")
    return FeatureSpec(categorical={**spec.categorical, domain_feature: len(spec.domains)}, numeric=spec.numeric,
                       label=spec.label, domain=spec.domain, domains=spec.domains, target=spec.target)


def joint_features(period, domain_feature: str = DOMAIN_FEATURE, domain: str = None) -> dict:
    """The rows' model inputs plus their domain index (or, with `domain`, every row tagged as that domain)."""
    features = dict(period.features)
    if domain is None:
        ids = period.domain_ids.astype(np.int64)
    else:
        ids = np.full(len(period), period.spec.domain_index(domain), np.int64)
    features[domain_feature] = ids
    return features


def build_joint_model(backbone: str, spec: FeatureSpec, domain_feature: str = DOMAIN_FEATURE, **options):
    """The joint model: a functional Keras model over `joint_spec(spec).keras_inputs()`."""
    aug = joint_spec(spec, domain_feature)
    options.setdefault("name", "joint_bottom")
    bottom = build_backbone(backbone, aug, **options)
    inputs = aug.keras_inputs()
    out = bottom(inputs)
    k = len(spec.domains)
    heads = keras.layers.Dense(k, kernel_initializer="zeros", name="domain_heads")(out["representation"])
    onehot = keras.ops.one_hot(keras.ops.cast(inputs[domain_feature], "int32"), k)
    logit = out["logit"] + keras.ops.sum(heads * onehot, axis=-1, keepdims=True)
    return keras.Model(inputs, {"representation": out["representation"], "logit": logit}, name="joint")


def as_domain_model(joint: keras.Model, spec: FeatureSpec, domain: str = None, domain_feature: str = DOMAIN_FEATURE,
                    name: str = "joint_as_domain") -> keras.Model:
    """`joint` seen as a single-domain backbone of `spec`: the same inputs and outputs as the target's model, with
    every row tagged as `domain` (the target by default) before it reaches `joint`. So a jointly trained model can
    teach the target's single-domain model (`kd_joint`): its logit on a source row is what it predicts the target
    would do there. Shares `joint`'s weights (no copy); saves and loads as a `.keras` file (`DomainTag`)."""
    inputs = spec.keras_inputs()
    tag = DomainTag(spec.domain_index(domain or spec.target), name="domain_tag")(inputs[next(iter(inputs))])
    out = joint({**inputs, domain_feature: tag})
    return keras.Model(inputs, {"representation": out["representation"], "logit": out["logit"]}, name=name)
