"""`training.student_init`: where every transfer method's target model starts at the insertion period (the base's
weights, or the best source's by AUC on the target's labelled rows of that period)."""
import contextlib
import io
import json

import numpy as np
import pytest

from diit_tf.cli import main
from diit_tf.model import DIITModel
from diit_tf.simulation import protocol
from diit_tf.simulation.hparams import Hparams

from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset


class _Model:
    def __init__(self, value):
        self.value = value

    def get_weights(self):
        return [np.full((2,), self.value, np.float32)]


class _Sources:
    names = ["a", "b", "c"]

    def latest(self):
        return [_Model(1.0), _Model(2.0), _Model(3.0)]


class _Ctx:
    seed, insertion_period, sources = 0, 2, _Sources()

    def __init__(self):
        self.lines = []
        self.log = self.lines.append


def test_the_best_source_by_auc_is_chosen_the_first_on_a_tie():
    ctx = _Ctx()
    weights = protocol.best_source_start(ctx, {"a": 0.61, "b": 0.70, "c": 0.70})
    np.testing.assert_array_equal(weights[0], [2.0, 2.0])  # b: best AUC, before c on the tie
    assert ctx.student_start_note == {"from": "b", "auc_on_target_rows": {"a": 0.61, "b": 0.70, "c": 0.70}}
    assert "start from source 'b'" in ctx.lines[0] and "0.7000" in ctx.lines[0]


def test_a_bad_student_init_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"training.student_init.*\['base', 'best_source'\].*'best'"):
        Hparams({"training": {"student_init": "best"}}, where="hp.json")
    assert Hparams({}).student_init == "base"


@pytest.mark.slow  # a simulation run on tiny data
def test_transfer_methods_start_from_the_best_sources_weights(tmp_path, monkeypatch):
    data = write_tiny_dataset(tmp_path / "data", periods=3)
    starts, sources_at_p0 = [], {}
    original_init, original_start = DIITModel.__init__, protocol.best_source_start

    def spy_init(self, teachers, student, config=None, **kwargs):
        starts.append([w.copy() for w in student.get_weights()])
        original_init(self, teachers, student, config, **kwargs)

    def spy_start(ctx, quality):
        sources_at_p0.update({n: [w.copy() for w in m.get_weights()]
                              for n, m in zip(ctx.sources.names, ctx.sources.latest())})
        return original_start(ctx, quality)

    monkeypatch.setattr(DIITModel, "__init__", spy_init)
    monkeypatch.setattr(protocol, "best_source_start", spy_start)
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**TINY_HPARAMS, "training": {**TINY_HPARAMS["training"], "student_init": "best_source"}}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", "base,diit",
                     "--insertion-period", "2", "--hparams", str(hp), "--out", str(tmp_path / "report")])
    assert code == 0
    note = json.loads((tmp_path / "report" / "details.json").read_text())["notes"]["student_init"]["0"]["2"]
    quality = note["auc_on_target_rows"]
    assert note["from"] == max(quality, key=quality.get) and set(quality) == {"source_a", "source_b"}
    assert len(starts) == 1
    for got, want in zip(starts[0], sources_at_p0[note["from"]]):
        np.testing.assert_array_equal(got, want)
    assert f"start from source {note['from']!r}" in err.getvalue()
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"seed 0: {note['from']} ({quality[note['from']]:.4f})" in report
