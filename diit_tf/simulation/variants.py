"""Experimental DIIT variants tried to make the gate earn its keep (not part of `--methods all`; ask for them by
name). They change only what the gate reads, through a subclass of the library's `GatingAggregator`.

- `diit_source_gate`: the gate reads the student representation **and** every frozen source's representation and
  logit, `g(x) = softmax(MLP([e_T(x), sg(e_S1(x)), ..., sg(e_SK(x)), z_S1(x), ..., z_SK(x)]))`, so it can weigh
  sources per example by what they say about that example (docs/method.md,
  "Making the gate and the adversary earn their keep"), not only by what the student has learned.
"""
from __future__ import annotations

import tensorflow as tf

from diit_tf.layers.gating_aggregator import GatingAggregator


class SourceAwareGate(GatingAggregator):
    """A `GatingAggregator` whose gate MLP reads `[e_T, sg(e_S1..K), z_S1..K]` (sources of equal width only)."""

    query_reads_sources = True

    def build(self, target_representation_shape, source_representations_shape, source_logits_shape):
        widths = {tuple(s)[-1] for s in source_representations_shape}
        if len(widths) > 1 or self.projection_dim is not None:
            raise ValueError("SourceAwareGate supports sources of one common width without projections. "
                             f"Received widths: {sorted(widths)}")
        query = int(target_representation_shape[-1]) + sum(int(tuple(s)[-1]) for s in source_representations_shape)
        query += len(source_logits_shape)
        super().build(tuple(target_representation_shape)[:-1] + (query,), source_representations_shape,
                      source_logits_shape)

    def query(self, target_representation, source_representations, source_logits):
        return tf.concat([target_representation] + [tf.stop_gradient(r) for r in source_representations]
                         + [tf.reshape(tf.stop_gradient(z), (-1, 1)) for z in source_logits], axis=-1)


def use_source_aware_gate(model) -> None:
    """Replace a built `DIITModel`'s gate by a `SourceAwareGate` (before `compile`)."""
    cfg = model.diit_config
    model.gate = SourceAwareGate(num_sources=len(model.teachers), hidden_units=cfg.gate_hidden,
                                 uniform=not cfg.use_gate, name="source_aware_gate")
    model._build_eagerly()


__all__ = ["SourceAwareGate", "use_source_aware_gate"]
