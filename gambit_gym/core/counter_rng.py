"""Counter-based random streams: random numbers as a pure function of (key, step, stream).

Shared by the envs (``gambit_gym.envs``) and the batched agents (``gambit_gym.agents._rng``), so
it lives in the core below both; ``gambit_gym.envs.counter_rng`` re-exports it.

Why: replicate ``r`` of the native vector env must reproduce exactly what a single env seeded
the same way does, and the vector env must draw for 1000 replicates in one numpy call. A
sequential generator per replicate would need 1000 Python calls per step; a counter-based
stream needs none. Each episode's key is drawn from the env's ``np_random`` at reset, so all
randomness still comes from ``env.np_random``.

The hash is SplitMix64 (Steele, Lea and Flood, 2014): its finaliser applied to a Weyl-sequence
combination of key, counter and stream; uniforms use the top 53 bits.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GOLDEN = 0x9E3779B97F4A7C15  # Weyl increments of the counter and the stream (Python ints:
_STREAM = 0xD1B54A32D192ED03  # products are wrapped by hand, so numpy never warns)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)

STREAM_CONTEXT = 1
STREAM_ROW = 2
STREAM_NOISE = 3
STREAM_GENERATOR = 4


_MASK = 0xFFFFFFFFFFFFFFFF


def mix_inplace(x: np.ndarray, rounds: int = 1) -> None:
    """Apply the SplitMix64 finaliser ``rounds`` times to the uint64 array ``x``, in place.

    One round equals what :func:`hash64` applies to ``keys + offset(counter, stream)``;
    in place it skips the temporaries, which matters for large draws.
    """
    t = np.empty_like(x)
    for _ in range(rounds):
        np.right_shift(x, _S30, out=t)
        x ^= t
        x *= _M1
        np.right_shift(x, _S27, out=t)
        x ^= t
        x *= _M2
        np.right_shift(x, _S31, out=t)
        x ^= t


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def _mix_int(x: int) -> int:
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def hash64(keys: np.ndarray | int, counter: int, stream: int) -> np.ndarray | int:
    """uint64 hashes of ``(keys[i], counter, stream)``.

    ``keys`` is a uint64 array (the vector env) or a Python int (the single env, which avoids
    numpy's per-call overhead); both paths give bit-identical results.
    """
    if isinstance(keys, int):
        return _mix_int((keys + counter * _GOLDEN + stream * _STREAM) & _MASK)
    with np.errstate(over="ignore"):  # a numpy scalar key takes scalar maths, which warns
        return _mix(keys + offset(counter, stream))


def offset(counter: int, stream: int) -> np.uint64:
    """The (counter, stream) part of the pre-hash value, wrapped to 64 bits in Python ints.

    Added to uint64 *arrays*, it wraps silently; only numpy scalar products warn.
    """
    return np.uint64((int(counter) * _GOLDEN + int(stream) * _STREAM) & _MASK)


def uniform(keys: np.ndarray | int, counter: int, stream: int) -> np.ndarray | float:
    """Uniform float64 draws in the open interval (0, 1), one per key."""
    h = hash64(keys, counter, stream)
    if isinstance(h, int):
        return ((h >> 11) + 0.5) * (2.0 ** -53)
    return ((h >> _S11).astype(np.float64) + 0.5) * (2.0 ** -53)


def uniforms(keys: np.ndarray, draws: tuple[tuple[int, int], ...]) -> np.ndarray:
    """Uniforms ``(len(draws), R)`` for several ``(counter, stream)`` pairs in one pass.

    Row ``i`` equals ``uniform(keys, *draws[i])``; one hashing pass over all of them spares
    the per-call overhead, which dominates an env step at a few hundred replicates.
    """
    offsets = np.array([offset(c, s) for c, s in draws], dtype=np.uint64)
    h = _mix(offsets[:, None] + keys[None, :])
    return ((h >> _S11).astype(np.float64) + 0.5) * (2.0 ** -53)


def normal(keys: np.ndarray | int, counter: int, stream: int) -> np.ndarray | float:
    """Standard normal draws (inverse CDF of :func:`uniform`), one per key."""
    return ndtri(uniform(keys, counter, stream))


def floor_index(x: np.ndarray | float) -> np.ndarray | int:
    """``floor`` of non-negative draws as int64 indices (an int for a scalar)."""
    if isinstance(x, float):
        return int(x)
    return x.astype(np.int64)


def new_key(rng: np.random.Generator) -> int:
    """Draw an episode key (a non-negative int below 2**63) from a numpy generator."""
    return int(rng.integers(0, 2**63, dtype=np.int64))
