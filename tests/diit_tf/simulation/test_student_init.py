"""`training.student_init`: where every transfer method's target model starts at the insertion period (the base's
weights, the best source's by AUC on the target's labelled rows of that period, or the base's with that source's
embedding tables)."""
import contextlib
import io
import json

import numpy as np
import pytest

from diit_tf.backbones import build_backbone
from diit_tf.cli import main
from diit_tf.features import FeatureSpec
from diit_tf.layers.feature_embedding import embedding_positions
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

    def __init__(self, init="best_source"):
        self.hparams = Hparams({"training": {"student_init": init}})
        self.lines = []
        self.log = self.lines.append


def test_the_best_source_by_auc_is_chosen_the_first_on_a_tie():
    ctx = _Ctx()
    weights = protocol.best_source_start(ctx, {"a": 0.61, "b": 0.70, "c": 0.70})
    np.testing.assert_array_equal(weights[0], [2.0, 2.0])  # b: best AUC, before c on the tie
    assert ctx.student_start_note == {"from": "b", "auc_on_target_rows": {"a": 0.61, "b": 0.70, "c": 0.70},
                                      "init": "best_source"}
    assert "start from source 'b'" in ctx.lines[0] and "0.7000" in ctx.lines[0]


def _dnn(name):
    spec = FeatureSpec(categorical={"user_id": 7, "item_id": 5}, numeric=("price",))
    return build_backbone("dnn", spec, hidden_units=(4,), embedding_dim=3, name=name)


def test_embedding_positions_are_the_feature_tables_and_nothing_else():
    model = _dnn("m")
    positions = embedding_positions(model)
    # one table per categorical feature, (buckets, embedding_dim); the dense layers' kernels and biases are not
    assert sorted(tuple(model.weights[i].shape) for i in positions) == [(5, 3), (7, 3)]
    assert all("embedding_" in model.weights[i].path for i in positions)
    assert len(model.weights) == len(positions) + 4  # deep_0 and the logit layer: kernel and bias each
    wdl = build_backbone("wdl", FeatureSpec(categorical={"user_id": 7}), hidden_units=(4,), embedding_dim=3)
    # the wide part's per-id weights are an embedding table of width 1
    assert sorted(tuple(wdl.weights[i].shape) for i in embedding_positions(wdl)) == [(7, 1), (7, 3)]


def test_the_embeddings_start_is_the_base_with_the_best_sources_tables():
    ctx = _Ctx("best_source_embeddings")
    sources = [_dnn("a"), _dnn("b")]
    ctx.sources = type("S", (), {"names": ["a", "b"], "latest": lambda self: sources})()
    base = _dnn("base")
    ctx.base_snapshot = base.get_weights()
    start = protocol.best_source_start(ctx, {"a": 0.55, "b": 0.60})
    tables = set(embedding_positions(sources[1]))
    for i, w in enumerate(start):  # b's tables (best AUC), the base's weights everywhere else
        np.testing.assert_array_equal(w, sources[1].get_weights()[i] if i in tables else ctx.base_snapshot[i])
    assert ctx.student_start_note["init"] == "best_source_embeddings"
    assert "start from source 'b'" in ctx.lines[0] and "embedding tables" in ctx.lines[0]


def test_a_bad_student_init_is_refused_naming_the_key():
    with pytest.raises(ValueError, match=r"training.student_init.*\['base', 'best_source', 'best_source_embeddings', "
                                         r"'joint_embeddings'\].*'best'"):
        Hparams({"training": {"student_init": "best"}}, where="hp.json")
    assert Hparams({}).student_init == "base"


@pytest.mark.slow  # a simulation run on tiny data
@pytest.mark.parametrize("init", ["best_source", "best_source_embeddings"])
def test_transfer_methods_start_from_the_best_sources_weights(tmp_path, monkeypatch, init):
    data = write_tiny_dataset(tmp_path / "data", periods=3)
    starts, sources_at_p0, base_at_p0, tables = [], {}, [], set()
    original_init, original_start = DIITModel.__init__, protocol.best_source_start

    def spy_init(self, teachers, student, config=None, **kwargs):
        starts.append([w.copy() for w in student.get_weights()])
        original_init(self, teachers, student, config, **kwargs)

    def spy_start(ctx, quality):
        sources_at_p0.update({n: [w.copy() for w in m.get_weights()]
                              for n, m in zip(ctx.sources.names, ctx.sources.latest())})
        base_at_p0.extend(w.copy() for w in ctx.base_snapshot)
        tables.update(embedding_positions(ctx.sources.latest()[0]))
        return original_start(ctx, quality)

    monkeypatch.setattr(DIITModel, "__init__", spy_init)
    monkeypatch.setattr(protocol, "best_source_start", spy_start)
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**TINY_HPARAMS, "training": {**TINY_HPARAMS["training"], "student_init": init}}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", "base,diit",
                     "--insertion-period", "2", "--hparams", str(hp), "--out", str(tmp_path / "report")])
    assert code == 0
    note = json.loads((tmp_path / "report" / "details.json").read_text())["notes"]["student_init"]["0"]["2"]
    quality = note["auc_on_target_rows"]
    assert note["from"] == max(quality, key=quality.get) and set(quality) == {"source_a", "source_b"}
    assert len(starts) == 1
    source = sources_at_p0[note["from"]]
    # the source's tables differ from the base's, so the check below can tell which model each weight came from
    assert tables and not any(np.array_equal(source[i], base_at_p0[i]) for i in tables)
    assert len(tables) < len(source)
    for i, (got, src, base) in enumerate(zip(starts[0], source, base_at_p0)):
        np.testing.assert_array_equal(got, src if init == "best_source" or i in tables else base)
    assert note["init"] == init
    assert f"start from source {note['from']!r}" in err.getvalue()
    report = (tmp_path / "report" / "report.md").read_text()
    assert f"seed 0: {note['from']} ({quality[note['from']]:.4f})" in report
    assert f"training.student_init={init}" in report
    assert ("best source's embedding tables" in report) == (init == "best_source_embeddings")


@pytest.mark.slow  # a simulation run on tiny data
def test_joint_embeddings_start_is_the_base_with_a_joint_models_tables_trained_through_the_insertion(
        tmp_path, monkeypatch):
    """`joint_embeddings`: a joint model trained on every domain's rows of periods 1..p0 (its reads logged as
    `student_init`'s), then the base's weights of p0 with its tables (matched by path; its domain table has no
    counterpart). Nothing trains it after p0."""
    data = write_tiny_dataset(tmp_path / "data", periods=4)
    starts, joint_tables, base_at_p0, trained = [], {}, [], []
    original_init, original_start = DIITModel.__init__, protocol.JointStart.start
    original_train = protocol.JointStart.train

    def spy_init(self, teachers, student, config=None, **kwargs):
        starts.append({w.path: w.numpy().copy() for w in student.weights})
        original_init(self, teachers, student, config, **kwargs)

    def spy_train(self, ctx, period):
        trained.append(period)
        return original_train(self, ctx, period)

    def spy_start(self, ctx, target_model):
        joint = self.joint.model.backbone
        joint_tables.update({joint.weights[i].path: joint.weights[i].numpy().copy()
                             for i in embedding_positions(joint)})
        base_at_p0.extend((w.path, v.copy()) for w, v in zip(target_model.weights, ctx.base_snapshot))
        return original_start(self, ctx, target_model)

    monkeypatch.setattr(DIITModel, "__init__", spy_init)
    monkeypatch.setattr(protocol.JointStart, "train", spy_train)
    monkeypatch.setattr(protocol.JointStart, "start", spy_start)
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({**TINY_HPARAMS, "training": {**TINY_HPARAMS["training"],
                                                           "student_init": "joint_embeddings"}}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", "base,diit",
                     "--insertion-period", "2", "--hparams", str(hp), "--out", str(tmp_path / "report")])
    assert code == 0
    assert trained == [1, 2]  # from the first period through the insertion period, never after
    assert len(starts) == 1
    student_tables = [p for p in starts[0] if p in joint_tables]
    assert sorted(joint_tables) == sorted(student_tables + ["features/embedding_domain_id/embeddings"])
    for path, base in base_at_p0:  # the joint model's tables (unlike the base's), the base's weights elsewhere
        if path in joint_tables:
            assert not np.array_equal(joint_tables[path], base)
            np.testing.assert_array_equal(starts[0][path], joint_tables[path])
        else:
            np.testing.assert_array_equal(starts[0][path], base)
    note = json.loads((tmp_path / "report" / "details.json").read_text())["notes"]["student_init"]["0"]["2"]
    assert note["init"] == "joint_embeddings" and note["from"] == "joint" and note["trained_through"] == 2
    assert sorted(note["tables"]) == sorted(student_tables)
    assert "embedding tables of a joint model trained on every domain's rows through period 2" in err.getvalue()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "`training.student_init=joint_embeddings`" in report and "seed 0: " in report


def test_isolated_draws_leave_every_later_draw_as_it_was():
    import keras

    def weights():
        return [w.copy() for w in _dnn("m").get_weights()] + [np.random.rand(3)]

    keras.utils.set_random_seed(3)
    plain = weights()
    keras.utils.set_random_seed(3)
    with protocol.isolated_draws():
        _dnn("other").get_weights()       # a model built for another purpose, and a NumPy draw
        np.random.rand(5)
    after = weights()
    for a, b in zip(plain, after):
        np.testing.assert_array_equal(a, b)
    keras.utils.set_random_seed(3)
    _dnn("other")                         # without it the later draws move: the check above can fail
    moved = weights()
    assert any(not np.array_equal(a, b) for a, b in zip(plain, moved))
