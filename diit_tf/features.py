"""The feature specification: which columns are categorical ids, numeric values, the label and the domain.

Categorical ids are hashed into a fixed number of buckets with FarmHash (`tf.strings.to_hash_bucket_fast`), so the
same raw id maps to the same embedding row in every period: warm start stays meaningful without a vocabulary. The
transform is stateless (no analyzers), so the TFX Transform `preprocessing_fn`, the simulation and the exported
serving signature all run the very same function, `FeatureSpec.transform`.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Mapping

import numpy as np
import tensorflow as tf

CATEGORICAL_DTYPE = "int64"
NUMERIC_DTYPE = "float32"


@dataclasses.dataclass(frozen=True)
class FeatureSpec:
    """Columns of a cross-domain CTR dataset.

    Args:
      categorical: mapping of categorical column name to its number of hash buckets.
      numeric: names of numeric columns (float).
      label: name of the 0/1 click label column.
      domain: name of the column holding the domain name of each row.
      domains: all domain names, in a fixed order (the index of a name is its domain id).
      target: the target domain's name (one of `domains`).
    """

    categorical: Mapping[str, int]
    numeric: tuple = ()
    label: str = "label"
    domain: str = "domain"
    domains: tuple = ()
    target: str = ""

    def __post_init__(self):
        object.__setattr__(self, "categorical", dict(self.categorical))
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "domains", tuple(self.domains))
        if not self.categorical and not self.numeric:
            raise ValueError("FeatureSpec needs at least one categorical or numeric feature. Received none.")
        for name, buckets in self.categorical.items():
            if not isinstance(buckets, (int, np.integer)) or buckets < 1:
                raise ValueError(f"`categorical[{name!r}]` should be a positive number of hash buckets. Received: {buckets!r}")
        clash = set(self.categorical) & set(self.numeric)
        if clash:
            raise ValueError(f"Features cannot be both categorical and numeric: {sorted(clash)}")
        for reserved in (self.label, self.domain):
            if reserved in self.categorical or reserved in self.numeric:
                raise ValueError(f"Column {reserved!r} is the label or domain column and cannot also be a feature.")
        if self.target and self.domains and self.target not in self.domains:
            raise ValueError(f"`target` should be one of the domains {list(self.domains)}. Received: {self.target!r}")

    # ----------------------------------------------------------------- names
    @property
    def feature_names(self) -> list:
        return list(self.categorical) + list(self.numeric)

    @property
    def sources(self) -> list:
        """The source domains: every domain but the target, in order."""
        return [d for d in self.domains if d != self.target]

    def domain_index(self, name: str) -> int:
        try:
            return self.domains.index(name)
        except ValueError:
            raise ValueError(f"Unknown domain {name!r}; known domains: {list(self.domains)}") from None

    # ---------------------------------------------------------------- parsing
    def raw_feature_spec(self, with_label: bool = True, with_domain: bool = True) -> dict:
        """`tf.io.parse_example` spec of raw columns: ids as strings, numerics as float32. No defaults: a
        missing feature is an error, never a silent zero."""
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in self.categorical}
        spec.update({name: tf.io.FixedLenFeature([], tf.float32) for name in self.numeric})
        if with_label:
            spec[self.label] = tf.io.FixedLenFeature([], tf.float32)
        if with_domain:
            spec[self.domain] = tf.io.FixedLenFeature([], tf.string)
        return spec

    def transform(self, raw: Mapping[str, tf.Tensor]) -> dict:
        """Raw columns -> model inputs. Stateless TF ops only, so TF Serving and tf.Transform can run it.

        Categorical values (string or integer) become int64 bucket ids; numerics become float32; the label (when
        present) becomes float32 and the domain (when present) is kept as a string under its own name.
        """
        out = {}
        for name, buckets in self.categorical.items():
            out[name] = hash_ids(_require(raw, name), buckets)
        for name in self.numeric:
            out[name] = tf.cast(_require(raw, name), tf.float32)
        if self.label in raw:
            out[self.label] = tf.cast(raw[self.label], tf.float32)
        if self.domain in raw:
            out[self.domain] = tf.strings.as_string(raw[self.domain]) if raw[self.domain].dtype != tf.string else raw[self.domain]
        return out

    def keras_inputs(self) -> dict:
        """One `keras.Input` per model feature (scalars per example), named after the column."""
        import keras

        inputs = {name: keras.Input(shape=(), dtype=CATEGORICAL_DTYPE, name=name) for name in self.categorical}
        inputs.update({name: keras.Input(shape=(), dtype=NUMERIC_DTYPE, name=name) for name in self.numeric})
        return inputs

    def check_features(self, features: Mapping, where: str = "features") -> None:
        """Raise a ValueError naming the problem if `features` is not a batch of model inputs."""
        if not isinstance(features, Mapping):
            raise ValueError(f"{where} should be a dict of feature name to tensor. Received: {type(features).__name__}")
        missing = [n for n in self.feature_names if n not in features]
        if missing:
            raise ValueError(f"{where} is missing feature(s) {missing}; expected {self.feature_names}")
        for name in self.feature_names:
            value = features[name]
            dtype = tf.as_dtype(getattr(value, "dtype", np.asarray(value).dtype))
            want = CATEGORICAL_DTYPE if name in self.categorical else NUMERIC_DTYPE
            ok = dtype.is_integer if name in self.categorical else dtype.is_floating
            if not ok:
                raise ValueError(f"{where}[{name!r}] should have dtype {want}. Received: {dtype.name}")
            shape = getattr(value, "shape", np.shape(value))
            if len(shape) != 1:
                raise ValueError(f"{where}[{name!r}] should have shape (batch,). Received: {tuple(shape)}")

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {
            "categorical": dict(self.categorical),
            "numeric": list(self.numeric),
            "label": self.label,
            "domain": self.domain,
            "domains": list(self.domains),
            "target": self.target,
        }

    @classmethod
    def from_dict(cls, d: Mapping) -> "FeatureSpec":
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"Unknown FeatureSpec field(s): {sorted(unknown)}")
        return cls(**d)

    def save(self, path) -> None:
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2)

    @classmethod
    def load(cls, path) -> "FeatureSpec":
        with open(path) as f:
            return cls.from_dict(json.load(f))


def hash_ids(values, buckets: int) -> tf.Tensor:
    """Stable FarmHash bucket of each id (strings, or integers hashed through their decimal string)."""
    values = tf.convert_to_tensor(values)
    if values.dtype != tf.string:
        values = tf.strings.as_string(values)
    return tf.strings.to_hash_bucket_fast(values, buckets)


def _require(raw: Mapping, name: str):
    if name not in raw:
        raise ValueError(f"Raw input is missing feature {name!r}; received columns {sorted(raw)}")
    return raw[name]
