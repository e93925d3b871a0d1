"""The industrial simulation: every domain trained period by period, DIIT against baselines and ablations.

- `protocol`: `run_simulation(store, backbone, methods, seeds, hparams, insertion_period)` and `summarize`.
- `methods`: the registry (`METHODS`, `make_method`, `parse_methods`); `catalog`: names and descriptions only.
- `context`: `PeriodStore`, the shared source models and the training-read log.
- `hparams`: the `--hparams` JSON (fair budget and per-method options).
- `report`: results.json / details.json / report.md / the AUC-per-period PNG.
- `datasets`: `--dataset synthetic|movielens-1m|<data_dir>` to a dataset directory.

Submodules are imported on first use, so `import diit_tf.simulation.catalog` stays free of TensorFlow.
"""
import importlib

_EXPORTS = {
    "ALL_METHODS": "catalog", "METHODS": "methods", "make_method": "methods", "parse_methods": "methods",
    "Hparams": "hparams", "PeriodStore": "context", "SimulationResult": "protocol", "run_simulation": "protocol",
    "summarize": "protocol", "write_report": "report",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
