"""Whether a setting is a count (an integer at or above a minimum) or a number, never a boolean.

JSON `true` loads as Python's True, which `isinstance(True, int)` takes for 1, so a `true` where a count belongs (a
pipeline config, a trainer's custom_config, a DIITConfig read from JSON) would pass as 1: a buffer of one row, a
bound of one step. The one predicate of the pipeline config (`pipeline/configs.py`), the trainers
(through `positive_count`) and DIITConfig (`gate_fit_epochs`). On the ground floor and free of
TensorFlow: `pipeline/configs.py` loads without it.

`as_count` is the count a setting spells: an integral float (256.0, as a JSON writer may spell a count) is taken as
its integer, where the trainers (`components.training`), the simulation's hyperparameters
(`diit_tf.simulation.hparams`) and the tuning settings (`diit_tf.tuning`) read a count, through `positive_count`, and
where the pipeline config reads one (`pipeline/configs.py`, which keeps the integer).

`is_number` is the one "is this setting a number" predicate (DIITConfig's numeric fields, the KD options, the
pipeline config, the gradient reversal's λ, the tuning space's rates): an int or a float, not a boolean (True would
pass as 1) and not a string.

Example:
    is_count(3), is_count(0, minimum=0)                         # True, True
    is_count(True), is_count(0), is_count(2.0), is_count("3")   # False each
    as_count(256.0), as_count(3), as_count(2.5), as_count(True)  # 256, 3, None, None
    is_number(0.5), is_number(2), is_number(True), is_number("1")  # True, True, False, False
"""
from __future__ import annotations

import numbers
from typing import Optional


def is_count(value, minimum: int = 1) -> bool:
    """Whether `value` is an int >= `minimum` (not a bool, not a float, not a string)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def as_count(value, minimum: int = 1) -> Optional[int]:
    """`value` as a count: itself when `is_count`, the integer of a float with an integral value >= `minimum`
    (256.0 -> 256), else None (a boolean, a string, a smaller or non-integral number)."""
    number = int(value) if isinstance(value, float) and value.is_integer() else value
    return number if is_count(number, minimum) else None


def is_number(value) -> bool:
    """Whether `value` is a real number (an int, a float, a NumPy scalar), not a boolean."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def positive_count(value, name: str, where: str = "", null: bool = False, default: Optional[int] = None,
                   what: str = "") -> Optional[int]:
    """`value`, the setting `name`, as a positive integer (`as_count`: 256.0 is taken as 256), or `default` when it is
    null and `null` may be; else a ValueError naming it after `where` and saying what it is for (`what`), e.g.
    "Tuner custom_config: `batch_size` should be a positive integer. Received: True" (JSON true would pass as 1), or
    "DIIT trainer: `student.shuffle_buffer` should be null or a positive integer. Received: 0". The simulation's
    hyperparameters (`diit_tf.simulation.hparams`), the tuning settings (`diit_tf.tuning`) and the trainers
    (`components.training.checked_counts`, `components.diit_trainer`) read their counts through it."""
    if value is None and null:
        return default
    number = as_count(value)
    if number is None:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}`{name}` should be {'null or ' if null else ''}a positive integer{what}. "
                         f"Received: {value!r}")
    return number
