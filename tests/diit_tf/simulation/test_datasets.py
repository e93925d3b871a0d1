"""`--dataset NAME` builds the named dataset once with its data builder (default options) and reuses it."""
import pytest

from diit_tf.simulation.datasets import resolve_dataset


def test_a_name_is_built_once_then_reused(tmp_path, monkeypatch):
    import diit_tf.data.synthetic as synthetic

    calls = []

    def fake_build(out, config=None, overwrite=False, log=None):
        calls.append((out, config, overwrite))
        out.mkdir(parents=True)
        (out / "metadata.json").write_text("{}")

    monkeypatch.setattr(synthetic, "build_synthetic", fake_build)
    lines = []
    first = resolve_dataset("synthetic", tmp_path / "data", log=lines.append)
    assert first == tmp_path / "data" / "synthetic"
    assert calls == [(first, None, False)]  # the builder's defaults, as `diit data synthetic` has them
    assert resolve_dataset("synthetic", tmp_path / "data", log=lines.append) == first
    assert len(calls) == 1
    assert lines == [f"dataset synthetic: building it under {first} (once)", f"dataset synthetic: using {first}"]
    # a directory holding metadata.json is used as it is
    assert resolve_dataset(str(first)) == first


def test_unknown_names_and_non_datasets_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="should be one of \\['movielens-1m', 'synthetic'\\]"):
        resolve_dataset("nope", tmp_path)
    with pytest.raises(FileNotFoundError, match="metadata.json not found"):
        resolve_dataset(str(tmp_path), tmp_path)
