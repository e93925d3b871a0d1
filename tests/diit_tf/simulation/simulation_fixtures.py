"""Helpers of the simulation tests (a uniquely named module, not conftest, so the whole suite collects): a tiny
cross-domain dataset in the span layout whose rows carry their own domain and period as numeric features
(`domain_code`, `period_code`), so tests can see exactly which rows reached which fit call."""
import numpy as np
import pandas as pd

from diit_tf.data import DatasetWriter
from diit_tf.features import FeatureSpec

DOMAINS = ("target", "source_a", "source_b")
ROWS = {"target": 240, "source_a": 400, "source_b": 320}
TINY_HPARAMS = {"training": {"batch_size": 64, "epochs": 1},
                "backbone": {"hidden_units": [8, 4], "embedding_dim": 4}}


def tiny_spec():
    return FeatureSpec(categorical={"user_id": 64, "item_id": 32}, numeric=("domain_code", "period_code"),
                       label="click", domain="domain", domains=DOMAINS, target="target")


def write_tiny_dataset(path, periods=3, seed=0, empty=None):
    """`empty`: `{period: [domains]}` without rows in that period."""
    empty = empty or {}
    rng = np.random.default_rng(seed)
    user_bias, item_bias = rng.normal(size=50), rng.normal(size=20)
    spec = tiny_spec()
    with DatasetWriter(path, spec, dataset="tiny", overwrite=True, log=lambda line: None) as writer:
        for p in range(1, periods + 1):
            parts = []
            for d, name in enumerate(DOMAINS):
                n = 0 if name in empty.get(p, ()) else ROWS[name]
                u, i = rng.integers(0, 50, n), rng.integers(0, 20, n)
                prob = 1 / (1 + np.exp(-(user_bias[u] + item_bias[i] + 0.3 * d)))
                parts.append(pd.DataFrame({"user_id": u, "item_id": i, "domain_code": float(d),
                                           "period_code": float(p), "click": (rng.random(n) < prob).astype(int),
                                           "domain": name}))
            frame = pd.concat(parts, ignore_index=True).sample(frac=1.0, random_state=p).reset_index(drop=True)
            writer.write_span(p, frame)
        writer.finish(built_with={"test": True})
    return path
