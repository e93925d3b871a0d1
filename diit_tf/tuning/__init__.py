"""Keras Tuner sweeps of DIIT.

- `space`: the search space (`search_space(hp, overrides)`, `parse_overrides`, `split_values`).
- `overrides`: the `--space` mini-language (`name=lo:hi[:log]`, `name=a|b|c`, `name=v`, JSON).
- `best_hparams`: the sweep's result file, `best_hparams.json`; `load_best_hparams(path) -> (DIITConfig, training)`.
- `context`: teachers and the student's warm start, trained once per sweep (`prepare_context`); `mix_rows`.
- `hypermodel`: `DIITHyperModel` (`build(hp)` -> compiled Keras 3 `DIITModel`; `fit` validates on period p+1).
- `tuner`: `make_tuner(algorithm, ...)`, a progress line per trial, the leaderboard.
- `tfx`: `tuner_fn` for the TFX `Tuner` component.
- `run`: `run_sweep(Sweep(...))`, what `diit tune` does.

Modules load lazily (`from diit_tf.tuning import space` imports no TensorFlow).
"""
