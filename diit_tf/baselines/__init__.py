"""The paper's comparators, each under the same period protocol and backbone as DIIT.

- `dann`: domain-adversarial training of the target model (GRL + domain classifier) on target and mix rows.
- `ctnet`: continual transfer, the target takes frozen source representations as extra inputs (sources stay in the
  serving path).
- `joint`: one multi-domain model, shared bottom with a domain embedding and per-domain output heads.
- `kd`: plain logit distillation from the uniform average of the source models.
- `finetune`: a target model re-initialised every period from a model trained on all domains.
HAMUR is not implemented (see docs/results.md).
"""
from diit_tf.baselines.ctnet import CTNet
from diit_tf.baselines.dann import DANN
from diit_tf.baselines.finetune import copy_weights
from diit_tf.baselines.joint import build_joint_model, joint_features, joint_spec
from diit_tf.baselines.kd import UniformKD

__all__ = ["CTNet", "DANN", "UniformKD", "build_joint_model", "copy_weights", "joint_features", "joint_spec"]
