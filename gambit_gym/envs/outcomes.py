"""Outcome models: the mean reward of a message's true style embedding (and context).

The study's coefficients were fitted on its own VAE scale, which is not ours. To carry them
over, :func:`calibrate_linear` standardises each bank dimension, keeps the study's intercept,
signs and relative magnitudes (flipping optimism, whose study axis points toward pessimism),
and scales the coefficient vector so that the sd of the mean reward over all bank messages
equals the study's noise level 0 — the study defines level 0 as exactly that spread
("treatment variance equal to outcome noise"). Every number can thus be re-derived from a bank
and the facts file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gambit_gym.text.contexts import N_CONTEXTS, STEP_BUCKETS

#: Study dimensions whose axis points the opposite way to ours (higher = less of it).
FLIPPED_STUDY_AXES: frozenset[str] = frozenset({"optimism"})


@dataclass(frozen=True)
class Standardizer:
    """Per-dimension affine map ``(z - mean) / sd`` fitted over a bank's messages."""

    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def fit(cls, scores: np.ndarray) -> Standardizer:
        """Fit to ``scores`` ``(n, d)``; dims with zero spread keep sd 1."""
        scores = np.asarray(scores, dtype=np.float64)
        sd = scores.std(axis=0)
        return cls(scores.mean(axis=0), np.where(sd > 0, sd, 1.0))

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """Standardise ``scores`` ``(n, d)``."""
        return (np.asarray(scores, dtype=np.float64) - self.mean) / self.sd


@dataclass(frozen=True)
class ContextTerms:
    """Additive context effects: per location, and per step bucket (times bucket number 1..4)."""

    location: tuple[float, float, float] = (0.0, 0.0, 0.0)
    per_step_bucket: float = 0.0

    def table(self) -> np.ndarray:
        """Effect of each of the 12 contexts, ``(12,)``."""
        out = np.zeros(N_CONTEXTS)
        for cid in range(N_CONTEXTS):
            loc, bucket = divmod(cid, len(STEP_BUCKETS))
            out[cid] = self.location[loc] + self.per_step_bucket * (bucket + 1)
        return out


@dataclass(frozen=True)
class LinearOutcome:
    """``intercept + coef · standardise(z) + context term``."""

    intercept: float
    coef: np.ndarray
    standardizer: Standardizer
    context_terms: ContextTerms = field(default_factory=ContextTerms)
    kind: str = "linear"

    def mean_reward(self, z: np.ndarray, context_ids: np.ndarray) -> np.ndarray:
        """Mean reward of embeddings ``z`` ``(n, d)`` in contexts ``(n,)``, shape ``(n,)``."""
        return (self.intercept + self.standardizer(z) @ self.coef
                + self.context_terms.table()[np.asarray(context_ids, dtype=np.int64)])


@dataclass(frozen=True)
class MLPOutcome:
    """``intercept + scale * (relu(x W1 + b1) W2 - centre) + context term`` on standardised z."""

    intercept: float
    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    centre: float
    scale: float
    standardizer: Standardizer
    context_terms: ContextTerms = field(default_factory=ContextTerms)
    kind: str = "mlp"

    def raw(self, z: np.ndarray) -> np.ndarray:
        """The network's output before centring and scaling, ``(n,)``."""
        hidden = np.maximum(self.standardizer(z) @ self.w1 + self.b1, 0.0)
        return hidden @ self.w2

    def mean_reward(self, z: np.ndarray, context_ids: np.ndarray) -> np.ndarray:
        """Mean reward of embeddings ``z`` ``(n, d)`` in contexts ``(n,)``, shape ``(n,)``."""
        return (self.intercept + self.scale * (self.raw(z) - self.centre)
                + self.context_terms.table()[np.asarray(context_ids, dtype=np.int64)])


def oriented_study_coefficients(coefs: dict[str, float], dims: tuple[str, ...]) -> np.ndarray:
    """The study's coefficients for ``dims``, with flipped study axes sign-corrected."""
    return np.array([-coefs[d] if d in FLIPPED_STUDY_AXES else coefs[d] for d in dims])


def calibrate_linear(
    scores: np.ndarray, coef: np.ndarray, intercept: float, target_sd: float,
    context_terms: ContextTerms | None = None,
) -> LinearOutcome:
    """Scale a linear outcome so the sd of its mean reward over ``scores`` is ``target_sd``.

    Args:
        scores: true-dim scores of every bank message, ``(n_rows, d)``.
        coef: the study's (oriented) coefficients, ``(d,)``; only their direction is kept.
        intercept: the study's intercept (the mean reward over the bank).
        target_sd: the study's noise level 0 for this model.
        context_terms: optional additive context effects (not rescaled).
    """
    standardizer = Standardizer.fit(scores)
    direction = np.asarray(coef, dtype=np.float64)
    spread = float((standardizer(scores) @ direction).std())
    if spread == 0:
        raise ValueError("the bank's scores do not vary along the outcome's direction")
    return LinearOutcome(float(intercept), direction * (target_sd / spread), standardizer,
                         context_terms or ContextTerms())


def calibrate_mlp(
    scores: np.ndarray, intercept: float, target_sd: float, hidden: int = 64, seed: int = 0,
    context_terms: ContextTerms | None = None,
) -> MLPOutcome:
    """An MLP outcome with fixed seeded weights, centred and scaled to ``target_sd``.

    The study's fitted MLP is not public: this one has the same architecture (one hidden layer
    of ``hidden`` ReLU units), PyTorch's default uniform initialisation drawn from ``seed``,
    and the same calibration as the linear models.
    """
    scores = np.asarray(scores, dtype=np.float64)
    d = scores.shape[1]
    rng = np.random.default_rng(seed)
    w1 = rng.uniform(-1 / np.sqrt(d), 1 / np.sqrt(d), size=(d, hidden))
    b1 = rng.uniform(-1 / np.sqrt(d), 1 / np.sqrt(d), size=hidden)
    w2 = rng.uniform(-1 / np.sqrt(hidden), 1 / np.sqrt(hidden), size=hidden)
    standardizer = Standardizer.fit(scores)
    proto = MLPOutcome(float(intercept), w1, b1, w2, 0.0, 1.0, standardizer,
                       context_terms or ContextTerms())
    raw = proto.raw(scores)
    spread = float(raw.std())
    return MLPOutcome(float(intercept), w1, b1, w2, float(raw.mean()), target_sd / spread,
                      standardizer, context_terms or ContextTerms())
