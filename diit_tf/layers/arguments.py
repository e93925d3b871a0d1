"""Argument checks and activation (de)serialization shared by the MLP-style layers (mapper, discriminator, gate).

Errors read "`name` should be ... Received: name=value", raised at construction time.
"""
from __future__ import annotations

import numbers

import keras


def check_positive_int(value, name: str) -> int:
    """Return `value` as an int, or raise "`name` should be a positive integer ..."."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"`{name}` should be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_hidden_units(hidden_units, name: str = "hidden_units") -> tuple:
    """Return `hidden_units` (an int or a non-empty sequence of positive ints) as a tuple of ints."""
    if isinstance(hidden_units, numbers.Integral) and not isinstance(hidden_units, bool):
        hidden_units = (hidden_units,)
    if isinstance(hidden_units, (str, bytes)) or not hasattr(hidden_units, "__iter__"):
        raise ValueError(
            f"`{name}` should be a non-empty sequence of positive integers. Received: {name}={hidden_units!r}"
        )
    units = tuple(hidden_units)
    if not units or any(isinstance(u, bool) or not isinstance(u, numbers.Integral) or u < 1 for u in units):
        raise ValueError(
            f"`{name}` should be a non-empty sequence of positive integers. Received: {name}={hidden_units!r}"
        )
    return tuple(int(u) for u in units)


def check_activation(activation, name: str = "activation"):
    """Raise "`name` should be ..." at construction time when `activation` is not a known activation."""
    try:
        keras.activations.get(activation)
    except Exception as error:  # keras raises ValueError or TypeError depending on the input
        raise ValueError(
            f"`{name}` should be a Keras activation name or callable. Received: {name}={activation!r}"
        ) from error
    return activation


def serialize_activation(activation):
    """An activation for `get_config`: its name as given, or the serialized object for a callable."""
    return keras.saving.serialize_keras_object(activation) if callable(activation) else activation


def config_with_activation(config) -> dict:
    """A copy of `config` with a serialized callable activation turned back into the callable."""
    config = dict(config)
    if isinstance(config.get("activation"), dict):
        config["activation"] = keras.saving.deserialize_keras_object(config["activation"])
    return config
