"""HAMUR: hyper adapters for multi-domain recommendation (Li et al., "HAMUR: Hyper Adapter for Multi-Domain
Recommendation", CIKM 2023, arXiv 2309.06217), one of the paper's baselines, as a multi-domain model trained on
every domain and served for the target.

The multi-domain backbone: one shared input embedding of the features **and the domain id** (its own embedding
table, as the reference code embeds its domain indicator), then one MLP tower per domain; each row goes through its
own domain's tower only. After the tower's last hidden layer `h` (width d) sits that domain's **adapter cell**:

    a = σ(h · W_down(x) + b_down)                       down-projection to the bottleneck r, sigmoid
    u = a · W_up(x) + b_up                              up-projection back to d
    h' = h + DomainNorm_d(u)                            domain norm, then the shortcut
    z = w_d · h' + c_d                                  the domain's output layer (logit)

whose weights are generated per instance by the **domain-shared hypernetwork** through a low-rank decomposition:
`M(x) = reshape(MLP(x_emb), (k, k))` (ReLU on every layer, output included, as in the reference) from the instance's
embedding `x_emb` (domain id included), and `W_down(x) = U_down M(x) V_down` (d×r), `W_up(x) = U_up M(x) V_up`
(r×d) with learned `U_down (d×k)`, `V_down (k×r)`, `U_up (r×k)`, `V_up (k×d)`. The products are taken
right to left per row (`((h U) M) V`), which equals `h (U M V)` without forming the d×r matrices.
`DomainNorm` normalises with the statistics of the domain's rows in the batch while training, and with moving
averages of them at inference (then scales by γ_d and shifts by β_d).

Differences to the reference code (github.com/Applied-Machine-Learning-Lab/HAMUR, `MLP_adap_2_layer_1_adp`, which
Scenario-Wise-Rec's `HamurSmall` repeats), each a simplification or a choice where paper and code differ:
- Towers have no BatchNorm and the hypernetwork has none either (the reference puts BatchNorm1d after every linear
  layer): every model of this project's simulation uses the same plain MLP (`hidden_units`, `embedding_dim`).
- One adapter cell after the last hidden layer, whatever the depth (the reference: one cell for its 2-layer MLP,
  which is our default `(128, 64)`, and two cells, after the last two hidden layers, for its 7-layer MLP).
- The adapter's parameters (U, V, biases, γ, β) are per domain, as the paper's "domain-specific adapter" says; the
  reference code shares one set between the domains' towers. The hypernetwork is shared, as in both.
- Domain norm: the reference normalises with the mean and (unbiased) variance of the whole batch, at training and
  at test time alike; here the statistics are those of the domain's own rows in the batch (the rows that pass
  through that tower), with moving averages at inference, so a served prediction does not depend on the other
  rows of its request (a domain with no row in a batch leaves its moving averages unchanged).
- U and V start Glorot-uniform (the reference: all ones, which makes every entry of the generated matrices equal).
- Each row is routed through its own domain's tower only (the reference runs every tower on every row and keeps
  each row's own domain output: same outputs, K times the compute).
- The backbone is always this MLP (the reference also plugs the adapter into Wide&Deep and DCN towers).

Example:
    model = build_hamur_model(spec, hidden_units=(128, 64), embedding_dim=16, adapter_units=32, rank=32)
    out = model(joint_features(period_rows))          # {"representation": (B, 64), "logit": (B, 1)}
    served = model(joint_features(target_rows, domain=spec.target))

Args (build_hamur_model):
  spec: the FeatureSpec (at least 2 domains); the model reads `joint_spec(spec)`'s inputs (features + domain id).
  hidden_units: every domain tower's MLP widths.
  embedding_dim: width of every embedding table (the domain id's too).
  adapter_units: the adapter bottleneck r (reference: 32).
  rank: k, the side of the generated matrix M(x) (reference: 35 on MovieLens, 25-65 elsewhere).
  hyper_units: hidden widths of the hypernetwork MLP (reference: (64,)).
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from diit_tf.baselines.joint import DOMAIN_FEATURE, joint_spec
from diit_tf.layers.arguments import check_hidden_units, check_positive_int
from diit_tf.layers.feature_embedding import FeatureEmbedding


@keras.saving.register_keras_serializable(package="diit_tf")
class DomainNorm(keras.layers.Layer):
    """Batch normalisation over the rows it is given (one domain's), safe on empty batches.

    Training: `y = γ (x - μ_B) / sqrt(σ²_B + ε) + β` with the batch mean and biased variance; the moving averages
    move by `(1 - momentum)` towards them (not at all when the batch is empty). Inference: the moving averages.
    Shapes: (B, d) -> (B, d).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"`momentum` should be in [0, 1). Received: momentum={momentum!r}")
        if not epsilon > 0:
            raise ValueError(f"`epsilon` should be > 0. Received: epsilon={epsilon!r}")
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        d = int(input_shape[-1])
        self.gamma = self.add_weight(shape=(d,), initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=(d,), initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=(d,), initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=(d,), initializer="ones", trainable=False,
                                               name="moving_variance")

    def standardize(self, x, training=False):
        """`(x - μ) / sqrt(σ² + ε)` with the batch (training) or moving (inference) statistics."""
        if training:
            n = ops.cast(ops.shape(x)[0], x.dtype)
            safe = ops.maximum(n, 1.0)
            mean = ops.sum(x, axis=0) / safe
            variance = ops.sum(ops.square(x - mean), axis=0) / safe
            rate = (1.0 - self.momentum) * ops.minimum(n, 1.0)
            self.moving_mean.assign(self.moving_mean + rate * (mean - self.moving_mean))
            self.moving_variance.assign(self.moving_variance + rate * (variance - self.moving_variance))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        return (x - mean) / ops.sqrt(variance + self.epsilon)

    def call(self, x, training=False):
        return self.gamma * self.standardize(x, training=training) + self.beta

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "epsilon": self.epsilon}


@keras.saving.register_keras_serializable(package="diit_tf")
class HyperNetwork(keras.layers.Layer):
    """The domain-shared hypernetwork: instance embedding (B, D) -> instance matrix M(x) (B, k, k).

    `M(x) = reshape(ReLU(Dense_{k·k}(... ReLU(Dense_{h1}(x)) ...)), (k, k))`.
    """

    def __init__(self, rank: int, hidden_units=(64,), **kwargs):
        super().__init__(**kwargs)
        self.rank = check_positive_int(rank, "rank")
        self.hidden_units = check_hidden_units(hidden_units)
        self.layers_ = [keras.layers.Dense(u, activation="relu", name=f"hyper_{i}")
                        for i, u in enumerate(self.hidden_units + (self.rank * self.rank,))]

    def build(self, input_shape):
        width = int(input_shape[-1])
        for layer in self.layers_:
            layer.build((None, width))
            width = layer.units

    def call(self, x):
        for layer in self.layers_:
            x = layer(x)
        return ops.reshape(x, (-1, self.rank, self.rank))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.rank, self.rank)

    def get_config(self):
        return {**super().get_config(), "rank": self.rank, "hidden_units": list(self.hidden_units)}


@keras.saving.register_keras_serializable(package="diit_tf")
class HyperAdapter(keras.layers.Layer):
    """One domain's adapter cell, with weights generated per row from M(x) (see the module doc).

    Call: `(h (B, d), m (B, k, k))` -> `h + DomainNorm(σ(h W_down + b_down) W_up + b_up)`, (B, d).
    """

    def __init__(self, bottleneck: int, rank: int, factor_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.bottleneck = check_positive_int(bottleneck, "bottleneck")
        self.rank = check_positive_int(rank, "rank")
        self.factor_initializer = keras.initializers.get(factor_initializer)
        self.norm = DomainNorm(name="domain_norm")

    def build(self, h_shape, m_shape=None):
        d, r, k = int(h_shape[-1]), self.bottleneck, self.rank
        init = self.factor_initializer
        self.u_down = self.add_weight(shape=(d, k), initializer=init, name="u_down")
        self.v_down = self.add_weight(shape=(k, r), initializer=init, name="v_down")
        self.b_down = self.add_weight(shape=(r,), initializer="zeros", name="b_down")
        self.u_up = self.add_weight(shape=(r, k), initializer=init, name="u_up")
        self.v_up = self.add_weight(shape=(k, d), initializer=init, name="v_up")
        self.b_up = self.add_weight(shape=(d,), initializer="zeros", name="b_up")
        self.norm.build((None, d))

    @staticmethod
    def _through(x, u, m, v):
        """Row-wise `x_b · (U M_b V)`, computed as `((x_b U) M_b) V`."""
        return ops.matmul(ops.einsum("bk,bkj->bj", ops.matmul(x, u), m), v)

    def adapter_weights(self, m):
        """The generated matrices per row: `W_down` (B, d, r) and `W_up` (B, r, d)."""
        w_down = ops.einsum("ik,bkj,jn->bin", self.u_down, m, self.v_down)
        w_up = ops.einsum("ik,bkj,jn->bin", self.u_up, m, self.v_up)
        return w_down, w_up

    def call(self, h, m, training=False):
        a = ops.sigmoid(self._through(h, self.u_down, m, self.v_down) + self.b_down)
        u = self._through(a, self.u_up, m, self.v_up) + self.b_up
        return h + self.norm(u, training=training)

    def compute_output_shape(self, h_shape, m_shape=None):
        return h_shape

    def get_config(self):
        return {**super().get_config(), "bottleneck": self.bottleneck, "rank": self.rank,
                "factor_initializer": keras.initializers.serialize(self.factor_initializer)}


@keras.saving.register_keras_serializable(package="diit_tf")
class HyperAdaptedTowers(keras.layers.Layer):
    """One MLP tower + adapter cell + logit per domain; each row goes through its own domain's tower only.

    Call: `(x_emb (B, D), m (B, k, k), domain_ids (B,))` -> `(representation (B, d), logit (B, 1))`, where the
    representation is the adapted last hidden layer `h'` of the row's own tower.
    """

    def __init__(self, num_domains: int, hidden_units=(128, 64), bottleneck: int = 32, rank: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_domains = check_positive_int(num_domains, "num_domains")
        self.hidden_units = check_hidden_units(hidden_units)
        self.bottleneck = check_positive_int(bottleneck, "bottleneck")
        self.rank = check_positive_int(rank, "rank")
        self.towers = [keras.Sequential([keras.layers.Dense(u, activation="relu", name=f"dense_{i}")
                                         for i, u in enumerate(self.hidden_units)], name=f"tower_{d}")
                       for d in range(self.num_domains)]
        self.adapters = [HyperAdapter(self.bottleneck, self.rank, name=f"adapter_{d}") for d in range(self.num_domains)]
        self.heads = [keras.layers.Dense(1, name=f"logit_{d}") for d in range(self.num_domains)]

    def build(self, x_shape, m_shape=None, domain_ids_shape=None):
        for tower, adapter, head in zip(self.towers, self.adapters, self.heads):
            tower.build((None, int(x_shape[-1])))
            width = self.hidden_units[-1]
            adapter.build((None, width), (None, self.rank, self.rank))
            head.build((None, width))

    def call(self, x, m, domain_ids, training=False):
        ids = tf.cast(tf.reshape(domain_ids, [-1]), tf.int32)
        rows = tf.dynamic_partition(tf.range(tf.shape(ids)[0]), ids, self.num_domains)
        xs = tf.dynamic_partition(x, ids, self.num_domains)
        ms = tf.dynamic_partition(m, ids, self.num_domains)
        reps, logits = [], []
        for d in range(self.num_domains):
            h = self.adapters[d](self.towers[d](xs[d], training=training), ms[d], training=training)
            reps.append(h)
            logits.append(self.heads[d](h))
        representation = tf.dynamic_stitch(rows, reps)
        logit = tf.dynamic_stitch(rows, logits)
        representation.set_shape([None, self.hidden_units[-1]])
        logit.set_shape([None, 1])
        return representation, logit

    def compute_output_shape(self, x_shape, m_shape=None, domain_ids_shape=None):
        return (x_shape[0], self.hidden_units[-1]), (x_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "num_domains": self.num_domains, "hidden_units": list(self.hidden_units),
                "bottleneck": self.bottleneck, "rank": self.rank}


def build_hamur_model(spec, hidden_units=(128, 64), embedding_dim: int = 16, adapter_units: int = 32, rank: int = 32,
                      hyper_units=(64,), domain_feature: str = DOMAIN_FEATURE, name: str = "hamur") -> keras.Model:
    """HAMUR as a functional model over `joint_spec(spec).keras_inputs()` (see the module doc)."""
    aug = joint_spec(spec, domain_feature)
    inputs = aug.keras_inputs()
    x = FeatureEmbedding(aug.categorical, aug.numeric, embedding_dim=embedding_dim, name="features")(inputs)
    m = HyperNetwork(rank, hyper_units, name="hypernetwork")(x)
    representation, logit = HyperAdaptedTowers(len(spec.domains), hidden_units, adapter_units, rank,
                                               name="domain_towers")(x, m, inputs[domain_feature])
    outputs = {"representation": keras.layers.Identity(name="representation")(representation),
               "logit": keras.layers.Identity(name="logit")(logit)}
    return keras.Model(inputs, outputs, name=name)
