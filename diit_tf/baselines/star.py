"""STAR: the star-topology adaptive recommender (Sheng et al., "One Model to Serve All: Star Topology Adaptive
Recommender for Multi-Domain CTR Prediction", CIKM 2021), a multi-domain model trained on every domain and served
for the target.

Three parts, on the shared embedding `x` of the features and the domain id:
- **Partitioned normalization** (PN): `x' = (γ ⊙ γ_d) (x - μ_d) / sqrt(σ²_d + ε) + (β + β_d)`, where `μ_d, σ²_d` are
  the statistics of domain d's rows in the batch while training and their moving averages at inference, `γ, β`
  are shared and `γ_d, β_d` belong to the row's domain.
- **Star-topology FCN**: every layer's weights are the element-wise product of a shared and a domain matrix and its
  bias their sum, `h_{l+1} = ReLU(h_l (W_l ⊙ W_{d,l}) + b_l + b_{d,l})`, ending in a star layer with one output
  `s_m` (no ReLU); the last hidden layer is the representation.
- **Auxiliary network**: a small MLP over `x` (which holds the domain id's embedding) giving a logit `s_a`;
  the model's logit is `s_m + s_a`.

Each row goes through its own domain's weights only (`tf.dynamic_partition` / `dynamic_stitch`). Domain matrices
start at ones and domain biases at zeros, so every domain starts from the shared network.

Differences to the paper and to Scenario-Wise-Rec's `Star` (github.com/Xiaopengli1/Scenario-Wise-Rec): trained on
mixed-domain batches, as every method of this simulation (the paper feeds one domain per batch; PN's statistics
here are those of the domain's rows in the mixed batch); no BatchNorm after the star layers (Scenario-Wise-Rec adds
a per-domain BatchNorm1d after each one); no ReLU on the final star logit (Scenario-Wise-Rec applies one);
domain matrices start at ones (Scenario-Wise-Rec: Kaiming-uniform for both factors).

Example:
    model = build_star_model(spec, hidden_units=(128, 64), embedding_dim=16, aux_units=(32,))
    out = model(joint_features(period_rows))          # {"representation": (B, 64), "logit": (B, 1)}

Args (build_star_model):
  spec: the FeatureSpec (at least 2 domains); the model reads `joint_spec(spec)`'s inputs (features + domain id).
  hidden_units: the star FCN's hidden widths.
  embedding_dim: width of every embedding table.
  aux_units: hidden widths of the auxiliary network.
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from diit_tf.baselines.hamur import DomainNorm
from diit_tf.baselines.joint import DOMAIN_FEATURE, joint_spec
from diit_tf.layers.arguments import check_hidden_units, check_positive_int
from diit_tf.layers.feature_embedding import FeatureEmbedding


@keras.saving.register_keras_serializable(package="diit_tf")
class StarTopology(keras.layers.Layer):
    """Partitioned normalization + star-topology FCN; each row uses its own domain's parameters.

    Call: `(x (B, D), domain_ids (B,))` -> `(representation (B, h_last), logit s_m (B, 1))`.
    """

    def __init__(self, num_domains: int, hidden_units=(128, 64), **kwargs):
        super().__init__(**kwargs)
        self.num_domains = check_positive_int(num_domains, "num_domains")
        self.hidden_units = check_hidden_units(hidden_units)
        # PN: per-domain statistics and (γ_d, β_d); the shared (γ, β) are below.
        self.norms = [DomainNorm(name=f"partitioned_norm_{d}") for d in range(self.num_domains)]

    def build(self, x_shape, domain_ids_shape=None):
        d_in = int(x_shape[-1])
        self.pn_gamma = self.add_weight(shape=(d_in,), initializer="ones", name="pn_gamma")
        self.pn_beta = self.add_weight(shape=(d_in,), initializer="zeros", name="pn_beta")
        for norm in self.norms:
            norm.build((None, d_in))
        widths = (d_in,) + self.hidden_units + (1,)
        self.shared_kernels, self.shared_biases, self.domain_kernels, self.domain_biases = [], [], [], []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            self.shared_kernels.append(self.add_weight(shape=(a, b), initializer="glorot_uniform", name=f"w_{i}"))
            self.shared_biases.append(self.add_weight(shape=(b,), initializer="zeros", name=f"b_{i}"))
            self.domain_kernels.append([self.add_weight(shape=(a, b), initializer="ones", name=f"w_{i}_domain_{d}")
                                        for d in range(self.num_domains)])
            self.domain_biases.append([self.add_weight(shape=(b,), initializer="zeros", name=f"b_{i}_domain_{d}")
                                       for d in range(self.num_domains)])

    def domain_forward(self, x, d, training=False):
        """Domain d's PN and star FCN on rows that all belong to domain d."""
        norm = self.norms[d]
        h = (self.pn_gamma * norm.gamma) * norm.standardize(x, training=training) + (self.pn_beta + norm.beta)
        representation = None
        for i, (w, b) in enumerate(zip(self.shared_kernels, self.shared_biases)):
            h = ops.matmul(h, w * self.domain_kernels[i][d]) + b + self.domain_biases[i][d]
            if i < len(self.shared_kernels) - 1:
                h = ops.relu(h)
                representation = h
        return representation, h

    def call(self, x, domain_ids, training=False):
        ids = tf.cast(tf.reshape(domain_ids, [-1]), tf.int32)
        rows = tf.dynamic_partition(tf.range(tf.shape(ids)[0]), ids, self.num_domains)
        xs = tf.dynamic_partition(x, ids, self.num_domains)
        reps, logits = zip(*(self.domain_forward(xs[d], d, training) for d in range(self.num_domains)))
        representation = tf.dynamic_stitch(rows, list(reps))
        logit = tf.dynamic_stitch(rows, list(logits))
        representation.set_shape([None, self.hidden_units[-1]])
        logit.set_shape([None, 1])
        return representation, logit

    def compute_output_shape(self, x_shape, domain_ids_shape=None):
        return (x_shape[0], self.hidden_units[-1]), (x_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "num_domains": self.num_domains, "hidden_units": list(self.hidden_units)}


def build_star_model(spec, hidden_units=(128, 64), embedding_dim: int = 16, aux_units=(32,),
                     domain_feature: str = DOMAIN_FEATURE, name: str = "star") -> keras.Model:
    """STAR as a functional model over `joint_spec(spec).keras_inputs()` (see the module doc)."""
    aug = joint_spec(spec, domain_feature)
    inputs = aug.keras_inputs()
    x = FeatureEmbedding(aug.categorical, aug.numeric, embedding_dim=embedding_dim, name="features")(inputs)
    representation, main_logit = StarTopology(len(spec.domains), hidden_units, name="star")(x, inputs[domain_feature])
    aux = x
    for i, units in enumerate(check_hidden_units(aux_units, "aux_units")):
        aux = keras.layers.Dense(units, activation="relu", name=f"aux_{i}")(aux)
    aux_logit = keras.layers.Dense(1, name="aux_logit")(aux)
    outputs = {"representation": keras.layers.Identity(name="representation")(representation),
               "logit": keras.layers.Identity(name="logit")(keras.layers.Add(name="star_plus_aux")([main_logit,
                                                                                                   aux_logit]))}
    return keras.Model(inputs, outputs, name=name)
