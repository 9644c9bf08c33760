"""Argument checks shared by envs, agents and the harness, so every one says the same thing."""

from __future__ import annotations

import numbers
from typing import Any


def check_positive_int(name: str, value: Any, *, allow_none: bool = False,
                       minimum: int = 1) -> int | None:
    """``int(value)``, or a ValueError naming ``name`` unless it is an integer >= ``minimum``.

    Booleans are refused (``True`` is an ``int`` to Python, never a count to a user); numpy
    integers are accepted. With ``allow_none``, None passes through.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"{name} must be {what}{' or None' if allow_none else ''}, "
                         f"got {value!r}")
    return int(value)
