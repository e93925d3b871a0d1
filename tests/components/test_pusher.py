"""The atomic pusher: versioned directories, never a partial one, and one push per model."""
import os

import pytest

from components import pusher


def _saved_model(path, content=b"graph-1"):
    os.makedirs(os.path.join(path, "variables"))
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(content)
    with open(os.path.join(path, "fingerprint.pb"), "wb") as f:
        f.write(content + b"-fp")
    with open(os.path.join(path, "variables", "variables.index"), "wb") as f:
        f.write(b"index")


def test_push_is_versioned_and_idempotent(tmp_path):
    base = str(tmp_path / "serving" / "diit")
    model_a, model_b = str(tmp_path / "a"), str(tmp_path / "b")
    _saved_model(model_a, b"graph-a")
    _saved_model(model_b, b"graph-b")
    v1, pushed = pusher.push_atomically(model_a, base, now=1000)
    assert (v1, pushed) == (1000, True)
    assert sorted(os.listdir(os.path.join(base, "1000"))) == ["fingerprint.pb", "saved_model.pb", "variables"]
    # The same model again (a re-run after a crash): recognised, not pushed twice.
    assert pusher.push_atomically(model_a, base, now=2000) == (1000, False)
    # A new model with a clock behind the last version still gets a higher version.
    assert pusher.push_atomically(model_b, base, now=10) == (1001, True)
    assert pusher.versions(base) == [1000, 1001]


def test_interrupted_push_leaves_no_version_and_is_cleaned(tmp_path, monkeypatch):
    base = str(tmp_path / "diit")
    model = str(tmp_path / "m")
    _saved_model(model)

    def crash(src, dst):
        os.makedirs(dst)
        open(os.path.join(dst, "saved_model.pb"), "wb").close()  # half-written
        raise KeyboardInterrupt("killed mid-copy")

    monkeypatch.setattr(pusher.io_utils, "copy_dir", crash)
    with pytest.raises(KeyboardInterrupt):
        pusher.push_atomically(model, base, now=5)
    assert pusher.versions(base) == []
    # A leftover of a harder kill (no cleanup ran) is removed by the next push.
    os.makedirs(os.path.join(base, ".7.tmp-deadbeef"))
    monkeypatch.undo()
    assert pusher.push_atomically(model, base, now=6) == (6, True)
    assert os.listdir(base) == ["6"]


def test_missing_saved_model_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a SavedModel"):
        pusher.model_fingerprint(str(tmp_path))
