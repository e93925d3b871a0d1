"""Helper of the multi-domain model tests (a uniquely named module, not conftest): random rows whose domains cycle
through every domain of the spec, so each domain has rows."""
import numpy as np

from diit_tf.data import PeriodData


def cycling_period(spec, n=40, seed=0):
    rng = np.random.default_rng(seed)
    feats = {name: rng.integers(0, b, n).astype(np.int64) for name, b in spec.categorical.items()}
    feats.update({name: rng.random(n).astype(np.float32) for name in spec.numeric})
    domains = np.array(spec.domains)[np.arange(n) % len(spec.domains)]
    return PeriodData(feats, (rng.random(n) < 0.4).astype(np.float32), domains, 1, spec)
