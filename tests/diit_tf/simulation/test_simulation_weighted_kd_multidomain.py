"""The fixed-weight KD methods, kd_joint, HAMUR and STAR, each through a tiny 3-period simulation end to end (`diit
simulate`): they are scored on every evaluated period, kd_static's weights follow its rule on the period's target
rows, kd_best_single distils from the chosen source alone, kd_self's teacher is the student as the period starts,
and kd_joint's teacher is a frozen copy of its joint model, refreshed every period."""
import json

import numpy as np
import pytest

from diit_tf.baselines import WeightedKD
from diit_tf.cli import main

from simulation_fixtures import TINY_HPARAMS, write_tiny_dataset

pytestmark = pytest.mark.slow  # simulation runs

METHODS = ["kd_static", "kd_best_single", "kd_self", "kd_joint", "hamur", "star"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    data = write_tiny_dataset(tmp_path_factory.mktemp("tiny") / "data")
    out = tmp_path_factory.mktemp("sim")
    hp = dict(TINY_HPARAMS, methods={"hamur": {"adapter_units": 4, "rank": 3, "hyper_units": [6]}})
    (out / "hp.json").write_text(json.dumps(hp))
    fits = []
    original_fit = WeightedKD.fit

    def spy_fit(self, *args, **kwargs):
        fits.append({"name": self.name, "weights": self.teacher_weights.numpy().copy(), "target_kd": self.target_kd,
                     "teachers": [[w.copy() for w in t.get_weights()] for t in self.teachers],
                     "student": [w.copy() for w in self.student.get_weights()]})
        history = original_fit(self, *args, **kwargs)
        fits[-1]["teachers_after"] = [[w.copy() for w in t.get_weights()] for t in self.teachers]
        return history

    mp = pytest.MonkeyPatch()
    mp.setattr(WeightedKD, "fit", spy_fit)
    try:
        code = main(["simulate", "--dataset", str(data), "--seeds", "1", "--methods", ",".join(METHODS),
                     "--insertion-period", "1", "--hparams", str(out / "hp.json"), "--out", str(out / "report"),
                     "--option", "kd_static.weighting=softmax", "--option", "kd_static.weight_temperature=0.05",
                     "--option", "kd_joint.target_kd=0.5"])
    finally:
        mp.undo()
    return {"code": code, "fits": fits, "out": out / "report"}


def test_every_method_runs_and_is_scored(run):
    assert run["code"] == 0
    results = json.loads((run["out"] / "results.json").read_text())
    assert list(results["methods"]) == ["base"] + METHODS
    assert results["periods_evaluated"] == [2, 3]
    for name in METHODS:
        assert 0.0 < results["methods"][name]["auc_mean"] < 1.0, name
    report = (run["out"] / "report.md").read_text()
    served = {line.split(" | ")[0][2:]: line.rstrip(" |").split(" | ")[-1] for line in report.splitlines()
              if line.startswith("| ") and line.count(" | ") == 5}
    assert served["hamur"] == served["star"] == "multi-domain"
    assert served["kd_joint"] == served["kd_static"] == "target only"


def test_kd_static_weights_follow_the_rule_on_each_period(run):
    notes = json.loads((run["out"] / "details.json").read_text())["notes"]["kd_static"]["0"]
    assert sorted(notes) == ["1", "2"]
    fits = [f for f in run["fits"] if f["name"] == "kd_static"]
    assert len(fits) == 2
    for fit, period in zip(fits, ("1", "2")):
        gains = np.array(notes[period]["auc_gain"])
        expected = np.exp(gains / 0.05) / np.exp(gains / 0.05).sum()
        np.testing.assert_allclose(notes[period]["weights"], expected, atol=1e-4)
        np.testing.assert_allclose(fit["weights"], expected, atol=1e-4)


def test_kd_best_single_distils_from_the_best_source_alone(run):
    notes = json.loads((run["out"] / "details.json").read_text())["notes"]["kd_best_single"]["0"]
    fits = [f for f in run["fits"] if f["name"] == "kd_best_single"]
    assert len(fits) == 2
    for fit, period in zip(fits, ("1", "2")):
        gains = notes[period]["gains"]
        assert notes[period]["source"] == ["source_a", "source_b"][int(np.argmax(gains))]
        assert len(fit["teachers"]) == 1 and fit["weights"].tolist() == [1.0]


def test_kd_self_teacher_is_the_student_at_the_start_of_the_period(run):
    fits = [f for f in run["fits"] if f["name"] == "kd_self"]
    assert len(fits) == 2
    for fit in fits:
        (teacher,) = fit["teachers"]
        for a, b in zip(teacher, fit["student"]):
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(fits[0]["student"], fits[1]["student"])), \
        "the student (and so the next teacher) should have trained in between"


def test_kd_joint_distils_from_a_frozen_joint_model_refreshed_every_period(run):
    fits = [f for f in run["fits"] if f["name"] == "kd_joint"]
    assert len(fits) == 2  # periods 1 and 2: from the insertion period on
    for fit in fits:
        (teacher,) = fit["teachers"]
        assert any(w.shape[-1] == 3 for w in teacher), "the teacher should be the joint model (3 domain heads)"
        for a, b in zip(teacher, fit["teachers_after"][0]):  # frozen while the student trains
            np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(fits[0]["teachers"][0], fits[1]["teachers"][0])), \
        "the teacher should be refreshed from the joint model trained on the next period"
    assert len(fits[0]["student"]) < len(fits[0]["teachers"][0])  # the student is a single-domain model
    assert [f["target_kd"] for f in fits] == [0.5, 0.5]  # methods.kd_joint.target_kd reaches its KD loss
    assert all(f["target_kd"] == 0.0 for f in run["fits"] if f["name"] == "kd_static")


def test_option_flag_rejects_a_malformed_item(tmp_path, capsys):
    data = write_tiny_dataset(tmp_path / "data")
    assert main(["simulate", "--dataset", str(data), "--out", str(tmp_path / "o"), "--option", "kd_static"]) == 1
    assert "--option expects METHOD.KEY=VALUE" in capsys.readouterr().err
    assert main(["simulate", "--dataset", str(data), "--out", str(tmp_path / "o"),
                 "--option", "kd_static.colour=1"]) == 1
    assert "unknown option(s) ['colour']" in capsys.readouterr().err
    # a bad value names the --option that gave it (not the hparams file it was merged into)
    assert main(["simulate", "--dataset", str(data), "--out", str(tmp_path / "o"),
                 "--option", "training.mix_batch_size=abc"]) == 1
    err = capsys.readouterr().err
    assert "--option training.mix_batch_size=abc: `training.mix_batch_size` should be null or a positive integer" in err
    assert main(["simulate", "--dataset", str(data), "--out", str(tmp_path / "o"),
                 "--option", "diit.beta2=-1"]) == 1
    assert "--option diit.beta2=-1: `beta2` should be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()  # nothing written
