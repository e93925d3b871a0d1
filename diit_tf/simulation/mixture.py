"""The optimum of DIIT's gate loss over fixed weights: what the gate could learn from the target's labels.

DIIT's gate is trained on the target's labelled rows by its mixture loss, `BCE(y, σ(a · Σ_k g_k(x) z_k + b))` (a, b
fitted too: `gate_calibration`). `mixture_fit` fits that loss with fixed weights on given rows of the target and the
frozen sources' logits: one set of weights for every row (a domain-level weighting), or one per group of rows
(routing by a known group, e.g. a benchmark's regions). The drop in loss from the first to the second is all a
gate that routes by those groups could gain on its own objective; a small drop means the loss hardly asks it to
route, whatever the sources' AUC per group says.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def mixture_loss(logits: np.ndarray, labels: np.ndarray, weights: np.ndarray, a: float = 1.0,
                 b: float = 0.0) -> float:
    """Mean `BCE(y, σ(a · Σ_k w_k z_k + b))`; `weights` is `(K,)` or one row per example `(n, K)`."""
    mixed = a * np.sum(np.asarray(logits) * weights, axis=1) + b
    return float(np.mean(np.logaddexp(0.0, mixed) - np.asarray(labels, float) * mixed))


def mixture_fit(logits, labels, groups: Optional[Sequence] = None, steps: int = 3000) -> dict:
    """Fit the mixture loss with softmax weights per group (one group for every row when `groups` is None) and a
    shared calibration `a, b`, by L-BFGS from uniform weights. Returns `{"weights": {group: [w_k]}, "a", "b",
    "loss"}`; also `{"uniform_loss"}`, the loss at uniform weights with `a, b` fitted."""
    from scipy.optimize import minimize

    logits = np.asarray(logits, float)
    labels = np.asarray(labels, float)
    n, k = logits.shape
    names, index = np.unique(np.zeros(n, int) if groups is None else np.asarray(groups), return_inverse=True)

    def unpack(params):
        scores = params[2:].reshape(len(names), k)
        w = np.exp(scores - scores.max(axis=1, keepdims=True))
        return params[0], params[1], w / w.sum(axis=1, keepdims=True)

    def loss(params):
        a, b, w = unpack(params)
        return mixture_loss(logits, labels, w[index], a, b)

    fit = minimize(loss, np.concatenate([[1.0, 0.0], np.zeros(len(names) * k)]), method="L-BFGS-B",
                   options={"maxiter": steps})
    uniform = minimize(lambda p: mixture_loss(logits, labels, np.full(k, 1.0 / k), p[0], p[1]), [1.0, 0.0],
                       method="L-BFGS-B")
    a, b, w = unpack(fit.x)
    return {"weights": {str(g): [round(float(v), 4) for v in w[i]] for i, g in enumerate(names)},
            "a": float(a), "b": float(b), "loss": float(fit.fun), "uniform_loss": float(uniform.fun)}
