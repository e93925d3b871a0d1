"""The source-model cache: a cached run gives exactly the uncached run's numbers, and any change to what a source
model depends on gives a new key."""
import numpy as np
import pytest

from diit_tf.simulation.context import PeriodStore
from diit_tf.simulation.hparams import Hparams
from diit_tf.simulation.protocol import run_simulation
from diit_tf.simulation.source_cache import SourceCache

from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset

pytestmark = pytest.mark.slow  # two simulation runs


def _aucs(result):
    return {(r["seed"], r["method"], r["period"]): r["auc"] for r in result.records}


def test_cached_sources_give_the_same_run(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", periods=4)
    hp = Hparams(TINY_HPARAMS)

    def run(cache):
        return run_simulation(PeriodStore(data), methods="base,diit,kd_uniform", seeds=[0], hparams=hp,
                              insertion_period=2, log=lambda line: None, source_cache=cache)

    plain = _aucs(run(None))
    cache = SourceCache(tmp_path / "cache", data, "dnn", hp)
    first = _aucs(run(cache))
    assert cache.misses == 2 * 3 and cache.hits == 0  # 2 sources x 3 training periods, all trained and stored
    again = SourceCache(tmp_path / "cache", data, "dnn", hp)
    second = _aucs(run(again))
    assert again.hits == 6 and again.misses == 0
    for key, value in plain.items():
        np.testing.assert_allclose(first[key], value, rtol=0, atol=1e-12)
        np.testing.assert_allclose(second[key], value, rtol=0, atol=1e-12)


def test_the_key_changes_with_what_a_source_depends_on(tmp_path):
    data = write_tiny_dataset(tmp_path / "data", periods=3)
    hp = Hparams(TINY_HPARAMS)
    cache = SourceCache(tmp_path / "cache", data, "dnn", hp)
    path = cache.path(0, 1, "source_a")
    assert path == SourceCache(tmp_path / "cache", data, "dnn", Hparams(TINY_HPARAMS)).path(0, 1, "source_a")
    others = [cache.path(1, 1, "source_a"), cache.path(0, 2, "source_a"), cache.path(0, 1, "source_b"),
              SourceCache(tmp_path / "cache", data, "dcn", hp).path(0, 1, "source_a"),
              SourceCache(tmp_path / "cache", data, "dnn", hp, train_share=0.5).path(0, 1, "source_a"),
              SourceCache(tmp_path / "cache", data, "dnn", hp.replace(training={"epochs": 2})).path(0, 1, "source_a"),
              SourceCache(tmp_path / "cache", write_tiny_dataset(tmp_path / "other", periods=3, seed=1), "dnn",
                          hp).path(0, 1, "source_a")]
    assert path not in others and len(set(others)) == len(others)
