"""Argument checks shared by envs, agents and the harness, so every one says the same thing."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
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


def unexpected_kwargs_error(owner: str, unknown: Iterable[str], valid: Iterable[str],
                            note: str = "") -> TypeError:
    """The TypeError Python raises for an unknown keyword argument, with the valid ones listed.

    The message starts in Python's own wording (``"Owner.__init__() got an unexpected keyword
    argument 'x'"``) because third-party builders rely on it: stable-baselines3's
    ``make_vec_env`` and torchrl's ``GymEnv`` retry without ``render_mode`` / ``frameskip``
    only when they see that phrase in a ``TypeError``.

    Args:
        owner: the callable as Python would name it, e.g. ``"GambitEnv.__init__"``.
        unknown: the unknown names (the first is named in the standard phrase).
        valid: the keyword arguments that are accepted.
        note: appended after the list of valid ones (e.g. which preset they apply to).
    """
    names = list(unknown)
    msg = f"{owner}() got an unexpected keyword argument {names[0]!r}"
    if len(names) > 1:
        msg += f" (and {', '.join(repr(n) for n in names[1:])})"
    msg += f"; valid keyword arguments: {', '.join(valid)}{note}"
    return TypeError(msg)
