"""An on-disk cache of the source models of a simulation, for sweeps that rerun the same sources many times.

Every method of a seed shares the same source models, and they do not depend on the methods: a sweep over DIIT's
options retrains identical sources in every run (on MovieLens-1M with 6 sources they are most of a run's time).
`SourceCache` stores each source's weights after each period under a key built from everything those weights
depend on: the dataset (its metadata.json and the size of every span file), the backbone and its options, the
shared training budget, the seed, the period, the source, the versions of TensorFlow and Keras, and a hash of
the code that trains a source (backbones, layers, features, the CTR trainer, the simulation's training and
context modules). Change any of these and the key changes, so a stale model is never reused: it is retrained.

Opt-in (`diit simulate --source-cache DIR`); published numbers are produced without it.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

_PACKAGE = Path(__file__).resolve().parents[1]
_CODE = ("backbones", "layers", "features.py", "ctr.py", "simulation/training.py", "simulation/context.py",
         "data/layout.py")


def code_hash() -> str:
    """sha256 over the source files that define how a source model is built and trained."""
    digest = hashlib.sha256()
    for entry in _CODE:
        path = _PACKAGE / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(str(file.relative_to(_PACKAGE)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def dataset_fingerprint(data_dir) -> str:
    """sha256 of the dataset's metadata.json and the names and sizes of its files."""
    root = Path(data_dir)
    digest = hashlib.sha256((root / "metadata.json").read_bytes())
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(f"{file.relative_to(root)}:{file.stat().st_size}".encode())
    return digest.hexdigest()


class SourceCache:
    """`load(model, seed, period, source)` / `save(...)` of one source's weights after one period."""

    def __init__(self, root, data_dir, backbone: str, hparams, train_share: float = 1.0):
        import keras
        import tensorflow as tf

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        training = hparams.to_dict()["training"]
        self.base = {
            "dataset": dataset_fingerprint(data_dir), "train_share": float(train_share), "backbone": backbone,
            "backbone_options": hparams.to_dict()["backbone"], "learning_rate": hparams.learning_rate("base"),
            "epochs": training["epochs"], "batch_size": training["batch_size"], "code": code_hash(),
            "tensorflow": tf.__version__, "keras": keras.__version__,
        }
        self.hits = self.misses = 0

    def path(self, seed: int, period: int, source: str) -> Path:
        key = json.dumps({**self.base, "seed": int(seed), "period": int(period), "source": source}, sort_keys=True)
        return self.root / f"{hashlib.sha256(key.encode()).hexdigest()}.npz"

    def load(self, model, seed, period, source) -> bool:
        path = self.path(seed, period, source)
        if not path.is_file():
            self.misses += 1
            return False
        with np.load(path) as saved:
            model.set_weights([saved[f"w{i}"] for i in range(len(saved.files))])
        self.hits += 1
        return True

    def save(self, model, seed, period, source) -> None:
        path = self.path(seed, period, source)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, **{f"w{i}": w for i, w in enumerate(model.get_weights())})
        tmp.replace(path)
