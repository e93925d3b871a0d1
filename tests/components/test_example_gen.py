"""SpanCsvExampleGen's typing: ids are strings whatever they look like, a non-numeric numeric column is written as
strings (so validation names it), empty cells are missing features, an empty file is no examples."""
import io

import pandas as pd
import pytest

from components.example_gen import frame_to_examples, load_input_spec, read_csv_examples
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 64, "item_id": 64}, numeric=("freshness",), label="click",
                   domain="domain", domains=("t", "s"), target="t")


def _frame(text):
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""])


def _kinds(example):
    return {name: feature.WhichOneof("kind") for name, feature in example.features.feature.items()}


def test_integer_ids_become_strings_and_numbers_floats():
    examples = list(frame_to_examples(_frame("user_id,item_id,freshness,click,domain\n12,7,0.5,1,t\n"), SPEC))
    assert len(examples) == 1
    f = examples[0].features.feature
    assert f["user_id"].bytes_list.value == [b"12"]
    assert f["item_id"].bytes_list.value == [b"7"]
    assert f["freshness"].float_list.value == [pytest.approx(0.5)]
    assert f["click"].float_list.value == [1.0]
    assert f["domain"].bytes_list.value == [b"t"]


def test_non_numeric_numeric_column_is_written_as_strings_and_empty_cells_are_missing():
    text = "user_id,item_id,freshness,click,domain\n1,2,fresh,0,t\n3,,0.2,1,s\n"
    examples = list(frame_to_examples(_frame(text), SPEC))
    assert _kinds(examples[0])["freshness"] == "bytes_list"
    assert _kinds(examples[1])["freshness"] == "bytes_list"
    assert "item_id" not in examples[1].features.feature
    assert _kinds(examples[1])["click"] == "float_list"


def test_empty_file_gives_no_examples(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("")
    assert list(read_csv_examples(str(path), SPEC)) == []
    path.write_text("user_id,item_id,freshness,click,domain\n")
    assert list(read_csv_examples(str(path), SPEC)) == []


def test_missing_metadata_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        load_input_spec(str(tmp_path))
