"""The paper's comparators, each under the same period protocol and backbone as DIIT.

- `dann`: domain-adversarial training of the target model (GRL + domain classifier) on target and mix rows.
- `ctnet`: continual transfer, the target takes frozen source representations as extra inputs (sources stay in the
  serving path).
- `joint`: one multi-domain model, shared bottom with a domain embedding and per-domain output heads.
- `hamur`: HAMUR, per-domain towers with adapters whose weights a domain-shared hypernetwork generates per instance.
- `star`: STAR, partitioned normalization and star-topology layers (shared ⊙ per-domain weights) + an auxiliary net.
- `kd`: plain logit distillation from a fixed weighting of frozen teachers (uniform, quality-weighted, the best
  single source, or the previous-period target model).
- `finetune`: a target model re-initialised every period from a model trained on all domains.
"""
from diit_tf.baselines.ctnet import CTNet
from diit_tf.baselines.dann import DANN
from diit_tf.baselines.finetune import copy_weights
from diit_tf.baselines.hamur import (DomainNorm, HyperAdaptedTowers, HyperAdapter, HyperNetwork,
                                     build_hamur_model)
from diit_tf.baselines.joint import as_domain_model, build_joint_model, joint_features, joint_spec
from diit_tf.baselines.kd import (ROW_WEIGHTS, UniformKD, WeightedKD, quality_weights, static_weights, teacher_gains,
                                  teacher_logits)
from diit_tf.baselines.star import StarTopology, build_star_model

__all__ = ["ROW_WEIGHTS", "CTNet", "DANN", "DomainNorm", "HyperAdaptedTowers", "HyperAdapter", "HyperNetwork", "StarTopology",
           "UniformKD", "WeightedKD", "as_domain_model", "build_hamur_model", "build_joint_model", "build_star_model", "copy_weights",
           "joint_features", "joint_spec", "quality_weights", "static_weights", "teacher_gains", "teacher_logits"]
