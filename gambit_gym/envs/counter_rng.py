"""A counter-based random stream: random numbers as a pure function of (key, step, stream).

Why: replicate ``r`` of the native vector env must reproduce exactly what a single env seeded
the same way does, and the vector env must draw for 1000 replicates in one numpy call. A
sequential generator per replicate would need 1000 Python calls per step; a counter-based
stream needs none. Each episode's key is drawn from the env's ``np_random`` at reset, so all
randomness still comes from ``env.np_random``.

The hash is the SplitMix64 finaliser (Steele, Lea and Flood, 2014) applied twice to a
Weyl-sequence combination of key, counter and stream; uniforms use the top 53 bits.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_STREAM = np.uint64(0xD1B54A32D192ED03)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)

STREAM_CONTEXT = 1
STREAM_ROW = 2
STREAM_NOISE = 3
STREAM_GENERATOR = 4


def _mix(x: np.ndarray) -> np.ndarray:
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def hash64(keys: np.ndarray, counter: int, stream: int) -> np.ndarray:
    """uint64 hashes of ``(keys[i], counter, stream)``; ``keys`` is a uint64 array."""
    with np.errstate(over="ignore"):
        x = keys + np.uint64(counter) * _GOLDEN + np.uint64(stream) * _STREAM
        return _mix(_mix(x))


def uniform(keys: np.ndarray, counter: int, stream: int) -> np.ndarray:
    """Uniform float64 draws in the open interval (0, 1), one per key."""
    return ((hash64(keys, counter, stream) >> _S11).astype(np.float64) + 0.5) * (2.0 ** -53)


def normal(keys: np.ndarray, counter: int, stream: int) -> np.ndarray:
    """Standard normal draws (inverse CDF of :func:`uniform`), one per key."""
    return ndtri(uniform(keys, counter, stream))


def new_key(rng: np.random.Generator) -> np.uint64:
    """Draw an episode key from a numpy generator."""
    return np.uint64(rng.integers(0, 2**63, dtype=np.int64))
