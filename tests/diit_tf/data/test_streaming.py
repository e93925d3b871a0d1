"""Streaming input over transformed TFRecords: exactly a domain's rows in one pass, the mix sampling (every target
row, sources at their rates, the same rows for the same seed), each mix row's source (the origin key), one finite
pass of the mix bounded in rows, DIIT's zipped batches, equal batches under replicas, and clear errors naming the
field or the file."""
import gzip
import os

import numpy as np
import pytest
import tensorflow as tf

from diit_tf.data import streaming
from diit_tf.features import FeatureSpec

SPEC = FeatureSpec(categorical={"user_id": 1000}, numeric=("x",), label="click", domain="domain",
                   domains=("t", "a", "b"), target="t")
COLUMNS = {"user_id": tf.io.FixedLenFeature([], tf.int64), "x": tf.io.FixedLenFeature([], tf.float32),
           "click": tf.io.FixedLenFeature([], tf.float32), "domain": tf.io.FixedLenFeature([], tf.string)}


def _data(n=500):
    # row i: user_id i (a row id), domain t for i % 5 == 0, a for i % 5 in (1, 2), b otherwise
    ids = np.arange(n)
    domain = np.where(ids % 5 == 0, b"t", np.where(ids % 5 < 3, b"a", b"b"))
    return {"user_id": ids, "x": (ids / n).astype("float32"), "click": (ids % 2).astype("float32"),
            "domain": domain}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return streaming.write_examples(str(tmp_path_factory.mktemp("stream")), _data(), shards=3)


def _ids(batches):
    return [int(i) for x, _ in batches for i in x["user_id"].numpy()]


@pytest.mark.slow
def test_domain_batches_hold_exactly_the_domains_rows_once(files):
    ds = streaming.domain_batches(files, COLUMNS, SPEC, "a", batch_size=16, seed=1, shuffle_buffer=50)
    ids = _ids(ds)
    assert sorted(ids) == [i for i in range(500) if i % 5 in (1, 2)]          # each row once
    assert ids != sorted(ids)                                                 # shuffled
    assert _ids(ds) != ids and sorted(_ids(ds)) == sorted(ids)                # reshuffled on the next pass
    again = streaming.domain_batches(files, COLUMNS, SPEC, "a", batch_size=16, seed=1, shuffle_buffer=50)
    assert _ids(again) == ids                                                 # the seed fixes the order
    sizes = [len(y) for _, y in ds]
    assert sizes[:-1] == [16] * (len(sizes) - 1) and sum(sizes) == 200
    for x, y in ds.take(2):                                                   # labels travel with their rows
        np.testing.assert_array_equal(y.numpy(), x["user_id"].numpy() % 2)


def test_files_are_interleaved_in_blocks_of_read_batch_records(files):
    # write_examples deals the rows round-robin: file k holds rows k, k + 3, k + 6, ... (167, 167, 166 rows).
    # Unshuffled, each file hands over blocks of `read_batch` records in turn (not single records).
    ds = streaming.parsed_batches(files, COLUMNS, read_batch=4, cycle_length=3)
    blocks = [[int(i) for i in b["user_id"].numpy()] for b in ds]
    assert blocks[:4] == [[0, 3, 6, 9], [1, 4, 7, 10], [2, 5, 8, 11], [12, 15, 18, 21]]
    assert len(blocks) == 42 * 3                                              # ceil(167 / 4) = ceil(166 / 4) = 42
    assert blocks[-3:] == [[492, 495, 498], [493, 496, 499], [494, 497]]      # each file's last, partial block
    assert sorted(i for b in blocks for i in b) == list(range(500))
    target = streaming.parsed_batches(files, COLUMNS, read_batch=4, cycle_length=3, only=("domain", "t"))
    kept = [[int(i) for i in b["user_id"].numpy()] for b in target]
    assert kept[:4] == [[0], [10], [5], [15]] and len(kept) == 126         # the same blocks, target rows only


def test_has_domain_rows_asks_for_one_batch(tmp_path, files):
    assert streaming.has_domain_rows(files, COLUMNS, SPEC, "t")
    no_target = {k: v[np.arange(500) % 5 != 0] for k, v in _data().items()}
    other = streaming.write_examples(str(tmp_path / "no_t"), no_target, shards=2)
    assert not streaming.has_domain_rows(other, COLUMNS, SPEC, "t")
    assert streaming.has_domain_rows(other, COLUMNS, SPEC, "a")
    # Under 2 replicas a batch of 15 is 14 rows and a partial one is dropped: 13 target rows (ids 0, 5, ..., 60 of
    # 65 rows) make no batch, 14 (ids 0, ..., 65 of 70 rows) make one, as domain_batches says.
    for n, expected in ((65, False), (70, True)):
        small = streaming.write_examples(str(tmp_path / f"n{n}"), _data(n), shards=2)
        assert streaming.has_domain_rows(small, COLUMNS, SPEC, "t", batch_size=15, replicas=2) is expected
        batches = streaming.domain_batches(small, COLUMNS, SPEC, "t", batch_size=15, replicas=2)
        assert streaming.has_rows(batches) is expected
    assert streaming.has_domain_rows(streaming.write_examples(str(tmp_path / "n65b"), _data(65)), COLUMNS, SPEC, "t")


@pytest.mark.slow
def test_under_replicas_every_batch_has_the_same_size(files):
    ds = streaming.domain_batches(files, COLUMNS, SPEC, "a", batch_size=15, seed=0, replicas=2)
    assert {len(y) for _, y in ds} == {14}                                    # a multiple of 2, no partial batch


@pytest.mark.slow
def test_mix_keeps_every_target_row_and_samples_sources_at_their_rates(files):
    rates = streaming.mix_rates(SPEC, {"a": 0.5, "b": 0.0})
    assert rates == {"t": 1.0, "a": 0.5, "b": 0.0}
    mix = streaming.mix_batches(files, COLUMNS, SPEC, rates, batch_size=10, seed=3)
    ids = [int(i) for x in mix.take(100) for i in x["user_id"].numpy()]      # 1,000 rows: about 5 passes
    target = [i for i in ids if i % 5 == 0]
    sources_a = [i for i in ids if i % 5 in (1, 2)]
    assert set(target) == set(range(0, 500, 5))                               # every target row, ...
    assert not [i for i in ids if i % 5 in (3, 4)]                            # ... no row of a source at rate 0, ...
    assert 0.8 < len(sources_a) / len(target) < 1.2                           # ... half of a's 200 rows per pass
    assert len(set(sources_a)) > 150                                          # drawn afresh on each pass
    again = streaming.mix_batches(files, COLUMNS, SPEC, rates, batch_size=10, seed=3)
    assert [int(i) for x in again.take(10) for i in x["user_id"].numpy()] == ids[:100]   # same seed, same rows
    with pytest.raises(ValueError, match="not source domains"):
        streaming.mix_rates(SPEC, {"t": 0.5})
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        streaming.mix_rates(SPEC, 0.0)


@pytest.mark.slow
def test_diit_batches_make_one_pass_over_the_target_rows(files):
    ds = streaming.diit_batches(files, COLUMNS, SPEC, batch_size=16, mix_batch_size=32, seed=0)
    target, mixes = [], []
    for (x_t, y_t), x_m in ds:
        target += [int(i) for i in x_t["user_id"].numpy()]
        mixes.append(len(x_m["user_id"]))
    assert sorted(target) == list(range(0, 500, 5))
    assert set(mixes) == {32} and len(mixes) == -(-100 // 16)


def _origins(x_m):
    return [(int(i), int(o)) for i, o in zip(x_m["user_id"].numpy(), x_m["mix_origin"].numpy())]


@pytest.mark.slow
def test_mix_rows_carry_their_source_under_the_origin_key(files):
    # Sources named in the order b, a: a row of b (i % 5 in (3, 4)) has origin 0, of a (i % 5 in (1, 2)) 1, of the
    # target t (i % 5 == 0) -1. Under 2 replicas a batch of 15 is 14 rows: the key is rebatched with the features.
    expected = {0: -1, 1: 1, 2: 1, 3: 0, 4: 0}
    mix = streaming.mix_batches(files, COLUMNS, SPEC, streaming.mix_rates(SPEC, 1.0), batch_size=15, seed=1,
                                shuffle_buffer=50, replicas=2, origin_key="mix_origin", origin_sources=("b", "a"))
    assert mix.element_spec["mix_origin"] == tf.TensorSpec((14,), tf.int32)
    rows = [row for x in mix.take(40) for row in _origins(x)]                 # 560 rows: more than one pass
    assert {i % 5 for i, _ in rows} == {0, 1, 2, 3, 4}
    assert all(o == expected[i % 5] for i, o in rows)
    # Through diit_batches: the mix half carries it, the target half does not; without the argument, no key.
    ds = streaming.diit_batches(files, COLUMNS, SPEC, batch_size=16, mix_batch_size=32, seed=0, shuffle_buffer=50,
                                origin_key="mix_origin", origin_sources=["a"])
    (x_t, _), x_m = next(iter(ds))
    assert "mix_origin" not in x_t
    assert all(o == (0 if i % 5 in (1, 2) else -1) for i, o in _origins(x_m))   # b has no teacher here: -1
    (_, _), plain = next(iter(streaming.diit_batches(files, COLUMNS, SPEC, batch_size=16, shuffle_buffer=50)))
    assert set(plain) == {"user_id", "x"}
    # No source at all (e.g. the joint teacher, no source domain's own): every row -1.
    none = streaming.mix_batches(files, COLUMNS, SPEC, streaming.mix_rates(SPEC, 1.0), batch_size=32,
                                 shuffle_buffer=50, origin_key="mix_origin", origin_sources=[])
    assert [o for x in none.take(3) for _, o in _origins(x)] == [-1] * 96


@pytest.mark.slow
def test_one_pass_of_the_mix_holds_each_kept_row_once_and_first_rows_bounds_it(files):
    # rates: every row of t (100) and a (200), none of b: one pass is those 300 rows once each, in batches of 32
    # (9 full, then 300 - 288 = 12), each carrying its source (a: 0, t: -1), and then the stream ends.
    rates = streaming.mix_rates(SPEC, {"a": 1.0, "b": 0.0})

    def one_pass(**kwargs):
        return streaming.mix_batches(files, COLUMNS, SPEC, rates, batch_size=32, seed=2, shuffle_buffer=50,
                                     origin_key="mix_origin", origin_sources=["a"], repeat=False, **kwargs)

    batches = list(one_pass())
    rows = [row for x in batches for row in _origins(x)]
    assert [len(x["user_id"]) for x in batches] == [32] * 9 + [12]
    assert sorted(i for i, _ in rows) == [i for i in range(500) if i % 5 in (0, 1, 2)]
    assert all(o == (0 if i % 5 in (1, 2) else -1) for i, o in rows)
    assert sum(o == 0 for _, o in rows) == 200
    # The first 70 rows: batches of 32, 32 and the third cut to 6; the same rows the unbounded pass starts with.
    first = list(streaming.first_rows(one_pass(), 70))
    assert [len(x["mix_origin"]) for x in first] == [32, 32, 6]
    assert [row for x in first for row in _origins(x)] == rows[:70]
    assert sum(len(x["user_id"]) for x in streaming.first_rows(one_pass(), 1000)) == 300   # a bound beyond the pass
    # Under 2 replicas the partial last batch is dropped (every replica's share equal): 9 batches of 32, 288 rows.
    assert [len(x["user_id"]) for x in one_pass(replicas=2)] == [32] * 9


@pytest.mark.parametrize("key, sources, match", [
    ("mix_origin", None, "go together"), (None, ["a"], "go together"),
    ("mix_origin", ["a", "t"], r"distinct source domains of \['a', 'b'\]"),
    ("mix_origin", ["a", "a"], "distinct source domains"), ("x", ["a"], "'x' is the name of a feature")])
def test_a_bad_origin_argument_is_named(files, key, sources, match):
    with pytest.raises(ValueError, match=match):
        streaming.mix_batches(files, COLUMNS, SPEC, streaming.mix_rates(SPEC, 1.0), 8, origin_key=key,
                              origin_sources=sources)


def test_eval_batches_and_bounds(files):
    rows = sum(len(y) for _, y, _ in streaming.eval_batches(files, COLUMNS, SPEC, batch_size=64))
    assert rows == 500
    assert sum(1 for _ in streaming.bounded(streaming.eval_batches(files, COLUMNS, SPEC, batch_size=64), 2)) == 2


def test_missing_column_names_the_field():
    with pytest.raises(streaming.StreamInputError, match=r"no feature\(s\) \['x'\]"):
        streaming.check_columns({k: v for k, v in COLUMNS.items() if k != "x"}, SPEC, "trainer")


@pytest.mark.slow
def test_a_record_without_a_feature_names_the_file(tmp_path, files):
    data = _data(50)
    del data["x"]
    bad = streaming.write_examples(str(tmp_path / "bad"), data, prefix="part")
    ds = streaming.domain_batches(files + bad, COLUMNS, SPEC, "a", 16, shuffle_buffer=0)
    with pytest.raises(streaming.StreamInputError) as err:
        with streaming.naming_bad_files(files + bad, COLUMNS, "source trainer 'a'"):
            for _ in ds:
                pass
    assert str(err.value) == f"source trainer 'a': cannot read transformed examples file {bad[0]}: a record has no " \
                             "feature 'x' (float)"


def _write(path, blob):
    with open(path, "wb") as f:
        f.write(blob)
    return str(path)


def test_a_truncated_file_is_named_wherever_it_is_cut(tmp_path, files):
    # TF's gzip reader reads a stream cut at a record boundary as a shorter, valid file (the rows after the cut
    # vanish); `check_gzip` finds every cut, before anything is read.
    with open(files[0], "rb") as f:
        blob = f.read()
    for cut in [1, 10, len(blob) // 4, len(blob) // 2, len(blob) - 9, len(blob) - 1]:
        truncated = _write(tmp_path / "truncated.gz", blob[:cut])
        with pytest.raises(streaming.StreamInputError, match="truncated.gz: the gzip stream ends early") as err:
            with streaming.naming_bad_files(files[1:] + [truncated], COLUMNS, "source trainer 'a'"):
                pytest.fail("the training loop ran on a truncated file")
        assert str(err.value).startswith(f"source trainer 'a': cannot read transformed examples file {truncated}")


def test_gzip_problem_accepts_whole_streams_only(tmp_path, files):
    with open(files[0], "rb") as f:
        blob = f.read()
    assert streaming.gzip_problem(files[0]) is None
    assert streaming.gzip_problem(_write(tmp_path / "two.gz", blob + blob)) is None      # two gzip members
    assert streaming.gzip_problem(_write(tmp_path / "empty.gz", b"")) is None            # empty, as TF reads it
    assert streaming.gzip_problem(_write(tmp_path / "plain.gz", b"not gzip")).startswith("not a valid gzip")
    assert "ends early" in streaming.gzip_problem(_write(tmp_path / "cut.gz", (blob + blob)[:len(blob) + 20]))
    assert list(tf.data.TFRecordDataset(tmp_path / "two.gz", compression_type="GZIP").as_numpy_iterator()) == \
        2 * list(tf.data.TFRecordDataset(files[0], compression_type="GZIP").as_numpy_iterator())


def test_gzip_problem_drains_output_larger_than_its_chunk(tmp_path, monkeypatch):
    # 64 KB of zeros compress to about 100 bytes: with 16-byte chunks one call's output fills the buffer many times
    monkeypatch.setattr(streaming, "GZIP_CHUNK", 16)
    path = _write(tmp_path / "zeros.gz", gzip.compress(bytes(65536)))
    assert streaming.gzip_problem(path) is None
    assert "ends early" in streaming.gzip_problem(_write(tmp_path / "cut.gz", gzip.compress(bytes(65536))[:-8]))


@pytest.mark.slow
def test_a_corrupt_record_is_named(tmp_path, files):
    # a whole gzip stream whose content has one byte flipped: the record's checksum fails while training reads it
    with open(files[0], "rb") as f:
        records = bytearray(gzip.decompress(f.read()))
    records[len(records) // 2] ^= 0xFF
    corrupt = _write(tmp_path / "corrupt.gz", gzip.compress(bytes(records)))
    ds = streaming.domain_batches(files[1:] + [corrupt], COLUMNS, SPEC, "a", 16, shuffle_buffer=0)
    with pytest.raises(streaming.StreamInputError, match="corrupt.gz") as err:
        with streaming.naming_bad_files(files[1:] + [corrupt], COLUMNS, "source trainer 'a'"):
            for _ in ds:
                pass
    assert "function_node" not in str(err.value)
    assert isinstance(err.value.__cause__, tf.errors.DataLossError)


def test_no_files_is_a_clear_error(tmp_path):
    with pytest.raises(streaming.StreamInputError, match="no transformed example files"):
        streaming.expand_files([str(tmp_path / "nothing" / "*")])


@pytest.mark.slow
def test_joint_batches_hold_every_row_once_with_its_domain_index(files):
    ds = streaming.joint_batches(files, COLUMNS, SPEC, batch_size=64, seed=2, shuffle_buffer=100)
    rows = [(int(i), int(d), float(y)) for x, ys in ds
            for i, d, y in zip(x["user_id"].numpy(), x["domain_id"].numpy(), ys.numpy())]
    assert sorted(i for i, _, _ in rows) == list(range(500))                 # every row once
    assert [i for i, _, _ in rows] != list(range(500))                        # shuffled
    # row i: domain t (index 0) for i % 5 == 0, a (1) for i % 5 in (1, 2), b (2) otherwise; label i % 2
    assert all(d == (0 if i % 5 == 0 else 1 if i % 5 < 3 else 2) and y == i % 2 for i, d, y in rows)


def test_joint_batches_name_an_unknown_domain(tmp_path):
    data = _data(20)
    data["domain"] = np.where(np.arange(20) == 7, b"zz", data["domain"])
    paths = streaming.write_examples(str(tmp_path / "unknown"), data)
    with pytest.raises(tf.errors.InvalidArgumentError, match="column domain holds a domain that is not one of t, a, b"):
        for _ in streaming.joint_batches(paths, COLUMNS, SPEC, 8, shuffle_buffer=0):
            pass


def test_a_whole_file_is_checked_once_per_process_until_it_changes(tmp_path, files, monkeypatch):
    with open(files[0], "rb") as f:
        blob = f.read()
    path = _write(tmp_path / "once.gz", blob)
    monkeypatch.setattr(streaming, "_WHOLE_FILES", set())
    read = []
    monkeypatch.setattr(streaming, "gzip_problem", lambda p, real=streaming.gzip_problem: read.append(p) or real(p))
    streaming.check_gzip([path], "source trainer 'a'")
    streaming.check_gzip([path], "source trainer 'b'")        # the same file, unchanged: not read again
    assert read == [path]
    _write(path, blob[:-9])                                    # cut in place: another size, so read and named
    with pytest.raises(streaming.StreamInputError, match="once.gz: the gzip stream ends early"):
        streaming.check_gzip([path], "DIIT trainer")
    with pytest.raises(streaming.StreamInputError, match="once.gz: the gzip stream ends early"):
        streaming.check_gzip([path], "DIIT trainer")           # a bad file is never remembered
    assert read == [path] * 3
