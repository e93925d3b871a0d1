"""The pipeline config: defaults, validation naming the setting, repo-relative paths, the env var."""
import json

import pytest

from pipeline import configs


def test_default_config_file_is_complete_and_valid():
    config = configs.load_config(configs.DEFAULT_CONFIG)
    assert config.to_dict() == configs.PipelineConfig().to_dict()
    assert config.path("pipeline_root") == str(configs.REPO_ROOT / "runs/pipeline/root")
    assert "--runner=FnApiRunner" in config["beam_pipeline_args"]


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"pipeline_name": "other", "student": {"epochs": 3}}))
    monkeypatch.setenv(configs.CONFIG_ENV, str(path))
    config = configs.load_config()
    assert config["pipeline_name"] == "other"
    assert config["student"]["epochs"] == 3
    assert config["student"]["batch_size"] == configs.DEFAULTS["student"]["batch_size"]


@pytest.mark.parametrize("values, match", [
    ({"sttudent": {}}, "unknown setting `sttudent`"),
    ({"student": {"epoch": 1}}, "unknown setting `student.epoch`"),
    ({"student": {"epochs": 0}}, "student.epochs"),
    ({"student": {"gate_fit_rows": 0}}, r"`student.gate_fit_rows` should be null or a positive integer.*0"),
    ({"student": {"gate_fit_rows": 1.5}}, r"`student.gate_fit_rows`.*1.5"),
    ({"student": {"gate_fit_rows": True}}, r"`student.gate_fit_rows`.*True"),
    ({"hparams": 3}, "`hparams`"),
    ({"base_trainer": {"enabled": "yes"}}, "base_trainer.enabled"),
    ({"student": {"diit": {"tau": -1}}}, "student.diit"),
    ({"strategy": {"name": "tpu"}}, "strategy.name"),
    ({"evaluator": {"target_auc_floor": 2}}, "target_auc_floor"),
    ({"tuner": {"enabled": True}}, "tuner_fn"),
])
def test_bad_settings_name_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        configs.PipelineConfig(values, source="x.json")


def test_parameter_servers_need_every_trainers_step_count():
    with pytest.raises(ValueError) as err:
        configs.PipelineConfig({"strategy": {"name": "parameter_server"}, "source": {"train_steps": 100}},
                               source="x.json")
    assert str(err.value) == ("x.json: `strategy.name` 'parameter_server' needs a step count for every trainer (its "
                              "workers read the data repeated, with no epoch end): set ['student.train_steps']")
    config = configs.PipelineConfig({"strategy": {"name": "parameter_server"}, "source": {"train_steps": 100},
                                     "student": {"train_steps": 50}}, source="x.json")
    assert config["strategy"]["name"] == "parameter_server"


# Every integer setting that should be null or a positive integer, written out (not read from configs.py).
INTEGER_SETTINGS = [(role, key) for role in ("source", "student") for key in (
    "epochs", "batch_size", "train_steps", "eval_steps", "shuffle_buffer", "steps_per_execution")] + [
    ("student", "mix_batch_size"), ("student", "gate_fit_rows"), ("tuner", "train_steps"), ("tuner", "eval_steps")]


@pytest.mark.parametrize("block, key", INTEGER_SETTINGS)
def test_integer_settings_refuse_booleans_naming_the_key(block, key):
    """JSON `true` is Python's True, which `isinstance(True, int)` takes for 1: it is an error naming the setting,
    as are false (0), 0, 2.5 and "3"; integers >= 1 and null pass, and an integral float is its integer (256.0 is
    256, as `diit_tf.counts.positive_count` takes it for the trainers)."""
    for bad in (True, False, 0, 2.5, "3"):
        with pytest.raises(ValueError, match=rf"^x\.json: `{block}\.{key}` should be null or a positive integer"
                                             rf".*Received: {bad!r}$"):
            configs.PipelineConfig({block: {key: bad}}, source="x.json")
    for good, taken in ((1, 1), (3, 3), (None, None), (256.0, 256)):
        value = configs.PipelineConfig({block: {key: good}})[block][key]
        assert value == taken and type(value) is type(taken)


def test_span_and_split_buckets_refuse_booleans():
    with pytest.raises(ValueError, match=r"`span` should be null or a span number >= 0. Received: True$"):
        configs.PipelineConfig({"span": True}, source="x.json")
    assert configs.PipelineConfig({"span": 0})["span"] == 0
    span = configs.PipelineConfig({"span": 2.0})["span"]  # an integral float is its integer
    assert span == 2 and type(span) is int
    with pytest.raises(ValueError, match=r"^x\.json: `span` should be null or a span number >= 0. Received: 2\.5$"):
        configs.PipelineConfig({"span": 2.5}, source="x.json")
    with pytest.raises(ValueError, match=r"`split_buckets` should be .*Received: \{'train': True, 'eval': 1\}"):
        configs.PipelineConfig({"split_buckets": {"train": True, "eval": 1}}, source="x.json")
    assert configs.PipelineConfig({"split_buckets": {"train": 1, "eval": 1}})["split_buckets"] == {"train": 1,
                                                                                                  "eval": 1}


@pytest.mark.parametrize("settings, name", [
    ({"source": {"learning_rate": True}}, "source.learning_rate"),
    ({"student": {"learning_rate": True}}, "student.learning_rate"),
    ({"student": {"discriminator_learning_rate": True}}, "student.discriminator_learning_rate"),
    ({"student": {"mix_ratio": True}}, "student.mix_ratio"),
    ({"student": {"mix_ratio": {"a": True}}}, "student.mix_ratio"),
    ({"evaluator": {"target_auc_floor": True}}, "evaluator.target_auc_floor"),
    ({"evaluator": {"regression_tolerance": False}}, "evaluator.regression_tolerance"),
])
def test_number_settings_refuse_booleans_naming_the_key(settings, name):
    """A boolean is no number here either (True would pass as 1, False as 0); the same numbers as plain values
    pass."""
    with pytest.raises(ValueError, match=rf"^x\.json: `{name}` should be"):
        configs.PipelineConfig(settings, source="x.json")
    block, (key, value) = next(iter(settings.items())), next(iter(next(iter(settings.values())).items()))
    number = {k: float(v) for k, v in value.items()} if isinstance(value, dict) else float(value)
    configs.PipelineConfig({block[0]: {key: number}})


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        configs.load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        configs.load_config(bad)


def _tiny_named(tmp_path, monkeypatch, preset="synthetic"):
    from diit_tf.data import registry

    entry = registry.synthetic_dataset("tiny", "test", preset=preset, periods=2, rows_target=40, rows_source=(60, 50),
                                       users=30, items=20)
    monkeypatch.setitem(registry.DATASETS, "tiny", entry)
    return configs.PipelineConfig({"data_dir": "tiny", "data_root": str(tmp_path / "cache")}, source="t")


def test_named_data_dir_is_built_once_in_data_root(tmp_path, monkeypatch):
    config = _tiny_named(tmp_path, monkeypatch)
    data_dir = config.data_dir()
    assert data_dir == str((tmp_path / "cache" / "tiny").resolve())
    assert (tmp_path / "cache" / "tiny" / "span-2" / "data.csv").is_file()
    missing = configs.PipelineConfig({"data_dir": str(tmp_path / "none")})
    assert missing.data_dir() == str(tmp_path / "none")  # a plain directory is taken as it is


def test_trainers_take_the_preset_validated_on_the_dataset(tmp_path, monkeypatch):
    from diit_tf.simulation.hparams import Hparams

    config = _tiny_named(tmp_path, monkeypatch)
    resolved = config.resolved(config.data_dir())
    preset = Hparams.load("synthetic")
    assert "preset 'synthetic'" in resolved.resolved_from
    for role in ("source", "student"):
        block = resolved[role]
        assert block["epochs"] == preset.epochs and block["batch_size"] == preset.batch_size
        assert block["backbone_options"] == {k: list(v) if isinstance(v, tuple) else v
                                             for k, v in preset.backbone_options.items()}
    assert resolved["source"]["learning_rate"] == preset.learning_rate("base")
    assert resolved["student"]["learning_rate"] == preset.learning_rate("diit")
    assert resolved["student"]["diit"] == preset.diit_config_dict()
    assert resolved["student"]["mix_batch_size"] == preset.mix_batch_size


def test_explicit_settings_override_the_hparams(tmp_path, monkeypatch):
    from diit_tf.simulation.hparams import Hparams

    config = _tiny_named(tmp_path, monkeypatch).with_overrides(
        {"student": {"epochs": 5, "diit": {"tau": 3.0}}, "source": {"learning_rate": 0.5}})
    resolved = config.resolved(config.data_dir())
    assert resolved["student"]["epochs"] == 5 and resolved["source"]["learning_rate"] == 0.5
    preset = Hparams.load("synthetic").diit_config_dict()
    assert resolved["student"]["diit"] == {**preset, "tau": 3.0}  # the preset's other DIIT options stay


def test_hparams_file_and_no_preset(tmp_path, monkeypatch):
    hp = tmp_path / "best.json"
    hp.write_text(json.dumps({"training": {"epochs": 3, "learning_rate": 0.02}, "backbone": {"hidden_units": [8]},
                              "methods": {"diit": {"diit_config": {"beta2": 0.25}}}}))
    config = _tiny_named(tmp_path, monkeypatch, preset=None).with_overrides({"hparams": str(hp)})
    resolved = config.resolved(config.data_dir())
    assert resolved.resolved_from == f"file {hp}"
    assert resolved["source"]["epochs"] == 3 and resolved["student"]["learning_rate"] == 0.02
    assert resolved["student"]["backbone_options"]["hidden_units"] == [8]
    assert resolved["student"]["diit"] == {"beta2": 0.25}
    bare = _tiny_named(tmp_path, monkeypatch, preset=None)
    assert "built-in defaults" in bare.resolved(bare.data_dir()).resolved_from
    with pytest.raises(FileNotFoundError, match="nope.json not found"):
        config.with_overrides({"hparams": str(tmp_path / "nope.json")}).resolved(None)


def test_student_init_comes_from_the_hparams_unless_set_and_is_checked():
    from pipeline import configs

    assert configs.PipelineConfig({}).resolved(None)["student"]["student_init"] == "base"
    explicit = configs.PipelineConfig({"student": {"student_init": "best_source"}}).resolved(None)
    assert explicit["student"]["student_init"] == "best_source"
    embeddings = configs.PipelineConfig({"student": {"student_init": "best_source_embeddings"}}).resolved(None)
    assert embeddings["student"]["student_init"] == "best_source_embeddings"
    with pytest.raises(ValueError) as error:
        configs.PipelineConfig({"student": {"student_init": "best"}}, source="my.json")
    assert str(error.value) == ("my.json: `student.student_init` should be null or one of ['base', 'best_source', "
                                "'best_source_embeddings', 'joint_embeddings']. Received: 'best'")


def test_the_joint_embeddings_start_is_taken_from_the_config_or_the_hparams_without_the_joint_teacher(tmp_path):
    from pipeline import configs

    explicit = configs.PipelineConfig({"student": {"student_init": "joint_embeddings"}}).resolved(None)
    assert explicit["student"]["student_init"] == "joint_embeddings"
    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"training": {"student_init": "joint_embeddings"}}))
    from_file = configs.PipelineConfig({"hparams": str(hp)}).resolved(None)
    assert from_file["student"]["student_init"] == "joint_embeddings"
    # set explicitly, the pipeline's own value wins over the hparams'
    assert configs.PipelineConfig({"hparams": str(hp), "student": {"student_init": "base"}}).resolved(None)[
        "student"]["student_init"] == "base"
    # with the joint teacher, the hparams' start gives way to "base" as a source's start does (no refusal: the file
    # was chosen for every transfer method, the switch is the pipeline's)
    assert configs.PipelineConfig({"hparams": str(hp), "joint_teacher": {"enabled": True}}).resolved(None)[
        "student"]["student_init"] == "base"


def test_the_joint_embeddings_start_is_refused_with_the_joint_teacher():
    from components.diit_trainer import train_student
    from pipeline import configs

    with pytest.raises(ValueError) as error:
        configs.PipelineConfig({"student": {"student_init": "joint_embeddings"}, "joint_teacher": {"enabled": True}},
                               source="my.json")
    assert str(error.value) == (
        "my.json: `student.student_init` is 'joint_embeddings', a start from a joint model's embedding tables; with "
        "`joint_teacher.enabled` the student already distils from the joint model: set student_init to null or "
        "\"base\", or turn the joint teacher off to start from the joint model's tables and learn from the source "
        "models")
    # and the DIIT trainer refuses it before reading anything
    with pytest.raises(ValueError) as error:
        train_student(None, {"joint": "uri"}, None, {"student_init": "joint_embeddings", "teacher": "joint"})
    assert str(error.value) == ("DIIT trainer: `student.student_init` is 'joint_embeddings'; with the joint teacher "
                                "the student already distils from the joint model: set it to \"base\"")
    with pytest.raises(ValueError) as error:
        train_student(None, {}, None, {"student_init": "joint"})
    assert str(error.value) == ("DIIT trainer: `student.student_init` should be one of ['base', 'best_source', "
                                "'best_source_embeddings', 'joint_embeddings']. Received: 'joint'")


def test_the_joint_teacher_takes_kd_joints_settings_from_the_hparams(tmp_path):
    from diit_tf.config import DIITConfig
    from pipeline import configs

    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"training": {"learning_rate": 0.02}, "methods": {
        "kd_joint": {"beta": 4.0, "temperature": 1.5, "learning_rate": 0.003}, "joint": {"learning_rate": 0.005},
        "diit": {"diit_config": {"beta2": 0.25}}}}))
    resolved = configs.PipelineConfig({"hparams": str(hp), "joint_teacher": {"enabled": True}}).resolved(None)
    assert resolved["joint_teacher"] == {"enabled": True, "beta": 4.0, "temperature": 1.5, "learning_rate": 0.005}
    assert resolved["student"]["diit"] == DIITConfig.logit_kd(4.0, 1.5).to_dict()     # not DIIT's own β2
    assert resolved["student"]["learning_rate"] == 0.003 and resolved["student"]["student_init"] == "base"
    explicit = configs.PipelineConfig({"hparams": str(hp), "joint_teacher": {"enabled": True, "beta": 1.0},
                                       "student": {"learning_rate": 0.01, "diit": {"tau": 3.0}}}).resolved(None)
    assert explicit["student"]["diit"] == DIITConfig.logit_kd(1.0, 3.0).to_dict()
    assert explicit["student"]["learning_rate"] == 0.01
    off = configs.PipelineConfig({"hparams": str(hp)}).resolved(None)
    assert off["student"]["diit"] == {"beta2": 0.25} and off["joint_teacher"]["beta"] is None


@pytest.mark.parametrize("values, match", [
    ({"joint_teacher": {"enabled": "yes"}}, r"joint_teacher.enabled` should be true or false"),
    ({"joint_teacher": {"beta": -1}}, r"joint_teacher.beta` should be null or >= 0"),
    ({"joint_teacher": {"temperature": 0}}, r"joint_teacher.temperature` should be null or > 0"),
    ({"joint_teacher": {"enabled": True}, "student": {"student_init": "best_source"}},
     r"with `joint_teacher.enabled` there is none"),
    ({"joint_teacher": {"enabled": True}, "tuner": {"enabled": True, "tuner_fn": "diit_tf.tuning.tfx.tuner_fn"}},
     r"the Tuner sweeps DIIT from the source models"),
])
def test_bad_joint_teacher_settings_name_the_field(values, match):
    from pipeline import configs

    with pytest.raises(ValueError, match=match):
        configs.PipelineConfig(values)


def test_the_kd_students_distil_over_every_row_not_at_diits_mix_ratio(tmp_path):
    """The simulation's KD methods (kd_joint, kd_origin) read every row of a period, whatever DIIT's `mix_ratio`;
    the pipeline's KD students do too unless `student.mix_ratio` says otherwise. DIIT keeps its own."""
    from pipeline import configs

    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"methods": {"diit": {"mix_ratio": 0.3}}}))
    assert configs.PipelineConfig({"hparams": str(hp)}).resolved(None)["student"]["mix_ratio"] == 0.3
    for switch in ("kd_origin", "joint_teacher"):
        assert configs.PipelineConfig({"hparams": str(hp), switch: {"enabled": True}}).resolved(None)[
            "student"]["mix_ratio"] == 1.0
        assert configs.PipelineConfig({"hparams": str(hp), switch: {"enabled": True},
                                       "student": {"mix_ratio": 0.5}}).resolved(None)["student"]["mix_ratio"] == 0.5


def test_kd_origin_takes_its_settings_from_the_hparams(tmp_path):
    from diit_tf.config import DIITConfig
    from pipeline import configs

    hp = tmp_path / "hp.json"
    hp.write_text(json.dumps({"training": {"learning_rate": 0.02, "student_init": "best_source"}, "methods": {
        "kd_origin": {"beta": 4.0, "temperature": 1.5, "learning_rate": 0.003}, "kd_joint": {"beta": 8.0},
        "diit": {"diit_config": {"beta2": 0.25, "tau": 3.0, "gate_fit_epochs": 2}}}}))
    resolved = configs.PipelineConfig({"hparams": str(hp), "kd_origin": {"enabled": True}}).resolved(None)
    assert resolved["kd_origin"] == {"enabled": True, "beta": 4.0, "temperature": 1.5}
    diit = resolved["student"]["diit"]
    assert diit == DIITConfig.logit_kd(4.0, 1.5, route_by_origin=True).to_dict()  # not DIIT's own beta2, tau, fit
    assert {k: diit[k] for k in ("route_by_origin", "use_gate", "use_middle", "use_adversarial", "alpha",
                                 "gate_supervision", "beta2", "tau", "gate_fit_epochs")} == \
        {"route_by_origin": True, "use_gate": False, "use_middle": False, "use_adversarial": False, "alpha": 0.0,
         "gate_supervision": 0.0, "beta2": 4.0, "tau": 1.5, "gate_fit_epochs": 0}
    # kd_origin's learning rate; the sources stay, so the student may still start from one
    assert resolved["student"]["learning_rate"] == 0.003 and resolved["student"]["student_init"] == "best_source"
    assert resolved["source"]["learning_rate"] == 0.02 and not resolved["joint_teacher"]["enabled"]
    # explicit values win: the switch's beta, the student's learning rate, single student.diit options
    explicit = configs.PipelineConfig({
        "hparams": str(hp), "kd_origin": {"enabled": True, "beta": 1.0},
        "student": {"learning_rate": 0.01, "diit": {"tau": 0.5, "use_gate": True, "gate_supervision": 1.0}},
    }).resolved(None)
    assert explicit["kd_origin"] == {"enabled": True, "beta": 1.0, "temperature": 1.5}
    assert explicit["student"]["diit"] == {**DIITConfig.logit_kd(1.0, 1.5, route_by_origin=True).to_dict(),
                                           "tau": 0.5, "use_gate": True, "gate_supervision": 1.0}
    assert explicit["student"]["learning_rate"] == 0.01
    off = configs.PipelineConfig({"hparams": str(hp)}).resolved(None)
    assert off["student"]["diit"] == {"beta2": 0.25, "tau": 3.0, "gate_fit_epochs": 2}
    assert off["kd_origin"] == {"enabled": False, "beta": None, "temperature": None}


def test_kd_origin_falls_back_to_diits_beta2_tau_and_the_base_learning_rate(tmp_path):
    from diit_tf.config import DIITConfig
    from pipeline import configs

    hp = tmp_path / "hp.json"   # no methods.kd_origin (as in every preset): DIIT's beta2 and tau, as the simulation
    hp.write_text(json.dumps({"training": {"learning_rate": 0.02}, "methods": {
        "diit": {"diit_config": {"beta2": 0.25, "tau": 3.0}, "learning_rate": 0.007}}}))
    resolved = configs.PipelineConfig({"hparams": str(hp), "kd_origin": {"enabled": True}}).resolved(None)
    assert resolved["kd_origin"] == {"enabled": True, "beta": 0.25, "temperature": 3.0}
    assert resolved["student"]["diit"] == DIITConfig.logit_kd(0.25, 3.0, route_by_origin=True).to_dict()
    assert resolved["student"]["learning_rate"] == 0.02                 # training's, not DIIT's 0.007
    hp.write_text(json.dumps({"methods": {"kd_origin": {"beta": 2}, "diit": {"diit_config": {"tau": 3.0}}}}))
    partial = configs.PipelineConfig({"hparams": str(hp), "kd_origin": {"enabled": True}}).resolved(None)
    assert partial["kd_origin"] == {"enabled": True, "beta": 2.0, "temperature": 3.0}
    # no hparams at all: the built-in defaults, DIITConfig's beta2 0.5 and tau 2.0
    default = configs.PipelineConfig({"kd_origin": {"enabled": True}}).resolved(None)
    assert default["kd_origin"] == {"enabled": True, "beta": 0.5, "temperature": 2.0}


@pytest.mark.parametrize("values, match", [
    ({"kd_origin": {"enabled": "yes"}}, r"`kd_origin.enabled` should be true or false. Received: 'yes'"),
    ({"kd_origin": {"enabled": 1}}, r"`kd_origin.enabled` should be true or false. Received: 1"),
    ({"kd_origin": {"beta": -1}}, r"`kd_origin.beta` should be null or >= 0. Received: -1"),
    ({"kd_origin": {"beta": True}}, r"`kd_origin.beta` should be null or >= 0. Received: True"),
    ({"kd_origin": {"temperature": 0}}, r"`kd_origin.temperature` should be null or > 0. Received: 0"),
    ({"kd_origin": {"temperature": "2"}}, r"`kd_origin.temperature` should be null or > 0. Received: '2'"),
    ({"kd_origin": {"enabled": True}, "joint_teacher": {"enabled": True}},
     r"`kd_origin.enabled` and `joint_teacher.enabled`: .*the joint model is no source"),
    ({"kd_origin": {"enabled": True}, "tuner": {"enabled": True, "tuner_fn": "diit_tf.tuning.tfx.tuner_fn"}},
     r"`tuner.enabled` and `kd_origin.enabled`: the Tuner sweeps DIIT's options"),
])
def test_bad_kd_origin_settings_name_the_field(values, match):
    from pipeline import configs

    with pytest.raises(ValueError, match=match):
        configs.PipelineConfig(values, source="my.json")
    off = {k: ({**v, "enabled": False} if k == "kd_origin" and "enabled" in v else v) for k, v in values.items()}
    if "joint_teacher" in values or "tuner" in values:    # each alone is accepted: the refusal is of the pair
        configs.PipelineConfig(off)


def test_kd_origin_with_zero_beta_and_explicit_temperature_is_accepted():
    from pipeline import configs

    resolved = configs.PipelineConfig({"kd_origin": {"enabled": True, "beta": 0, "temperature": 0.5}}).resolved(None)
    assert (resolved["student"]["diit"]["beta2"], resolved["student"]["diit"]["tau"]) == (0.0, 0.5)


def test_a_validation_error_names_where_each_setting_it_names_came_from():
    config = configs.PipelineConfig({"tuner": {"enabled": True, "tuner_fn": "m.f"}}, source="x.json")
    with pytest.raises(ValueError) as info:
        config.with_overrides({"kd_origin": {"enabled": True}}, {"kd_origin.enabled": "--kd-origin"})
    assert str(info.value) == ("x.json: `tuner.enabled` and `kd_origin.enabled` (from --kd-origin): the Tuner sweeps "
                               "DIIT's options, which routing by origin fixes (logit KD, no gate); turn one of them off")
    with pytest.raises(ValueError) as info:  # every setting it names came from a flag: the file is not named
        configs.PipelineConfig({"span": -2}, source="x.json", origins={"span": "--span"})
    assert str(info.value) == "`span` (from --span) should be null or a span number >= 0. Received: -2"
    with pytest.raises(ValueError) as info:  # without origins, the file as before
        configs.PipelineConfig({"span": -2}, source="x.json")
    assert str(info.value) == "x.json: `span` should be null or a span number >= 0. Received: -2"


def test_overrides_keep_their_origin_for_messages():
    config = configs.PipelineConfig({"span": 1}, source="x.json").with_overrides(
        {"data_dir": "/d", "hparams": "synthetic"}, {"data_dir": "--dataset"})
    assert config.origin("data_dir") == "--dataset" and config.origin("hparams") == "x.json"
    assert config.resolved(None).origin("data_dir") == "--dataset"


def test_an_integral_float_count_is_taken_as_positive_count_takes_it():
    """The values the trainers take through `positive_count` (256.0 is 256), taken by the pipeline config alike and
    kept as the integer (TFX's TrainArgs wants an int), resolved or not; the same refusals, word for word."""
    from diit_tf.counts import positive_count

    config = configs.PipelineConfig({"source": {"batch_size": 256.0}, "tuner": {"train_steps": 50.0}})
    assert config["source"]["batch_size"] == positive_count(256.0, "batch_size") == 256
    assert type(config["source"]["batch_size"]) is int and type(config["tuner"]["train_steps"]) is int
    assert type(config.resolved(None)["source"]["batch_size"]) is int
    with pytest.raises(ValueError) as info:
        configs.PipelineConfig({"student": {"batch_size": 2.5}}, source="x.json")
    assert str(info.value) == "x.json: `student.batch_size` should be null or a positive integer. Received: 2.5"
    with pytest.raises(ValueError) as info:
        positive_count(2.5, "student.batch_size", "x.json", null=True)
    assert str(info.value) == "x.json: `student.batch_size` should be null or a positive integer. Received: 2.5"
