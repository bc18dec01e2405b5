"""Small field checks shared by the configuration dataclasses.

Every check raises :class:`ValueError` whose message names the field (``Class.field``), the bad
value and what is accepted, so that a user can fix the setting without reading a traceback.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# the choice constants live in config.choices; imported (and so re-exported) here for the
# modules that take them from checks
from ptychodus_pinn_torch.config.choices import ARCHITECTURES, OUTPUT_MODES, TORCH_LOSS_MODES

__all__ = [
    "ARCHITECTURES", "OUTPUT_MODES", "TORCH_LOSS_MODES", "as_optional_path", "check_bool",
    "check_choice", "check_int", "check_number", "check_torch_loss_mode",
]

def check_choice(owner: str, name: str, value: Any, choices: Iterable[Any]) -> None:
    """Raise ValueError unless ``value`` is one of ``choices``."""
    allowed = tuple(choices)
    if value not in allowed:
        raise ValueError(
            f"{owner}.{name}={value!r} is not accepted; accepted values: "
            + ", ".join(repr(c) for c in allowed)
        )


def check_int(owner: str, name: str, value: Any, *, minimum: int | None = None,
              optional: bool = False) -> None:
    """Raise ValueError unless ``value`` is an int (not bool) ``>= minimum`` (None if optional)."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        kind = "an integer or None" if optional else "an integer"
        raise ValueError(f"{owner}.{name}={value!r} must be {kind}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}.{name}={value!r} must be >= {minimum}")


def check_number(owner: str, name: str, value: Any, *, positive: bool = False,
                 non_negative: bool = False, unit_interval: bool = False,
                 optional: bool = False) -> None:
    """Raise ValueError unless ``value`` is a finite real number meeting the stated bound."""
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{owner}.{name}={value!r} must be a finite number")
    if positive and not value > 0:
        raise ValueError(f"{owner}.{name}={value!r} must be > 0")
    if non_negative and value < 0:
        raise ValueError(f"{owner}.{name}={value!r} must be >= 0")
    if unit_interval and not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}.{name}={value!r} must lie in [0, 1]")


def check_bool(owner: str, name: str, value: Any) -> None:
    """Raise ValueError unless ``value`` is a bool."""
    if not isinstance(value, bool):
        raise ValueError(f"{owner}.{name}={value!r} must be true or false")


def as_optional_path(owner: str, name: str, value: Any) -> Path | None:
    """``None`` stays None, ``str``/``PathLike`` become :class:`Path`; anything else is an error."""
    if value is None or isinstance(value, Path):
        return value
    try:
        return Path(value)
    except TypeError:
        raise ValueError(f"{owner}.{name}={value!r} must be a path (str) or None") from None


def check_torch_loss_mode(value: Any) -> None:
    """Raise upstream's ValueError unless ``value`` is one of :data:`TORCH_LOSS_MODES`."""
    if value not in TORCH_LOSS_MODES:
        raise ValueError(
            f"Invalid torch_loss_mode={value!r}. Expected 'poisson' or 'mae' "
            "(TrainingConfig.torch_loss_mode)."
        )
