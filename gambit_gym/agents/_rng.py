"""Counter-based random streams for agents: draws as a pure function of (replicate, step, purpose).

Why: an agent run over R replicates in one batched call must make exactly the decisions that R
single agents seeded ``seed + r`` make. Each replicate owns a 64-bit key (drawn from
``np.random.default_rng(seed + r)``); every draw is a hash of (key, counter, stream, index), so
a batch of replicates draws in one numpy call, and the draws of one replicate never depend on
how many other replicates share the batch, nor on whether propensities were computed in between.
The hash is :mod:`gambit_gym.envs.counter_rng`'s.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import gammaincinv, ndtri

from gambit_gym.envs import counter_rng

_INDEX = np.uint64(0x632BE59BD9B4E019)
_GAMMA_TRIES = 3
_GOLDEN_INT = int(counter_rng._GOLDEN)
_STREAM_INT = int(counter_rng._STREAM)
_MASK64 = (1 << 64) - 1


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


@functools.lru_cache(maxsize=64)
def _weyl(n: int) -> np.ndarray:
    """``arange(n) · _INDEX`` (uint64, read-only): the per-index offsets of ``n`` draws."""
    with np.errstate(over="ignore"):
        out = np.arange(n, dtype=np.uint64) * _INDEX
    out.setflags(write=False)
    return out


def _offset(counter: int, stream: int) -> np.uint64:
    """The (counter, stream) part of a draw's pre-hash value (Python ints: no errstate)."""
    return np.uint64((int(counter) * _GOLDEN_INT + int(stream) * _STREAM_INT) & _MASK64)


def _to_uniform(h: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) from hashes (the top 53 bits)."""
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * (2.0 ** -53)


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
        return self._bits(counter, stream, _weyl(n)).reshape((self.replicates, *shape))

    def _bits(self, counter: int, stream: int, weyl: np.ndarray) -> np.ndarray:
        """Hashes ``(R, m)`` of every replicate at draw indices given as ``index · _INDEX``."""
        with np.errstate(over="ignore"):
            x = self.keys[:, None] + weyl[None, :]
            x += _offset(counter, stream)
            _mix_twice(x)  # == counter_rng.hash64, in place (about twice as fast)
        return x

    def _bits_at(self, counter: int, stream: int, rows: np.ndarray,
                 index: np.ndarray) -> np.ndarray:
        """Hashes ``(m,)`` of replicates ``rows`` at flat draw indices ``index`` (both ``(m,)``).

        Equal to ``self._hash(counter, stream, shape)[rows, index]`` for the flattened shape, so
        a sampler can draw a few extra entries (e.g. rejected proposals) without hashing all.
        """
        with np.errstate(over="ignore"):
            x = self.keys[rows] + index.astype(np.uint64) * _INDEX
            x += _offset(counter, stream)
            _mix_twice(x)
        return x

    def uniform(self, counter: int, stream: int, shape: tuple[int, ...] = ()) -> np.ndarray:
        """Uniform draws in (0, 1), ``(R, *shape)`` float64."""
        return _to_uniform(self._hash(counter, stream, tuple(shape)))

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
        more). Marsaglia and Tsang's squeeze method with up to ``_GAMMA_TRIES`` proposals per
        draw (proposal ``j`` of entry ``i`` is normal index ``i·3 + j`` and uniform index
        ``i·4 + j``); the rare entry whose proposals are all rejected (probability about 1e-4)
        falls back to the inverse CDF of uniform index ``i·4 + 3``, so the draws are exact in
        distribution. Only the first proposal is hashed for every entry; later ones are hashed
        just for the entries that need them (the numbers are the same as hashing them all).
        """
        a = np.asarray(shape_param, dtype=np.float64)
        if a.shape[:1] != (self.replicates,):
            raise ValueError(f"shape_param must have leading axis R={self.replicates}, "
                             f"got shape {a.shape}")
        if np.any(a <= 0):
            raise ValueError("gamma shape parameters must be > 0")
        flat = a.reshape(self.replicates, -1)
        n = flat.shape[1]
        small = flat < 1.0
        any_small = bool(small.any())
        boosted = np.where(small, flat + 1.0, flat) if any_small else flat
        d = boosted - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)
        stream = int(stream)
        x = ndtri(_to_uniform(self._bits(counter, stream, _weyl(_GAMMA_TRIES * n)
                                         [::_GAMMA_TRIES])))
        u = _to_uniform(self._bits(counter, stream + 1, _weyl((_GAMMA_TRIES + 1) * n)
                                   [::_GAMMA_TRIES + 1]))
        g, ok = _marsaglia_tsang(x, u, c, d)
        rows, cols = np.nonzero(~ok)
        if len(rows):  # the rejected entries' remaining proposals, all in one pass
            rows, cols = self._retry_gamma(counter, stream, g, rows, cols, c, d)
        if len(rows):
            u = _to_uniform(self._bits_at(counter, stream + 1, rows,
                                          cols * (_GAMMA_TRIES + 1) + _GAMMA_TRIES))
            g[rows, cols] = gammaincinv(boosted[rows, cols], u)
        if any_small:
            u_small = _to_uniform(self._bits(counter, stream + 2, _weyl(n)))
            g = np.where(small, g * u_small ** (1.0 / flat), g)
        return g.reshape(a.shape)

    def _retry_gamma(self, counter: int, stream: int, g: np.ndarray, rows: np.ndarray,
                     cols: np.ndarray, c: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
        """Later proposals of the entries ``(rows, cols)`` whose first one was rejected.

        Writes each entry's first accepted proposal into ``g``; returns the entries with none.
        """
        more = _GAMMA_TRIES - 1
        rr, cc = np.repeat(rows, more), np.repeat(cols, more)
        jj = np.tile(np.arange(1, _GAMMA_TRIES), len(rows))
        x = ndtri(_to_uniform(self._bits_at(counter, stream, rr, cc * _GAMMA_TRIES + jj)))
        u = _to_uniform(self._bits_at(counter, stream + 1, rr, cc * (_GAMMA_TRIES + 1) + jj))
        gj, okj = _marsaglia_tsang(x, u, c[rr, cc], d[rr, cc])
        gj, okj = gj.reshape(-1, more), okj.reshape(-1, more)
        hit = okj.any(axis=1)
        first = okj.argmax(axis=1)
        g[rows[hit], cols[hit]] = gj[hit, first[hit]]
        return rows[~hit], cols[~hit]


def _marsaglia_tsang(x: np.ndarray, u: np.ndarray, c: np.ndarray,
                     d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Marsaglia-Tsang proposal per entry: ``(d·v, accepted)``.

    For normals ``x`` and uniforms ``u``: ``c = 1/√(9d)``, ``v = (1 + c·x)³`` (two products:
    ``**3`` costs a ``pow`` call), accepted where ``v > 0`` and
    ``log u < x²/2 + d - d·v + d·log v``.
    """
    t = 1.0 + c * x
    v = t * t * t
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = (v > 0) & (np.log(u) < 0.5 * x * x + d - d * v + d * np.log(np.where(v > 0, v, 1.0)))
    return d * v, ok


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
