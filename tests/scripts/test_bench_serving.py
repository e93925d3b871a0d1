"""scripts/bench_serving.py's multi-domain model served for the target: the student's inputs, the target's logit of
`joint`, and the extra parameters counted by hand."""
import importlib
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))
    monkeypatch.delitem(sys.modules, "bench_serving", raising=False)
    yield importlib.import_module("bench_serving")
    sys.modules.pop("bench_serving", None)


def test_joint_served_for_the_target_is_one_tower_plus_the_domain_parts(bench):
    args = bench.parse_args(["--quick", "--no-write"])
    models = {"base": bench.backbone(args, "base", 2), bench.JOINT: bench.joint_for_target(args)}
    served = models[bench.JOINT]
    # the student's inputs exactly: no domain input left for a client to send
    assert sorted(served.input) == sorted(bench.SPEC.feature_names)
    params = {name: int(sum(np.prod(v.shape) for v in m.weights)) for name, m in models.items()}
    domains, dim, first, last = len(bench.SPEC.domains), 16, 128, 64   # 3 domains, embeddings 16, towers 128,64
    # the domain's embedding table, its 16 more inputs into the first layer, and a linear head per domain
    assert params[bench.JOINT] - params["base"] == domains * dim + dim * first + (last * domains + domains)

    # the served model's logit is `joint`'s on the same rows tagged as the target (index 0 of the domains)
    joint = served.get_layer("joint")
    feats = dict(zip(bench.SPEC.feature_names, bench._dummy_inputs(4)))
    def joint_logit(domain):
        return np.asarray(joint(dict(feats, domain_id=tf.fill([4], tf.constant(domain, tf.int64))))["logit"])

    np.testing.assert_allclose(np.asarray(served(feats)["logit"]), joint_logit(0), rtol=1e-6)
    assert not np.allclose(joint_logit(0), joint_logit(1))  # the tag matters: another domain's logit differs
