"""Loss reduction under `tf.distribute`: what a custom `train_step` must do so that N replicas make the same update
as one device on the whole global batch.

Under a multi-replica strategy every replica runs `train_step` on its share of the global batch (B/N rows), and
`optimizer.apply_gradients` sums the replicas' gradients (one all-reduce, then one update of the mirrored
variables). A loss that is the mean over the replica's rows must therefore be divided by N before its gradient is
taken: `Σ_r ∇(L_r / N) = ∇ mean_global L` when the shares are equal. Keras does this in its built-in `train_step`
(`scale_loss_for_distribution`, not public); the custom steps of this project (CTR, DIIT's two phases) call
`scaled_for_replicas` instead. Metrics are fed the unscaled loss: Keras' `Mean` trackers are synchronised on read
and report the mean over replicas.

Example:
    with tf.GradientTape() as tape:
        loss = ctr_bce(y, model(x, training=True)["logit"])
        replica_loss = scaled_for_replicas(loss)      # inside the tape, so the gradient flows through it
    grads = tape.gradient(replica_loss, variables)
"""
from __future__ import annotations

import tensorflow as tf


def num_replicas() -> int:
    """Replicas in sync of the strategy in scope (1 outside any strategy)."""
    return int(tf.distribute.get_strategy().num_replicas_in_sync)


def scaled_for_replicas(loss):
    """`loss / num_replicas()`: the per-replica share of a global-batch mean loss (unchanged on one replica)."""
    n = num_replicas()
    return loss if n == 1 else loss * tf.cast(1.0 / n, loss.dtype)
