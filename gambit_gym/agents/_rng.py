"""Tie-breaking helpers of the agents; the counter-based streams themselves live in the core.

:class:`CounterStreams` and :func:`replicate_keys` moved to :mod:`gambit_gym.core.streams` (the
batched agent base in the core draws from them); they are re-exported here for old imports.
"""

from __future__ import annotations

import numpy as np

from gambit_gym.core.streams import CounterStreams, replicate_keys

__all__ = ["CounterStreams", "argmax_frequencies", "argmax_random_ties", "replicate_keys",
           "tie_probabilities"]


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
