"""Streaming input of the pipeline's trainers and Tuner: `tf.data` over Transform's gzipped TFRecords (the
transformed examples of a span), so memory does not grow with the span.

Every reader follows the same steps: the split's files are read interleaved (`cycle_length` at a time), the
serialized records are filtered by domain and parsed `READ_BATCH` at a time with the transformed feature spec
(the domain column first, so only the kept records are parsed in full; the mix keeps rows by a random draw after
parsing), pass a bounded shuffle (chunks of parsed rows through a buffer, then the rows of each window of
`shuffle_buffer` rows permuted; see `parsed_batches`) and are re-batched to the training batch size, then
prefetched. Nothing holds a whole split.

- `domain_batches`: `(features, labels)` of one domain's rows (a source trainer, the target), one pass.
- `joint_batches`: `(features + domain index, labels)` of every row (the joint teacher's trainer), one pass.
- `mix_batches`: the mix dataset of DIIT, repeated: every target row, and each source's rows kept with its rate
  (`mix_rates`), drawn afresh on each pass; the draw is stateless, seeded by `seed` and the shuffle window's running
  index, so the same seed gives the same rows. Optionally each row's source (`origin_key`, `origin_sources`): what
  the gate's origin loss reads (`DIITConfig.gate_origin`). With `repeat=False` one pass (the gate's origin fit).
- `diit_batches`: `((x_t, y_t), x_m)`: `epochs` passes over the target rows zipped with the cycling mix batches
  (one pass over the target rows is one epoch, as in `diit_tf.model.make_diit_dataset`).
- `eval_batches`: `(features, labels, domains)` of an eval split, unshuffled, for `components.training.evaluate`.
- `first_rows`: the first rows of a stream of batches, the last batch cut (a bound in rows, not in batches).

Under a multi-replica strategy (`replicas > 1`) every batch has the same size, a multiple of the replica count
(the last partial batch is dropped): a distributed iterator splits each global batch evenly between replicas.

Bad input fails with one line naming the field or the file: `check_columns` before any read (a feature the
Transform output does not have), `naming_bad_files` around the training loop: on entry `check_gzip` (a truncated
file: TF's gzip reader takes a stream cut at a record boundary for a shorter, valid file, so the rows after the cut
would be lost without a word), and on a read or parse error (a corrupt TFRecord file, a record without a required
feature) the culprit is located by re-reading the files one by one, only on that failure path.

Example:
    files = expand_files([os.path.join(artifact_utils.get_split_uri(examples, "train"), "*")])
    columns = check_columns(transformed_feature_spec, spec, "source trainer 'a'")
    with naming_bad_files(files, columns, "source trainer 'a'"):
        model.fit(domain_batches(files, columns, spec, "a", batch_size=256, seed=0), epochs=2)
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import os
import re
import warnings
import zlib
from typing import Mapping, Optional, Sequence, Union

import tensorflow as tf

COMPRESSION = "GZIP"       # Transform writes gzipped TFRecords
READ_BATCH = 1024          # serialized records parsed per `tf.io.parse_example` call
SHUFFLE_BUFFER = 100_000   # rows per shuffle window (parsed, tens of bytes each), whatever the span's size
CYCLE_LENGTH = 4           # files read at once


class StreamInputError(ValueError):
    """The transformed examples cannot be read: the message names the file or the field."""


# ------------------------------------------------------------------------------------------------------ files
def expand_files(patterns: Sequence[str]) -> list:
    files = sorted({f for p in patterns for f in tf.io.gfile.glob(p)})
    if not files:
        raise StreamInputError(f"no transformed example files match {list(patterns)}")
    return files


def check_columns(feature_spec: Mapping, spec, where: str) -> dict:
    """The part of Transform's `transformed_feature_spec` the trainers read (features, label, domain); a column the
    Transform output lacks is an error naming it."""
    needed = list(spec.feature_names) + [spec.label, spec.domain]
    missing = [name for name in needed if name not in feature_spec]
    if missing:
        raise StreamInputError(f"{where}: the transformed examples have no feature(s) {missing} (Transform output "
                               f"columns: {sorted(feature_spec)}); the transform graph and the FeatureSpec disagree")
    return {name: feature_spec[name] for name in needed}


# ---------------------------------------------------------------------------------------------------- readers
def parsed_batches(files: Sequence[str], columns: Mapping, shuffle_buffer: int = 0, seed: int = 0,
                   read_batch: int = READ_BATCH, cycle_length: int = CYCLE_LENGTH,
                   repeat: bool = False, only: Optional[tuple] = None) -> tf.data.Dataset:
    """Dicts of parsed columns: interleaved reads, batched parsing (`read_batch` records per call), then an optional
    bounded shuffle. `only=(column, value)` keeps the records whose string `column` is `value`, found by parsing that
    column alone first, so the other records are never parsed in full (a source trainer keeps half the span, the
    target a tenth). One pass over the files (reshuffled on every iteration), or with `repeat` passes without end
    (the file list repeated, one shuffle running through all passes: an iterator takes one shuffle seed, however far
    it reads ahead, so a run is reproducible).

    The shuffle works on chunks of parsed rows, never on single records (a record-level `Dataset.shuffle` costs a
    tensor per record and cut the trainers' throughput to about two thirds of the in-memory path's): chunks of up
    to `read_batch` rows (at least 16 chunks in the buffer) pass a shuffle buffer of about `shuffle_buffer` rows
    (reshuffled each pass), are regrouped into windows of about `shuffle_buffer` rows, and each window's rows are
    permuted (a stateless draw seeded by `seed` and the window's index). So every training batch is a uniform
    sample of a window of `shuffle_buffer` rows, each pass has another order (except a split of a single chunk,
    whose one permutation repeats), and the same seed gives the same orders."""
    files = list(files)
    ds = tf.data.Dataset.from_tensor_slices(files)
    if repeat:
        ds = ds.repeat()
    # Each file's records are batched inside the interleave, so the interleave hands over blocks of `read_batch`
    # serialized records, not single records: a parallel interleave of single records costs a cross-thread handoff
    # per record, measured at 6x the CPU time of reading and decompressing the records themselves.
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression_type=COMPRESSION).batch(read_batch),
                       cycle_length=max(1, min(cycle_length, len(files))), num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True)
    columns = dict(columns)

    def parse(records):
        if only is not None:
            name, value = only
            keys = tf.io.parse_example(records, {name: columns[name]})[name]
            records = tf.boolean_mask(records, tf.equal(keys, value))
        return tf.io.parse_example(records, columns)

    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if not shuffle_buffer:
        return ds
    unit = max(1, min(read_batch, int(shuffle_buffer) // 16))  # rows per shuffled chunk; at least 16 in the buffer
    chunks = max(2, int(shuffle_buffer) // unit)
    ds = ds.rebatch(unit).shuffle(chunks, seed=seed, reshuffle_each_iteration=True).rebatch(chunks * unit)

    def permute(index, batch):
        rows = tf.shape(next(iter(batch.values())))[0]
        draw = tf.random.stateless_uniform([rows], seed=tf.stack([tf.constant(seed, tf.int64), index]))
        order = tf.argsort(draw)
        return {name: tf.gather(value, order) for name, value in batch.items()}

    return ds.enumerate().map(permute, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _rows(batch: Mapping, mask) -> dict:
    return {name: tf.boolean_mask(value, mask) for name, value in batch.items()}


def _batch_sizes(batch_size: int, replicas: int) -> tuple:
    """(batch size, drop remainder): under several replicas, a multiple of `replicas` and no partial batch."""
    if replicas > 1:
        return max(replicas, batch_size // replicas * replicas), True
    return batch_size, False


def domain_batches(files, columns: Mapping, spec, domain: str, batch_size: int, seed: int = 0,
                   shuffle_buffer: int = SHUFFLE_BUFFER, replicas: int = 1) -> tf.data.Dataset:
    """`(features, labels)` batches of the rows of `domain`: one shuffled pass."""
    size, drop = _batch_sizes(batch_size, replicas)

    def split(batch):
        return {n: batch[n] for n in spec.feature_names}, batch[spec.label]

    ds = parsed_batches(files, columns, shuffle_buffer, seed, only=(spec.domain, domain))
    return ds.map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).rebatch(size, drop_remainder=drop)


def joint_batches(files, columns: Mapping, spec, batch_size: int, seed: int = 0,
                  shuffle_buffer: int = SHUFFLE_BUFFER, replicas: int = 1,
                  domain_feature: str = "domain_id") -> tf.data.Dataset:
    """`(features, labels)` batches of every row of the split, one shuffled pass, the features holding also
    `domain_feature`: the row's domain index in `spec.domains` (the input of a joint multi-domain model,
    `diit_tf.baselines.joint`). A row of a domain the spec does not know fails the read, naming the column."""
    size, drop = _batch_sizes(batch_size, replicas)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(spec.domains)),
                                            tf.range(len(spec.domains), dtype=tf.int64)), default_value=-1)

    def split(batch):
        ids = table.lookup(batch[spec.domain])
        check = tf.debugging.assert_non_negative(
            ids, message=f"column {spec.domain} holds a domain that is not one of {', '.join(spec.domains)}")
        with tf.control_dependencies([check]):
            ids = tf.identity(ids)
        return {**{n: batch[n] for n in spec.feature_names}, domain_feature: ids}, batch[spec.label]

    ds = parsed_batches(files, columns, shuffle_buffer, seed)
    return ds.map(split, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).rebatch(size, drop_remainder=drop)


def mix_rates(spec, mix_ratio: Union[float, Mapping]) -> dict:
    """Per-domain keep rates of the mix dataset: the target 1, each source `mix_ratio` (one share for all, or a
    `{source: rate}` mapping whose missing sources keep every row)."""
    if isinstance(mix_ratio, Mapping):
        unknown = sorted(set(mix_ratio) - set(spec.sources))
        if unknown:
            raise ValueError(f"`mix_ratio` names {unknown}, which are not source domains {list(spec.sources)}")
        rates = {d: float(mix_ratio.get(d, 1.0)) for d in spec.sources}
        if not all(0.0 <= r <= 1.0 for r in rates.values()):
            raise ValueError(f"`mix_ratio` rates should be in [0, 1]. Received: {dict(mix_ratio)!r}")
    else:
        if not 0.0 < float(mix_ratio) <= 1.0:
            raise ValueError(f"`mix_ratio` should be in (0, 1]. Received: {mix_ratio!r}")
        rates = {d: float(mix_ratio) for d in spec.sources}
    return {spec.target: 1.0, **rates}


def _origin_lookup(spec, origin_key: Optional[str], origin_sources: Optional[Sequence[str]]):
    """A row's domain -> its source index (`mix_batches`' `origin_key`): the domain's position in `origin_sources`,
    -1 for any other domain (every row, when `origin_sources` is empty: a table cannot be empty). None when no
    origin is asked for. The names must be distinct source domains of `spec` (a misspelt one would silently give
    its rows -1), and the key no feature's name."""
    if origin_key is None and origin_sources is None:
        return None
    if origin_key is None or origin_sources is None:
        raise ValueError("`origin_key` and `origin_sources` go together: the key each mix row's source is written "
                         f"under and the sources it indexes. Received: {origin_key!r}, {origin_sources!r}")
    names = list(origin_sources)
    unknown = sorted(set(names) - set(spec.sources))
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"`origin_sources` should be distinct source domains of {list(spec.sources)}. "
                         f"Received: {names}")
    if origin_key in spec.feature_names:
        raise ValueError(f"`origin_key` {origin_key!r} is the name of a feature")
    if not names:
        return lambda domains: tf.fill(tf.shape(domains), tf.constant(-1, tf.int32))
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(names, tf.string), tf.range(len(names), dtype=tf.int32)),
        default_value=-1).lookup


def mix_batches(files, columns: Mapping, spec, rates: Mapping, batch_size: int, seed: int = 0,
                shuffle_buffer: int = SHUFFLE_BUFFER, replicas: int = 1, origin_key: Optional[str] = None,
                origin_sources: Optional[Sequence[str]] = None, repeat: bool = True) -> tf.data.Dataset:
    """Feature batches of the mix dataset, repeated without end (or one pass): each row kept with its domain's rate.

    With `origin_key` and `origin_sources` (the teachers' source domains, in their order) the features also carry
    `origin_key`: int32 (B,), the position of each row's domain in `origin_sources`, -1 for any other domain (the
    target's rows, a source without a teacher). The key is the model's (`diit_tf.model.ORIGIN_KEY`), given by the
    caller: the data layer sits below the model.

    With `repeat=False`: one shuffled pass over the split, then the end (the gate's origin fit reads the mix rows
    once, `DIITModel.fit_gate`); its last, partial batch is kept as `domain_batches` keeps it (dropped under several
    replicas). Repeated, every batch is full: the batches cycle beside the target's (`diit_batches`)."""
    size, drop = _batch_sizes(batch_size, replicas)
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(tf.constant(list(rates)), tf.constant(list(rates.values()), tf.float32)),
        default_value=0.0)
    origin_of = _origin_lookup(spec, origin_key, origin_sources)

    def keep(index, batch):
        n = tf.shape(batch[spec.domain])[0]
        draw = tf.random.stateless_uniform([n], seed=tf.stack([tf.constant(seed, tf.int64), index]))
        rows = _rows(batch, draw < table.lookup(batch[spec.domain]))
        features = {name: rows[name] for name in spec.feature_names}
        if origin_of is not None:
            features[origin_key] = origin_of(rows[spec.domain])
        return features

    # repeated, the indices run on through the passes: each pass draws its rows afresh
    ds = parsed_batches(files, columns, shuffle_buffer, seed + 1, repeat=repeat).enumerate()
    ds = ds.map(keep, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.rebatch(size, drop_remainder=drop or repeat)


def diit_batches(files, columns: Mapping, spec, batch_size: int, mix_batch_size: Optional[int] = None,
                 rates: Optional[Mapping] = None, epochs: int = 1, seed: int = 0,
                 shuffle_buffer: int = SHUFFLE_BUFFER, replicas: int = 1, origin_key: Optional[str] = None,
                 origin_sources: Optional[Sequence[str]] = None) -> tf.data.Dataset:
    """DIIT's `((x_t, y_t), x_m)` batches: `epochs` shuffled passes over the target rows, the mix batches cycling
    (carrying each row's source under `origin_key` when given, see `mix_batches`)."""
    target = domain_batches(files, columns, spec, spec.target, batch_size, seed, shuffle_buffer, replicas)
    mix = mix_batches(files, columns, spec, rates or mix_rates(spec, 1.0), mix_batch_size or batch_size, seed,
                      shuffle_buffer, replicas, origin_key, origin_sources)
    return tf.data.Dataset.zip((target.repeat(epochs), mix)).prefetch(tf.data.AUTOTUNE)


def eval_batches(files, columns: Mapping, spec, batch_size: int = 4096) -> tf.data.Dataset:
    """`(features, labels, domains)` batches of a split, in file order (no shuffle)."""
    def split(batch):
        return {n: batch[n] for n in spec.feature_names}, batch[spec.label], batch[spec.domain]

    return parsed_batches(files, columns, read_batch=batch_size).map(
        split, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def first_rows(dataset: tf.data.Dataset, rows: int) -> tf.data.Dataset:
    """The first `rows` rows of a dataset of batches (any structure of tensors, rows first): whole batches, then the
    last one cut to the bound. Reading stops at the bound (one batch beyond it is read to see that), so bounding a
    pass over a span reads only the start of it. A bound in rows, where `bounded` counts batches."""
    limit = tf.constant(int(rows), tf.int64)

    def count(seen, batch):  # (rows before this batch, the batch)
        n = tf.cast(tf.shape(tf.nest.flatten(batch)[0])[0], tf.int64)
        return seen + n, (seen, batch)

    def cut(seen, batch):
        return tf.nest.map_structure(lambda value: value[:limit - seen], batch)

    ds = dataset.scan(tf.constant(0, tf.int64), count).take_while(lambda seen, batch: seen < limit)
    return ds.map(cut)


def bounded(dataset: tf.data.Dataset, steps: Optional[int]) -> tf.data.Dataset:
    """At most `steps` batches (TFX `TrainArgs.num_steps` / `EvalArgs.num_steps`); None: all of them."""
    return dataset if not steps else dataset.take(int(steps))


def has_rows(dataset: tf.data.Dataset) -> bool:
    """Whether `dataset` yields at least one batch (reads until the first one, or to the end when there is none)."""
    for _ in dataset.take(1):
        return True
    return False


def has_domain_rows(files, columns: Mapping, spec, domain: str, batch_size: int = 1, replicas: int = 1) -> bool:
    """Whether the split has rows of `domain` for at least one batch (under several replicas a full global batch of
    `batch_size`, as `domain_batches` drops a partial one; else one row), read unshuffled up to the first ones.
    `has_rows` of the shuffled stream gives the same answer but fills a shuffle window first: for the DIIT
    trainer's target (a tenth of the span) that is a read of the whole span before training starts."""
    size, drop = _batch_sizes(batch_size, replicas)
    rows = parsed_batches(files, columns, only=(spec.domain, domain)).map(lambda batch: batch[spec.domain])
    return has_rows(rows.rebatch(size if drop else 1, drop_remainder=True))


@contextlib.contextmanager
def unknown_length():
    """Silence Keras' "Your input ran out of data" warning while fitting on a stream: a streamed split has no known
    length, so the first epoch always ends that way (Keras then knows the number of steps per epoch)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        yield


# --------------------------------------------------------------------------------------------------- failures
GZIP_CHUNK = 1 << 20       # compressed bytes per zlib call in `check_gzip`


def gzip_problem(path: str) -> Optional[str]:
    """Why `path` is not a complete gzip stream (one or more members, each ending with its trailer), else None. An
    empty file counts as empty, as TF's reader reads it. One zlib pass, the output thrown away as it comes (about a
    tenth of the CPU of reading and parsing the file with TF)."""
    decoder, size = zlib.decompressobj(16 + zlib.MAX_WBITS), 0
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            while True:
                data = f.read(GZIP_CHUNK)
                if not data:
                    break
                size += len(data)
                while data:
                    if decoder.eof:                       # a member ended: the rest is the next member
                        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
                    while True:                           # bounded output per call: memory stays flat
                        out = decoder.decompress(data, GZIP_CHUNK)
                        data = decoder.unconsumed_tail
                        if decoder.eof or (not data and len(out) < GZIP_CHUNK):
                            break                         # (a full output buffer may leave output pending)
                    data = decoder.unused_data if decoder.eof else b""
    except zlib.error as err:
        return f"not a valid gzip stream at or before byte {size} ({err})"
    if size and not decoder.eof:
        return f"the gzip stream ends early, after {size} bytes (a truncated file): rows after the cut would be lost"
    return None


# Files this process found whole, by (path, size, modification time): the K source trainers and the DIIT trainer
# of one local pipeline run read the same Transform output, so it is checked once per process, not once per trainer.
_WHOLE_FILES: set = set()


def _file_key(path: str) -> tuple:
    stat = tf.io.gfile.stat(path)
    return path, stat.length, stat.mtime_nsec


def check_gzip(files: Sequence[str], where: str) -> None:
    """A `StreamInputError` naming the first of `files` that is not a complete gzip stream (`gzip_problem`); the
    files are checked in parallel threads (zlib releases the GIL). A file found whole is not read again in this
    process while its size and modification time stay the same (a bad file is checked, and named, every time)."""
    keys = {path: _file_key(path) for path in files}
    files = [path for path in files if keys[path] not in _WHOLE_FILES]
    if not files:
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(4, len(files))) as pool:
        problems = list(pool.map(gzip_problem, files))
    for path, problem in zip(files, problems):
        if problem:
            raise StreamInputError(f"{where}: cannot read transformed examples file {path}: {problem}")
    _WHOLE_FILES.update(keys[path] for path in files)


@contextlib.contextmanager
def naming_bad_files(files: Sequence[str], columns: Mapping, where: str):
    """`check_gzip` the files, then re-raise a read or parse error of the input pipeline as a `StreamInputError`
    naming the file (and field)."""
    check_gzip(files, where)
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
        culprit = find_bad_file(files, columns)
        if culprit is None:
            raise
        raise StreamInputError(f"{where}: {culprit}") from err


def find_bad_file(files: Sequence[str], columns: Mapping) -> Optional[str]:
    """`"<file>: <reason>"` for the first file that cannot be read or parsed with `columns`, else None."""
    for path in files:
        ds = tf.data.TFRecordDataset(path, compression_type=COMPRESSION).batch(READ_BATCH)
        ds = ds.map(lambda records: tf.io.parse_example(records, dict(columns)))
        try:
            for _ in ds:
                pass
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as err:
            return f"cannot read transformed examples file {path}: {_reason(err)}"
    return None


def _reason(err) -> str:
    """The readable part of a tf.data error message (without TF's node and op decorations)."""
    text = " ".join(str(err.message).split())
    missing = re.search(r"Feature: (\S+) \(data type: (\w+)\) is required but could not be found", text)
    if missing:
        return f"a record has no feature {missing.group(1)!r} ({missing.group(2)})"
    text = re.sub(r"\{\{[^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]|name:\s*$", "", text).strip()
    return text[:300] or type(err).__name__


# ------------------------------------------------------------------------------------------------ trainer input
@dataclasses.dataclass
class TrainerInput:
    """What a trainer reads: the train (and optional eval) split's files, the columns to parse, and the TFX step
    bounds (`TrainArgs.num_steps`: steps in all; `EvalArgs.num_steps`: eval batches; None: everything)."""

    train_files: list
    eval_files: list
    columns: dict
    train_steps: Optional[int] = None
    eval_steps: Optional[int] = None


# ---------------------------------------------------------------------------------------------------- writing
def write_examples(directory: str, columns: Mapping, shards: int = 1, prefix: str = "examples",
                   chunk: int = 100_000) -> list:
    """Write `columns` (name -> numpy array, one row per index) as `shards` gzipped TFRecord files of
    `tf.train.Example` (rows dealt round-robin), the format of Transform's transformed examples: bytes columns as
    `bytes_list`, integer columns as `int64_list`, the rest as `float_list`, one value each. Encoded by tfx_bsl's
    Arrow-to-Example coder (C++; a Python loop building protos is about 70x slower). Returns the file paths."""
    import numpy as np
    import pyarrow as pa
    from tfx_bsl.coders import example_coder

    tf.io.gfile.makedirs(directory)
    values = {name: np.asarray(v) for name, v in columns.items()}
    n = len(next(iter(values.values())))
    for name, v in values.items():
        if v.dtype.kind in "U":
            values[name] = v.astype(bytes)
        elif v.dtype.kind == "b":
            values[name] = v.astype(np.int64)
    encoder = example_coder.RecordBatchToExamplesEncoder()
    paths = [os.path.join(directory, f"{prefix}-{k:05d}-of-{shards:05d}.gz") for k in range(shards)]
    writers = [tf.io.TFRecordWriter(p, options=COMPRESSION) for p in paths]
    try:
        for begin in range(0, n, chunk):
            rows = min(chunk, n - begin)
            offsets = pa.array(np.arange(rows + 1, dtype=np.int32))
            batch = pa.RecordBatch.from_arrays(
                [pa.ListArray.from_arrays(offsets, pa.array(v[begin:begin + rows])) for v in values.values()],
                list(values))
            for i, record in enumerate(encoder.encode(batch)):
                writers[(begin + i) % shards].write(record)
    finally:
        for writer in writers:
            writer.close()
    return paths
