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
    ({"student": {"diit": {"tau": -1}}}, "student.diit"),
    ({"strategy": {"name": "tpu"}}, "strategy.name"),
    ({"evaluator": {"target_auc_floor": 2}}, "target_auc_floor"),
    ({"tuner": {"enabled": True}}, "tuner_fn"),
])
def test_bad_settings_name_the_field(values, match):
    with pytest.raises(ValueError, match=match):
        configs.PipelineConfig(values, source="x.json")


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        configs.load_config(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        configs.load_config(bad)
