"""Counter-based random streams for agents: draws as a pure function of (replicate, step, purpose).

Why: an agent run over R replicates in one batched call must make exactly the decisions that R
single agents seeded ``seed + r`` make. Each replicate owns a 64-bit key (drawn from
``np.random.default_rng(seed + r)``); every draw is a hash of (key, counter, stream, index), so
a batch of replicates draws in one numpy call, and the draws of one replicate never depend on
how many other replicates share the batch, nor on whether propensities were computed in between.
The hash is :mod:`gambit_gym.core.counter_rng`'s (the envs use the same one). Every
:class:`~gambit_gym.core.batched.BatchedAgent` draws from a :class:`CounterStreams`
(``self.streams``); ``gambit_gym.agents._rng`` re-exports these names.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import gammaincinv, ndtri

from gambit_gym.core import counter_rng

__all__ = ["CounterStreams", "replicate_keys"]

_INDEX = np.uint64(0x632BE59BD9B4E019)
_GAMMA_TRIES = 3
_S11 = np.uint64(11)
_LATER = np.arange(1, _GAMMA_TRIES)  # the indices of a draw's later gamma proposals
_offset = counter_rng.offset  # the (counter, stream) part of a pre-hash value


def _mix_twice(x: np.ndarray) -> None:
    counter_rng.mix_inplace(x, rounds=2)


@functools.lru_cache(maxsize=64)
def _weyl(n: int) -> np.ndarray:
    """``arange(n) · _INDEX`` (uint64, read-only): the per-index offsets of ``n`` draws."""
    with np.errstate(over="ignore"):
        out = np.arange(n, dtype=np.uint64) * _INDEX
    out.setflags(write=False)
    return out


def _to_uniform(h: np.ndarray) -> np.ndarray:
    """Uniforms in (0, 1) from hashes (the top 53 bits); overwrites ``h``."""
    h >>= _S11
    u = h.astype(np.float64)
    u += 0.5
    u *= 2.0 ** -53
    return u


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
        x = np.add(self.keys[:, None], _weyl(n) + _offset(counter, stream))
        _mix_twice(x)  # == counter_rng.hash64, in place (about twice as fast)
        return x.reshape((self.replicates, *shape))

    def _uniforms(self, counter: int, parts: list[tuple[int, np.ndarray]]) -> list[np.ndarray]:
        """Uniforms ``(R, m_i)`` for each ``(stream, weyl_i)``, hashed in one pass.

        ``weyl_i`` holds the draw indices times ``_INDEX`` (slices of :func:`_weyl`). The
        numbers are those of separate calls; one pass spares the per-call numpy overhead,
        which dominates at small R·K.
        """
        r = self.replicates
        bounds = [0]  # each part's (R, m_i) block of one flat array (plain slices: np.split
        for _, weyl in parts:  # and np.cumsum cost more than the hashing at small R·K)
            bounds.append(bounds[-1] + r * len(weyl))
        x = np.empty(bounds[-1], dtype=np.uint64)
        keys = self.keys[:, None]
        for (stream, weyl), lo, hi in zip(parts, bounds, bounds[1:]):
            # uint64 array arithmetic wraps silently (only numpy scalars warn on overflow)
            np.add(keys, weyl + _offset(counter, stream), out=x[lo:hi].reshape(r, len(weyl)))
        _mix_twice(x)
        u = _to_uniform(x)
        return [u[lo:hi].reshape(r, -1) for lo, hi in zip(bounds, bounds[1:])]

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
        return self._gamma(counter, stream, shape_param, [])[0]

    def gamma_and_normal(self, counter: int, stream: int, shape_param: np.ndarray,
                         normal_stream: int, normal_shape: tuple[int, ...] = ()
                         ) -> tuple[np.ndarray, np.ndarray]:
        """``(gamma(counter, stream, shape_param), normal(counter, normal_stream, shape))``.

        The same numbers as the two calls, hashed in one pass (most Thompson draws need a
        variance and a normal; at small R·K the per-call overhead is most of the cost).
        """
        n = int(np.prod(normal_shape)) if normal_shape else 1
        g, (u,) = self._gamma(counter, stream, shape_param, [(int(normal_stream), _weyl(n))])
        return g, ndtri(u).reshape((self.replicates, *normal_shape))

    def _gamma(self, counter: int, stream: int, shape_param: np.ndarray,
               extra: list[tuple[int, np.ndarray]]) -> tuple[np.ndarray, list[np.ndarray]]:
        """:meth:`gamma`, plus the uniforms of the ``extra`` parts (see :meth:`_uniforms`)."""
        a = np.asarray(shape_param, dtype=np.float64)
        if a.shape[:1] != (self.replicates,):
            raise ValueError(f"shape_param must have leading axis R={self.replicates}, "
                             f"got shape {a.shape}")
        flat = a.reshape(self.replicates, -1)
        lowest = flat.min()
        if not lowest > 0:
            raise ValueError("gamma shape parameters must be > 0")
        n = flat.shape[1]
        small = flat < 1.0 if lowest < 1.0 else None
        boosted = flat if small is None else np.where(small, flat + 1.0, flat)
        d = boosted - 1.0 / 3.0
        c = 1.0 / np.sqrt(9.0 * d)
        stream = int(stream)
        parts = [(stream, _weyl(_GAMMA_TRIES * n)[::_GAMMA_TRIES]),
                 (stream + 1, _weyl((_GAMMA_TRIES + 1) * n)[::_GAMMA_TRIES + 1])]
        if small is not None:
            parts.append((stream + 2, _weyl(n)))
        x, u, *rest = self._uniforms(counter, parts + extra)
        g, ok = _marsaglia_tsang(ndtri(x), u, c, d)
        g_flat = g.reshape(-1)  # a view: retries write into g
        rejected = np.flatnonzero(~ok)
        if len(rejected):  # the rejected entries' later proposals, all in one pass
            rejected = self._retry_gamma(counter, stream, g_flat, rejected, n, c, d)
        if len(rejected):  # every proposal rejected (about 1e-4): exact inverse CDF
            u = self._uniforms_at(counter, (stream + 1,), rejected // n,
                                  ((rejected % n) * (_GAMMA_TRIES + 1) + _GAMMA_TRIES)[None])[0]
            g_flat[rejected] = gammaincinv(boosted.reshape(-1)[rejected], u)
        if small is not None:
            u_small = rest.pop(0)
            g = np.where(small, g * u_small ** (1.0 / flat), g)
        return g.reshape(a.shape), rest

    def _retry_gamma(self, counter: int, stream: int, g_flat: np.ndarray, entries: np.ndarray,
                     n: int, c: np.ndarray, d: np.ndarray) -> np.ndarray:
        """Later proposals of the flat ``entries`` (of ``(R, n)``) whose first was rejected.

        Writes each entry's first accepted proposal into ``g_flat``; returns the entries with
        none. Both streams' proposals are hashed in one pass: this runs on most calls (with
        R·K draws at a rejection rate of a few percent), so its fixed cost matters.
        """
        rows, cols = np.divmod(entries, n)
        index = np.empty((2, len(entries), _GAMMA_TRIES - 1), dtype=np.int64)
        np.add((cols * _GAMMA_TRIES)[:, None], _LATER, out=index[0])
        np.add((cols * (_GAMMA_TRIES + 1))[:, None], _LATER, out=index[1])
        uniforms = self._uniforms_at(counter, (stream, stream + 1), rows[:, None], index)
        gj, okj = _marsaglia_tsang(ndtri(uniforms[0]), uniforms[1], c.reshape(-1)[entries, None],
                                   d.reshape(-1)[entries, None])
        hit = okj.any(axis=1)
        first = okj.argmax(axis=1)
        g_flat[entries[hit]] = gj[hit, first[hit]]
        return entries[~hit]

    def _uniforms_at(self, counter: int, streams: tuple[int, ...], rows: np.ndarray,
                     index: np.ndarray) -> np.ndarray:
        """Uniforms of replicates ``rows`` at flat draw indices ``index``, for several streams.

        ``index`` is ``(len(streams), ...)`` and ``rows`` broadcasts against ``index[0]``;
        entry ``[s, j...]`` equals ``self.uniform(counter, streams[s], shape)[rows[j...]]`` at
        flat index ``index[s, j...]``: a few entries drawn without hashing all, every stream in
        one pass.
        """
        pre = index.astype(np.uint64)
        pre *= _INDEX
        for block, stream in zip(pre, streams):
            block += _offset(counter, stream)
        pre += self.keys[rows]
        _mix_twice(pre)
        return _to_uniform(pre)


def _marsaglia_tsang(x: np.ndarray, u: np.ndarray, c: np.ndarray,
                     d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One Marsaglia-Tsang proposal per entry: ``(d·v, accepted)``.

    For normals ``x`` and uniforms ``u``: ``c = 1/√(9d)``, ``v = (1 + c·x)³`` (two products:
    ``**3`` costs a ``pow`` call), accepted where ``v > 0`` and
    ``log u < x²/2 + d - d·v + d·log v``. The paper's squeeze ``u < 1 - 0.0331·x⁴`` lies
    inside that region and accepts about 90% of proposals without a logarithm; the two
    logarithms (the costliest step) are taken only for the others.
    """
    t = c * x
    t += 1.0
    v = t * t
    v *= t
    dv = d * v
    x2 = x * x
    squeeze = x2 * x2
    squeeze *= -0.0331
    squeeze += 1.0
    ok = u < squeeze  # it never accepts where v <= 0 (there x⁴ > 36)
    unsure = np.flatnonzero(~ok & (v > 0))
    if len(unsure):
        x2s, us, ds, vs = (np.broadcast_to(a, ok.shape).reshape(-1)[unsure]
                           for a in (x2, u, d, v))
        rhs = np.log(vs)
        rhs -= vs
        rhs += 1.0
        rhs *= ds
        rhs += 0.5 * x2s
        ok.reshape(-1)[unsure] = np.log(us) < rhs
    return dv, ok
