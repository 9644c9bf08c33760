"""Counter-based random streams for agents: draws as a pure function of (replicate, step, purpose).

Why: an agent run over R replicates in one batched call must make exactly the decisions that R
single agents seeded ``seed + r`` make. Each replicate owns a 64-bit key (drawn from
``np.random.default_rng(seed + r)``); every draw is a hash of (key, counter, stream, index), so
a batch of replicates draws in one numpy call, and the draws of one replicate never depend on
how many other replicates share the batch, nor on whether propensities were computed in between.
The hash is :mod:`gambit_gym.envs.counter_rng`'s.
"""

from __future__ import annotations

import numpy as np
from scipy.special import gammaincinv, ndtri

from gambit_gym.envs import counter_rng

_INDEX = np.uint64(0x632BE59BD9B4E019)
_GAMMA_TRIES = 3


def _mix_twice(x: np.ndarray) -> None:
    t = np.empty_like(x)
    for _ in range(2):
        np.right_shift(x, counter_rng._S30, out=t)
        x ^= t
        x *= counter_rng._M1
        np.right_shift(x, counter_rng._S27, out=t)
        x ^= t
        x *= counter_rng._M2
        np.right_shift(x, counter_rng._S31, out=t)
        x ^= t


def replicate_keys(seed: int | None, replicates: int) -> np.ndarray:
    """Keys ``(R,)`` uint64: replicate ``r`` gets the key of a single agent seeded ``seed + r``."""
    if seed is None:
        base = np.random.default_rng()
        return np.array([counter_rng.new_key(base) for _ in range(replicates)], dtype=np.uint64)
    return np.array([counter_rng.new_key(np.random.default_rng(int(seed) + r))
                     for r in range(replicates)], dtype=np.uint64)


class CounterStreams:
    """Random draws for R replicates, one key each.

    Every method takes a ``counter`` (e.g. the decision index, >= 0) and a ``stream`` (a
    purpose id);
    the same (counter, stream) always gives the same numbers. Outputs have a leading axis R.

    Args:
        keys: replicate keys, uint64 ``(R,)``.
    """

    def __init__(self, keys: np.ndarray) -> None:
        self.keys = np.asarray(keys, dtype=np.uint64).reshape(-1)

    @property
    def replicates(self) -> int:
        """R."""
        return len(self.keys)

    def subset(self, index: np.ndarray | slice) -> CounterStreams:
        """The streams of some replicates (same numbers as in the full batch)."""
        return CounterStreams(self.keys[index])

    def _hash(self, counter: int, stream: int, shape: tuple[int, ...]) -> np.ndarray:
        n = int(np.prod(shape)) if shape else 1
        with np.errstate(over="ignore"):
            x = self.keys[:, None] + np.arange(n, dtype=np.uint64)[None, :] * _INDEX
            x += np.uint64(counter) * counter_rng._GOLDEN + np.uint64(stream) * counter_rng._STREAM
            _mix_twice(x)  # == counter_rng.hash64, in place (about twice as fast)
        return x.reshape((self.replicates, *shape))

    def uniform(self, counter: int, stream: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform draws in (0, 1), ``(R, *shape)`` float64."""
        h = self._hash(counter, stream, tuple(shape))
        return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (2.0 ** -53)

    def normal(self, counter: int, stream: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Standard normal draws, ``(R, *shape)`` float64."""
        return ndtri(self.uniform(counter, stream, shape))

    def integers(self, counter: int, stream: int, high: np.ndarray | int,
                 shape: tuple[int, ...] = ()) -> np.ndarray:
        """Integers uniform in ``0..high-1`` (``high`` broadcast against ``(R, *shape)``)."""
        u = self.uniform(counter, stream, shape)
        return np.minimum((u * high).astype(np.int64), np.asarray(high) - 1)

    def gamma(self, counter: int, stream: int, shape_param: np.ndarray) -> np.ndarray:
        """Gamma(shape, 1) draws, one per entry of ``shape_param`` ``(R, ...)``.

        Uses streams ``stream``, ``stream + 1`` and ``stream + 2`` (space stream ids by 4 or
        more). Marsaglia and Tsang's squeeze method, vectorised with a fixed number of proposals per
        draw; the rare entry whose proposals are all rejected (probability about 1e-4) falls
        back to the inverse CDF, so the draws are exact in distribution.
        """
        a = np.asarray(shape_param, dtype=np.float64)
        if a.shape[:1] != (self.replicates,):
            raise ValueError(f"shape_param must have leading axis R={self.replicates}, "
                             f"got shape {a.shape}")
        if np.any(a <= 0):
            raise ValueError("gamma shape parameters must be > 0")
        shape = a.shape[1:]
        small = a < 1.0
        boosted = np.where(small, a + 1.0, a)
        d = boosted - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)
        x = self.normal(counter, stream, (*shape, _GAMMA_TRIES))
        u = self.uniform(counter, int(stream) + 1, (*shape, _GAMMA_TRIES + 1))
        v = (1.0 + c[..., None] * x) ** 3
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = (v > 0) & (np.log(u[..., :-1]) < 0.5 * x * x + d[..., None]
                            - d[..., None] * v + d[..., None] * np.log(np.where(v > 0, v, 1.0)))
        first = np.argmax(ok, axis=-1)
        any_ok = ok.any(axis=-1)
        g = d * np.take_along_axis(v, first[..., None], axis=-1)[..., 0]
        if not np.all(any_ok):
            bad = ~any_ok
            g[bad] = gammaincinv(boosted[bad], u[..., -1][bad])
        if np.any(small):
            u_small = self.uniform(counter, int(stream) + 2, shape)
            g = np.where(small, g * u_small ** (1.0 / a), g)
        return g


def argmax_random_ties(scores: np.ndarray, u: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """Argmax over the last axis, breaking ties uniformly with the uniforms ``u``.

    Args:
        scores: ``(..., K)``.
        u: uniforms in (0, 1), ``(...)``.
        atol: scores within ``atol`` of the maximum count as tied.

    Returns:
        int64 ``(...)``.
    """
    best = scores.max(axis=-1, keepdims=True)
    tied = scores >= best - atol
    count = tied.sum(axis=-1)
    pick = np.minimum((u * count).astype(np.int64), count - 1)
    rank = np.cumsum(tied, axis=-1) - 1
    return np.argmax(tied & (rank == pick[..., None]), axis=-1)


def tie_probabilities(scores: np.ndarray, atol: float = 0.0) -> np.ndarray:
    """Exact probabilities of :func:`argmax_random_ties`, ``(..., K)``."""
    best = scores.max(axis=-1, keepdims=True)
    tied = (scores >= best - atol).astype(np.float64)
    return tied / tied.sum(axis=-1, keepdims=True)


def argmax_frequencies(scores: np.ndarray, n_actions: int) -> np.ndarray:
    """Empirical frequency of the argmax over the sample axis.

    Args:
        scores: ``(R, S, K)`` sampled scores.
        n_actions: K.

    Returns:
        ``(R, K)`` frequencies (each row sums to 1).
    """
    picks = scores.argmax(axis=-1)
    r, s = picks.shape
    counts = np.zeros((r, n_actions))
    np.add.at(counts, (np.repeat(np.arange(r), s), picks.ravel()), 1.0)
    return counts / s
