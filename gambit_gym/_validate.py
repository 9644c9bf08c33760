"""Argument checks shared by envs, agents and the harness, so every one says the same thing."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np


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


def check_number(name: str, value: Any, *, minimum: float | None = None,
                 maximum: float | None = None, strict: bool = False,
                 allow_none: bool = False) -> float | None:
    """``float(value)``, or a ValueError naming ``name`` unless it is a finite real number.

    Booleans and strings are refused (``True`` is not a noise level); numpy scalars are
    accepted. ``minimum`` is inclusive, or exclusive with ``strict``; ``maximum`` is inclusive.
    """
    if value is None and allow_none:
        return None
    bound = ""
    if minimum is not None:
        bound = f" {'>' if strict else '>='} {minimum:g}"
    if maximum is not None:
        bound += f"{' and' if bound else ''} <= {maximum:g}"
    what = f"a finite number{bound}{' or None' if allow_none else ''}"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be {what}, got {value!r} ({type(value).__name__})")
    out = float(value)
    if (not math.isfinite(out) or (minimum is not None and (out < minimum or
                                                             (strict and out == minimum)))
            or (maximum is not None and out > maximum)):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return out


def check_index(name: str, value: Any, n: int | None) -> int:
    """``int(value)``, or an error naming ``name`` unless it is an integer in ``[0, n)``.

    Python and numpy integers pass, and so does a numpy integer array holding one value (what
    ``action_space.sample()`` and Stable-Baselines3's ``predict`` return). Floats (``2.9`` is
    not arm 2), strings, booleans and negative values (``-1`` is not the last arm) are refused.
    With ``n`` None there is no upper bound.

    Raises:
        ValueError: not an integer, or an integer outside ``[0, n)`` (one exception type for
            every bad value, as :func:`check_positive_int`).
    """
    raw = value
    what = f"an integer in 0..{n - 1}" if n is not None else "a non-negative integer"
    if isinstance(value, np.ndarray) and value.size == 1 and value.ndim <= 1:
        value = value.reshape(()).item() if np.issubdtype(value.dtype, np.integer) else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be {what}, got {raw!r} ({type(raw).__name__})")
    if value < 0 or (n is not None and value >= n):
        raise ValueError(f"{name} must be {what}, got {int(value)}")
    return int(value)


def check_index_array(name: str, value: Any, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """An int64 array of the given ``shape`` whose entries are integers in ``[0, n)``.

    Raises:
        ValueError: not integers (floats and booleans are refused), the wrong shape, or an
            entry out of range.
    """
    arr = np.asarray(value)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name} must be integers in 0..{n - 1}, got dtype {arr.dtype} "
                        f"({np.asarray(value).ravel()[:5].tolist()}...)")
    if arr.shape != shape:
        if arr.size == int(np.prod(shape)) and arr.ndim <= len(shape) + 1:
            arr = arr.reshape(shape)
        else:
            raise ValueError(f"{name} must have shape {shape} (one per replicate), got shape "
                             f"{arr.shape}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(f"{name} must be integers in 0..{n - 1}, got {arr[bad][:5].tolist()} "
                         f"at positions {np.flatnonzero(bad)[:5].tolist()}")
    return arr.astype(np.int64, copy=False)


def check_index_sequence(name: str, value: Any, n: int | None) -> tuple[int, ...]:
    """A non-empty sequence of distinct integers in ``[0, n)``, as a tuple of ints.

    A string is refused (``"012"`` is not three ids), and so is any element that is not an
    integer (floats, booleans).

    Raises:
        ValueError: not a sequence of integers, empty, an id out of range, or an id repeated.
    """
    what = f"integers in 0..{n - 1}" if n is not None else "non-negative integers"
    if isinstance(value, (str, bytes, dict)) or not hasattr(value, "__iter__"):
        raise ValueError(f"{name} must be a sequence of {what}, got {value!r} "
                        f"({type(value).__name__})")
    items = list(value)
    if not items:
        raise ValueError(f"{name} must name at least one id, got {value!r}")
    out = tuple(check_index(f"{name}[{i}]", v, n) for i, v in enumerate(items))
    if len(set(out)) != len(out):
        raise ValueError(f"{name} must not repeat an id, got {value!r}")
    return out


def check_seed(name: str, value: Any) -> int | None:
    """None, or a non-negative integer seed (booleans and floats refused), as an int.

    Raises:
        ValueError: not an integer, or negative.
    """
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a non-negative integer or None, got {value!r} "
                        f"({type(value).__name__})")
    if value < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, got {value}")
    return int(value)


def check_propensities(name: str, p: Any, n: int, chosen: int | None = None, *,
                       atol: float = 1e-4) -> np.ndarray:
    """A probability vector over ``n`` arms, as float64, checked.

    Finite, non-negative, summing to 1 within ``atol``, and positive on ``chosen`` (an agent
    that gives its own choice probability 0 breaks every off-policy estimator).

    Raises:
        ValueError: naming what is wrong.
    """
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {n} probabilities, got {p!r}") from None
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) (one probability per arm), got shape "
                         f"{arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    if np.any(arr < 0):
        raise ValueError(f"{name} must be non-negative, got {arr.tolist()}")
    if abs(arr.sum() - 1.0) > atol:
        raise ValueError(f"{name} must sum to 1 (within {atol:g}), got sum {arr.sum():.6g}")
    if chosen is not None and arr[chosen] <= 0:
        raise ValueError(f"{name} gives the chosen arm {chosen} probability 0; an agent must "
                         "give its own choice a positive probability")
    return arr


def check_propensity_rows(name: str, p: Any, n: int, chosen: np.ndarray, *,
                          atol: float = 1e-4) -> np.ndarray:
    """``(R, n)`` probability rows, each checked like :func:`check_propensities`.

    Raises:
        ValueError: naming the first replicate whose row is wrong, and what is wrong.
    """
    chosen = np.asarray(chosen)
    try:
        arr = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be ({len(chosen)}, {n}) probabilities, got {p!r}") \
            from None
    if arr.shape != (len(chosen), n):
        raise ValueError(f"{name} must have shape ({len(chosen)}, {n}) (one probability per "
                         f"replicate and arm), got shape {arr.shape}")
    ok = (np.isfinite(arr).all(axis=1) & (arr >= 0).all(axis=1)
          & (np.abs(arr.sum(axis=1) - 1.0) <= atol))
    ok &= arr[np.arange(len(chosen)), chosen] > 0
    if not ok.all():
        r = int(np.flatnonzero(~ok)[0])
        check_propensities(f"{name} of replicate {r}", arr[r], n, int(chosen[r]), atol=atol)
    return arr
