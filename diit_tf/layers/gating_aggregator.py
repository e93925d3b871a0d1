"""Gating aggregator: the domain-level extractor that mixes the frozen source models per example."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from diit_tf.layers.arguments import check_activation, check_positive_int, config_with_activation, serialize_activation


@keras.saving.register_keras_serializable(package="diit_tf")
class GatingAggregator(keras.layers.Layer):
    """Aggregates K source models' representations and logits with a gate computed from the target model.

    The gate reads the target model's representation and outputs one weight per source,
    `g(x) = softmax(Dense_K(a(Dense_hidden(e_T(x)))))` (two layers, softmax over the K sources). The aggregates
    are the gate-weighted sums `ē_S(x) = Σ_k g_k(x) · P_k(e_{S_k}(x))` and `z̄_S(x) = Σ_k g_k(x) · z_{S_k}(x)`.
    `P_k` is a bias-free linear projection `Dense(projection_dim, use_bias=False)`, one per source, created for
    **every** source when `projection_dim` is given or when the source widths differ (then projecting to the
    target width d_T unless `projection_dim` is given); when all sources have the same width and
    `projection_dim` is None, `P_k` is the identity and no weight is created. `uniform=True` is the "no gate"
    ablation: `g_k = 1/K` and no gate weight is created. `prior=True` adds a fixed (non-trainable) log-prior to the
    scores, `g(x) = softmax(Dense_K(a(Dense_hidden(e_T(x)))) + log π)`, where `π` is a set of domain-level weights
    given from outside (`set_prior`, e.g. once per period from each source's quality on the target's labelled rows);
    it starts at uniform (`log π = 0`), and the learned scores then move each row's weights away from `π`. This is DIIT's domain-level extractor (Huang et al.,
    "DIIT: A Domain-Invariant Information Transfer Method for Industrial Cross-Domain Recommendation", CIKM 2024,
    arXiv 2410.10835).

    Example:
    ```python
    gate = GatingAggregator(num_sources=2, hidden_units=64)
    e_bar, z_bar, g = gate(e_target, [e_source_1, e_source_2], [z_source_1, z_source_2])
    # e_bar: (B, d), z_bar: (B, 1), g: (B, 2) with rows summing to 1
    kd = logit_spot_kl(z_bar, z_target, temperature=2.0)
    ```

    Args:
        num_sources: K >= 1, the number of source models.
        hidden_units: positive int, width of the gate's hidden layer.
        projection_dim: None or positive int, the common width of the projected source representations.
        activation: activation of the gate's hidden layer (name or callable).
        uniform: bool; if True, every source gets weight 1/K (ablation without a gate).
        prior: bool; if True, the gate's scores get a fixed log-prior `log π` (`set_prior`), uniform until set.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Call arguments:
        target_representation: (B, d_T) target model's (student's) representation.
        source_representations: list of K tensors (B, d_k); widths may differ.
        source_logits: list of K tensors (B, 1).

    Returns:
        Tuple `(aggregated_representation (B, d), aggregated_logit (B, 1), gate_weights (B, K))`, where d is
        `projection_dim` if given, else d_T when source widths differ, else the common source width.
    """

    def __init__(
        self,
        num_sources: int,
        hidden_units: int = 64,
        projection_dim: int | None = None,
        activation="relu",
        uniform: bool = False,
        prior: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(num_sources, bool) or not isinstance(num_sources, int) or num_sources < 1:
            raise ValueError(f"`num_sources` should be >= 1 (an integer). Received: num_sources={num_sources!r}")
        self.num_sources = num_sources
        self.hidden_units = check_positive_int(hidden_units, "hidden_units")
        self.projection_dim = None if projection_dim is None else check_positive_int(projection_dim, "projection_dim")
        self.activation = check_activation(activation)
        if not isinstance(uniform, bool):
            raise ValueError(f"`uniform` should be a bool. Received: uniform={uniform!r}")
        self.uniform = uniform
        if not isinstance(prior, bool):
            raise ValueError(f"`prior` should be a bool. Received: prior={prior!r}")
        self.prior = prior
        self.prior_logits = None
        self.gate_hidden = None
        self.gate_output = None
        self.projections = None

    def _check_list(self, value, name: str) -> list:
        if not isinstance(value, (list, tuple)) or len(value) != self.num_sources:
            received = f"a list of length {len(value)}" if isinstance(value, (list, tuple)) else type(value).__name__
            raise ValueError(
                f"`{name}` should be a list of num_sources={self.num_sources} tensors (one per source). "
                f"Received: {received}"
            )
        return list(value)

    def build(self, target_representation_shape, source_representations_shape, source_logits_shape):
        source_shapes = self._check_list(source_representations_shape, "source_representations")
        self._check_list(source_logits_shape, "source_logits")
        target_dim = target_representation_shape[-1]
        widths = [shape[-1] for shape in source_shapes]
        if not self._fixed_weights:
            self.gate_hidden = keras.layers.Dense(
                self.hidden_units, activation=self.activation, name="gate_hidden", dtype=self.dtype_policy
            )
            self.gate_hidden.build(target_representation_shape)
            self.gate_output = keras.layers.Dense(self.num_sources, name="gate_output", dtype=self.dtype_policy)
            self.gate_output.build(tuple(target_representation_shape)[:-1] + (self.hidden_units,))
            if self.prior:
                self.prior_logits = self.add_weight(shape=(self.num_sources,), initializer="zeros",
                                                    trainable=False, name="prior_logits")
        if self.projection_dim is not None or len(set(widths)) > 1:
            out_dim = self.projection_dim if self.projection_dim is not None else target_dim
            if out_dim is None:
                raise ValueError(
                    "`target_representation` should have a known last dimension when source widths differ. "
                    f"Received: shape={target_representation_shape}"
                )
            self.projections = []
            for k, shape in enumerate(source_shapes):
                projection = keras.layers.Dense(
                    out_dim, use_bias=False, name=f"projection_{k}", dtype=self.dtype_policy
                )
                projection.build(shape)
                self.projections.append(projection)

    @property
    def _fixed_weights(self) -> bool:
        """Uniform weights, no gate network: the ablation, or a single source (a softmax over one value is 1)."""
        return self.uniform or self.num_sources == 1

    def gate(self, target_representation, with_prior: bool = True):
        """The gate weights g(x), (B, K), rows summing to 1. `with_prior=False`: the learned scores' softmax alone,
        without the prior `log π` (what a loss that should teach the scores something the prior does not say
        reads: the origin loss, `DIITConfig.gate_origin`)."""
        if self._fixed_weights:
            batch = ops.shape(target_representation)[0]
            return ops.ones((batch, self.num_sources), dtype=self.compute_dtype) / self.num_sources
        scores = self.gate_output(self.gate_hidden(target_representation))
        if with_prior and self.prior_logits is not None:
            scores = scores + ops.cast(self.prior_logits, scores.dtype)
        # softmax by hand: oneDNN's softmax kernel cost ~0.27 ms per call for these tiny (B, K) inputs on CPU,
        # more than the rest of the gate (measured with the TF profiler); the values are the same.
        scores = scores - ops.stop_gradient(ops.max(scores, axis=-1, keepdims=True))
        weights = ops.exp(scores)
        return weights / ops.sum(weights, axis=-1, keepdims=True)

    # The smallest prior weight: log π is clipped at log(PRIOR_FLOOR), so a learned score can still revive a source.
    PRIOR_FLOOR = 1e-6

    def set_prior(self, weights) -> None:
        """Set the domain-level prior `π` (K non-negative numbers with a positive sum; normalised here, then
        `log π` clipped at `log(PRIOR_FLOOR)`). Needs `prior=True` and a built layer with a gate network."""
        if not self.prior:
            raise ValueError("This gate has no prior: build it with `prior=True` (DIITConfig(gate_prior=...))")
        if self._fixed_weights:
            return  # uniform or one source: the weights are fixed, a prior has nothing to act on
        if self.prior_logits is None:
            raise ValueError("Build the gate (call it once) before setting its prior")
        w = np.asarray(weights, np.float64).reshape(-1)
        if w.size != self.num_sources or not np.all(np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0:
            raise ValueError(f"`weights` should be {self.num_sources} finite non-negative numbers with a positive "
                             f"sum (one per source). Received: {list(np.round(w, 6))}")
        self.prior_logits.assign(np.log(np.maximum(w / w.sum(), self.PRIOR_FLOOR)).astype("float32"))

    # Whether `query` reads the sources' outputs: this one does not, so a caller that wants only the gate weights
    # (DIITModel.gate_weights) need not run the sources. A subclass whose query reads them sets it to True.
    query_reads_sources = False

    def query(self, target_representation, source_representations, source_logits):
        """What the gate MLP reads: the target representation (a subclass may add the sources' outputs)."""
        return target_representation

    def call(self, target_representation, source_representations, source_logits):
        gate_weights = self.gate(self.query(target_representation, source_representations, source_logits))  # (B, K)
        aggregated_representation, aggregated_logit = self.aggregate(gate_weights, source_representations,
                                                                     source_logits)
        return aggregated_representation, aggregated_logit, gate_weights

    def aggregate(self, gate_weights, source_representations, source_logits):
        """The weighted sums `(ē_S (B, d), z̄_S (B, 1))` for given weights `(B, K)` (e.g. stop-gradiented ones)."""
        source_representations = self._check_list(source_representations, "source_representations")
        source_logits = self._check_list(source_logits, "source_logits")
        if self.projections is not None:
            source_representations = [p(e) for p, e in zip(self.projections, source_representations)]
        stacked = ops.stack(source_representations, axis=1)  # (B, K, d)
        aggregated_representation = ops.sum(ops.expand_dims(gate_weights, -1) * stacked, axis=1)
        return aggregated_representation, self.aggregate_logit(gate_weights, source_logits)

    def aggregate_logit(self, gate_weights, source_logits):
        """`z̄_S (B, 1)` alone, `Σ_k g_k z_Sk`, for given weights `(B, K)`: `aggregate`'s logit, without projecting
        and summing the representations (for a caller that reads only the logit)."""
        source_logits = self._check_list(source_logits, "source_logits")
        logits = ops.concatenate([ops.reshape(z, (-1, 1)) for z in source_logits], axis=-1)  # (B, K)
        return ops.sum(gate_weights * logits, axis=-1, keepdims=True)

    def compute_output_shape(self, target_representation_shape, source_representations_shape, source_logits_shape):
        batch = target_representation_shape[0]
        widths = [shape[-1] for shape in source_representations_shape]
        if self.projection_dim is not None:
            dim = self.projection_dim
        elif len(set(widths)) > 1:
            dim = target_representation_shape[-1]
        else:
            dim = widths[0]
        return (batch, dim), (batch, 1), (batch, self.num_sources)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_sources": self.num_sources,
                "hidden_units": self.hidden_units,
                "projection_dim": self.projection_dim,
                "activation": serialize_activation(self.activation),
                "uniform": self.uniform,
                "prior": self.prior,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config_with_activation(config))
