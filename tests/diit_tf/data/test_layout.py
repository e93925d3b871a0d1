"""The span layout: round trip, atomic builds, overwrite protection, and load_period validation."""
import json

import numpy as np
import pandas as pd
import pytest

from diit_tf.data import layout
from diit_tf.data.layout import DatasetWriter, list_spans, load_period, load_spec, read_span
from diit_tf.features import FeatureSpec, hash_ids

SPEC = FeatureSpec(categorical={"user": 100, "item": 50}, numeric=("price",), label="click", domain="domain",
                   domains=("small", "big"), target="small")
QUIET = lambda line: None  # noqa: E731


def frame(n=4, **overrides):
    data = {
        "user": [f"u{i}" for i in range(n)],
        "item": list(range(10, 10 + n)),
        "price": [1.5 * i for i in range(n)],
        "click": [i % 2 for i in range(n)],
        "domain": ["small" if i == 0 else "big" for i in range(n)],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def write(tmp_path, spans=(frame(), frame(3)), name="ds", **kwargs):
    out = tmp_path / name
    with DatasetWriter(out, SPEC, dataset="unit", log=QUIET, **kwargs) as writer:
        for n, f in enumerate(spans, start=1):
            writer.write_span(n, f)
        metadata = writer.finish(built_with={"how": "test"}, bad_rows={"nan_label": 2})
    return out, metadata


def test_round_trip_metadata_and_rows(tmp_path):
    out, metadata = write(tmp_path)
    assert list_spans(out) == [1, 2]
    assert load_spec(out) == SPEC
    on_disk = json.loads((out / "metadata.json").read_text())
    assert on_disk == metadata
    assert on_disk["periods"] == [1, 2]
    assert on_disk["rows_per_period_per_domain"] == {"1": {"small": 1, "big": 3}, "2": {"small": 1, "big": 2}}
    assert on_disk["clicks_per_period_per_domain"]["1"] == {"small": 0, "big": 2}
    assert on_disk["bad_rows"] == {"nan_label": 2} and on_disk["built_with"] == {"how": "test"}
    back = read_span(out, 1)
    assert list(back.columns) == ["user", "item", "price", "click", "domain"]
    assert back["user"].tolist() == ["u0", "u1", "u2", "u3"]
    assert back["item"].tolist() == ["10", "11", "12", "13"]  # ids as strings
    assert back["price"].tolist() == [0.0, 1.5, 3.0, 4.5]
    assert back["click"].tolist() == [0, 1, 0, 1]
    # nothing left behind next to the dataset
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_csv_text_ids_have_no_float_suffix_and_missing_token(tmp_path):
    f = frame(3, item=[1.0, np.nan, 3.0], user=["a", "", None])
    out, _ = write(tmp_path, spans=(f,))
    lines = (out / "span-1" / "data.csv").read_text().splitlines()
    assert lines[0] == "user,item,price,click,domain"
    assert lines[1] == "a,1,0.0,0,small"
    assert lines[2] == f"{layout.MISSING},{layout.MISSING},1.5,1,big"


def test_interrupted_build_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with DatasetWriter(tmp_path / "ds", SPEC, dataset="unit", log=QUIET) as writer:
            writer.write_span(1, frame())
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out, _ = write(tmp_path)
    with pytest.raises(FileExistsError, match="--overwrite"):
        write(tmp_path)
    out, _ = write(tmp_path, spans=(frame(2),), overwrite=True)
    assert list_spans(out) == [1]
    assert len(read_span(out, 1)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_failed_overwrite_keeps_old_dataset(tmp_path):
    out, _ = write(tmp_path)
    with pytest.raises(ValueError, match="label 'click'"):
        write(tmp_path, spans=(frame(2, click=[0, 5]),), overwrite=True)
    assert list_spans(out) == [1, 2]


def test_writer_rejects_gaps_and_empty_spans(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        with DatasetWriter(tmp_path / "a", SPEC, dataset="unit", log=QUIET) as writer:
            writer.write_span(1, frame(0))
    with pytest.raises(ValueError, match="without gaps"):
        with DatasetWriter(tmp_path / "b", SPEC, dataset="unit", log=QUIET) as writer:
            writer.write_span(2, frame())
            writer.finish()


def test_load_period_hashes_like_feature_spec(tmp_path):
    out, _ = write(tmp_path)
    period = load_period(out, 1)
    assert len(period) == 4 and period.span == 1
    assert set(period.features) == {"user", "item", "price"}
    np.testing.assert_array_equal(period.features["user"], hash_ids(["u0", "u1", "u2", "u3"], 100).numpy())
    # an id written as an integer hashes the same as its decimal string, as in the TFX path
    np.testing.assert_array_equal(period.features["item"], hash_ids(np.array([10, 11, 12, 13]), 50).numpy())
    assert period.features["item"].dtype == np.int64 and period.features["price"].dtype == np.float32
    np.testing.assert_allclose(period.features["price"], [0.0, 1.5, 3.0, 4.5])
    assert period.labels.dtype == np.float32 and period.labels.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert period.domains.tolist() == ["small", "big", "big", "big"]
    assert period.domain_ids.tolist() == [0, 1, 1, 1]
    small = period.domain("small")
    assert len(small) == 1 and small.features["user"][0] == period.features["user"][0]
    with pytest.raises(ValueError, match="Unknown domain"):
        period.domain("nope")


def corrupt(out, n, text):
    (out / f"span-{n}" / "data.csv").write_text(text)


HEADER = "user,item,price,click,domain\n"


@pytest.mark.parametrize("body, message", [
    ("user,item,click,domain\nu,1,0,big\n", r"missing column\(s\) \['price'\]"),
    (HEADER, "span-1 is empty"),
    (HEADER + "u,1,,0,big\nu,1,nan,0,big\nu,1,2,0,big\n", r"numeric feature 'price' .* in 2 row\(s\)"),
    (HEADER + "u,1,2,,big\n", r"label 'click' is NaN.* in 1 row\(s\)"),
    (HEADER + "u,1,2,2,big\nu,1,2,0.5,big\nu,1,2,1,big\n", r"label 'click' is not 0/1 in 2 row\(s\)"),
    (HEADER + "u,1,2,1,huge\nu,1,2,1,big\n", r"domain 'domain' is unknown in 1 row\(s\)"),
    (HEADER + "u,,2,1,big\n", r"categorical feature 'item' is empty in 1 row\(s\)"),
    # a surplus field (e.g. a value with an unquoted comma) was dropped without a word
    (HEADER + "u,1,2,1,big\nu,1,2,5,1,big\n", r"malformed row: .*Expected 5 fields in line 3, saw 6\Z"),
])
def test_load_period_validation_names_field_file_and_count(tmp_path, body, message):
    out, _ = write(tmp_path)
    corrupt(out, 1, body)
    with pytest.raises(ValueError, match=message) as info:
        load_period(out, 1)
    assert "span-1" in str(info.value)


def test_missing_span_and_dataset(tmp_path):
    out, _ = write(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"span-7 not found.*\[1, 2\]"):
        load_period(out, 7)
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        load_spec(tmp_path / "nowhere")
