"""TensorBoard logs of a simulation (`diit simulate --tensorboard DIR`), written from its `SimulationResult`.

One run per method and seed, `DIR/<method>/seed-<s>/`, so TensorBoard overlays the methods. The step is the
period:

- `loss/<name>` at the training period `p`: the method's training losses over that period, by name (DIIT and its
  ablations: `loss`, `ce`, `adv1`, `adv2`, `mse`, `kl`, `kd`; CTR-trained methods: `loss`);
- `gate/<source domain>` at `p`: DIIT's mean gate weight of each source over the period;
- `target/auc`, `target/logloss` at the evaluated period `p+1`: the model trained through `p` on the target's
  rows of `p+1`.

Open with `tensorboard --logdir DIR` (docs/pipeline.md).
"""
from __future__ import annotations

from pathlib import Path

GATE_PREFIX = "gate_w"
METRIC_KEYS = ("auc", "logloss")


def run_dirs(log_dir, result) -> dict:
    """`{(method, seed): DIR/<method>/seed-<s>}` for every method and seed of `result`."""
    return {(m, s): Path(log_dir) / m / f"seed-{s}" for m in result.methods for s in result.seeds}


def write_tensorboard(result, log_dir, sources) -> list:
    """Write the event files; `sources` are the source domain names in `spec.sources` order. Returns the run
    directories written."""
    import tensorflow as tf

    diagnostics = result.notes.get("training_diagnostics", {})
    written = []
    for (method, seed), path in run_dirs(log_dir, result).items():
        names = _gate_names(result, method, seed, sources)
        writer = tf.summary.create_file_writer(str(path))
        with writer.as_default():
            for period, values in sorted(diagnostics.get(method, {}).get(str(seed), {}).items(),
                                         key=lambda item: int(item[0])):
                for key, value in values.items():
                    if key.startswith(GATE_PREFIX):
                        tag = f"gate/{names[int(key[len(GATE_PREFIX):])]}"
                    elif key in METRIC_KEYS:  # the training batches' running metrics, not the evaluation
                        continue
                    else:
                        tag = f"loss/{key}"
                    tf.summary.scalar(tag, float(value), step=int(period))
            for record in result.records:
                if record["method"] == method and record["seed"] == seed:
                    for key in METRIC_KEYS:
                        tf.summary.scalar(f"target/{key}", float(record[key]), step=int(record["period"]))
        writer.close()
        written.append(path)
    return written


def _gate_names(result, method: str, seed: int, sources) -> list:
    """Source domain of each gate weight: all sources in order, or the one a single-source method chose."""
    chosen = result.notes.get(method, {}).get(str(seed), {})
    if isinstance(chosen, dict) and "source" in chosen:
        return [chosen["source"]]
    return list(sources)


def read_scalars(run_dir) -> dict:
    """`{tag: {step: value}}` from the event files under `run_dir` (for tests and quick checks)."""
    import tensorflow as tf

    out = {}
    for path in sorted(Path(run_dir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                number = tf.make_ndarray(value.tensor) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, {})[int(event.step)] = float(number)
    return out
