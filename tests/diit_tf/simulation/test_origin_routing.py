"""Routing by a mix row's origin in the simulation: `kd_origin` distils each source row from its own source (the
target's rows from the sources' mean), and `diit:gate_origin=...` / `diit:route_by_origin=true` hand DIIT's gate /
its KD each mix row's source. The tiny dataset's rows carry their domain (`domain_code`), so the test reads what
every fit call was given."""
import json

import keras
import numpy as np
import pytest

from diit_tf.baselines import ROW_WEIGHTS
from diit_tf.cli import main
from diit_tf.model import ORIGIN_KEY
from diit_tf.simulation.methods import source_index

from simulation_fixtures import DOMAINS, TINY_HPARAMS, write_tiny_dataset


def test_source_index_is_the_position_among_the_named_sources():
    class Rows:
        domains = np.array(["target", "source_b", "source_a", "source_b"])

        def __len__(self):
            return 4

    assert source_index(Rows(), ["source_a", "source_b"]).tolist() == [-1, 1, 0, 1]
    assert source_index(Rows(), ["source_b"]).tolist() == [-1, 0, -1, 0]


@pytest.mark.slow  # two methods over 2 periods of tiny data
def test_each_mix_row_carries_its_own_source(tmp_path):
    data = write_tiny_dataset(tmp_path / "data")
    (tmp_path / "hp.json").write_text(json.dumps(TINY_HPARAMS))
    seen = []
    original_fit = keras.Model.fit

    def spy_fit(self, x=None, *args, **kwargs):
        if self.name in ("kd_origin", "diit"):
            for (_, _), x_m in x:
                seen.append((self.name, {k: np.asarray(v) for k, v in x_m.items()}))
        return original_fit(self, x, *args, **kwargs)

    mp = pytest.MonkeyPatch()
    mp.setattr(keras.Model, "fit", spy_fit)
    try:
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods",
                     "kd_origin,diit:gate_origin=1,diit:route_by_origin=true",
                     "--insertion-period", "1", "--hparams", str(tmp_path / "hp.json"), "--out", str(tmp_path / "r")])
    finally:
        mp.undo()
    assert code == 0
    sources = [d for d in DOMAINS if d != "target"]
    expected_weights = {0: [1 / 2, 1 / 2], 1: [1, 0], 2: [0, 1]}  # by domain_code: target, source_a, source_b
    names = {name for name, _ in seen}
    assert names == {"kd_origin", "diit"}
    for name, x_m in seen:
        codes = x_m["domain_code"].astype(int)
        assert set(codes) == {0, 1, 2}
        if name == "kd_origin":
            np.testing.assert_allclose(x_m[ROW_WEIGHTS], [expected_weights[c] for c in codes])
        else:
            assert x_m[ORIGIN_KEY].tolist() == [sources.index(DOMAINS[c]) if c else -1 for c in codes]
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert set(results["methods"]) >= {"kd_origin", "diit:gate_origin=1", "diit:route_by_origin=true"}
