"""Shared machinery of the built-in agents: stream ids, propensity noise, features, regression.

The batched agent base itself, :class:`~gambit_gym.core.batched.BatchedAgent`, and its Monte
Carlo propensities (:mod:`gambit_gym.core.propensity_sampling`) live in the core; they are
re-exported here so that the old import paths (``gambit_gym.agents._batched.BatchedAgent``, ...)
keep working.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gambit_gym.core.batched import (  # noqa: F401  (re-exported: the old import path)
    BatchedAgent,
    _check_rewards,
    batch_info,
    check_positive,
)
from gambit_gym.core.description import EnvDescription
from gambit_gym.core.propensity_sampling import (  # noqa: F401  (re-exported)
    PROPENSITY_PILOT,
    PROPENSITY_RSE,
    propensity_generator,
    sampled_probabilities,
    t_cdf,
)
from gambit_gym.core.streams import CounterStreams
from gambit_gym.text.contexts import LOCATIONS, N_CONTEXTS, STEP_BUCKETS, context_ids

#: Env ids the GAMBIT agents run on (their ``supported_envs``; the contract test uses the first).
GAMBIT_ENVS: tuple[str, ...] = ("GambitIHS-v0", "GambitIHS-1D-v0")

# Stream ids: each purpose owns 16 consecutive ids (a gamma draw uses 3, a normal one more).
STREAM_ACT = 16
STREAM_TIE = 32
STREAM_PROP_TIE = 64
STREAM_RESET = 80
STREAM_TRAIN = 96
STREAM_PERTURB = 112
STREAM_TREAT = 128


def polar_t_base(generator: np.random.Generator,
                 shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Random numbers from which Student-t variates of any degrees of freedom follow cheaply.

    Bailey's polar method: for ``(U, V)`` uniform on the unit disc and ``W = U² + V²``,
    ``T = U·√(ν(W^(-2/ν) - 1)/W)`` is Student-t with ``ν`` degrees of freedom, for every
    ``ν > 0``, from the same ``(U, W)``. So one set of numbers serves every replicate and arm
    whatever its posterior's degrees of freedom (:func:`polar_t`), and a draw costs an
    ``expm1`` and a square root instead of a gamma and a normal variate.

    Returns:
        ``(U/√W, log W)``, each of ``shape``.
    """
    size = int(np.prod(shape))
    parts_a, parts_lw, have = [], [], 0
    while have < size:
        uv = generator.uniform(-1.0, 1.0, size=(int(1.3 * (size - have)) + 16, 2))
        w = uv[:, 0] * uv[:, 0] + uv[:, 1] * uv[:, 1]
        keep = (w > 0.0) & (w <= 1.0)
        parts_a.append(uv[keep, 0] / np.sqrt(w[keep]))
        parts_lw.append(np.log(w[keep]))
        have += int(keep.sum())
    return (np.concatenate(parts_a)[:size].reshape(shape),
            np.concatenate(parts_lw)[:size].reshape(shape))


def polar_t_unit(base: tuple[np.ndarray, np.ndarray], dof: np.ndarray) -> np.ndarray:
    """``T/√ν`` for the numbers of :func:`polar_t_base`: ``(U/√W)·√(W^(-2/ν) - 1)``.

    ``dof`` broadcasts against the base's shape; multiply by ``√ν`` for the t variate itself
    (the agents fold ``√ν`` into their scales).
    """
    a, log_w = base
    out = np.expm1(log_w * (-2.0 / dof))
    np.sqrt(out, out=out)
    out *= a
    return out


def shared_theta_noise(generator: np.random.Generator, model: Any, rows: np.ndarray,
                       n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random numbers of ``n`` draws of a :class:`BayesLinReg` posterior, shared by ``rows``.

    ``θ = μ + √v·root·z``: ``z`` ``(n, p)`` standard normals for every replicate, and the noise
    variance ``v = b/g``, ``g ~ Gamma(a)``: with ``g`` ``(n,)`` shared too where the rows'
    ``a`` agree (the runner updates every replicate at every step, so they do), else drawn per
    row. Known noise: ``v = 1``. Returns ``(z, v)`` with ``v`` ``(len(rows), n)``.
    """
    z = generator.standard_normal((n, model.p))
    if model.noise_var is not None:
        return z, np.ones((len(rows), n))
    shape = model.a[rows]
    if np.all(shape == shape[0]):
        g = generator.standard_gamma(shape[0], size=n)[None, :]
    else:
        g = generator.standard_gamma(shape[:, None], size=(len(rows), n))
    return z, model.b[rows, None] / g


def two_arm_probabilities(mean: np.ndarray, factor: np.ndarray, a: np.ndarray | None,
                          b: np.ndarray | None) -> np.ndarray:
    """Exact propensities ``(R, 2)`` of Thompson sampling with two arms and correlated scores.

    The scores are ``mean + √v·factor·z`` (``z ~ N(0, I)``, ``v = 1`` or ``v ~ IG(a, b)``), so
    their difference is ``N(Δ, v·q)`` with ``q = |factor₀ - factor₁|²``: arm 0 wins with
    probability ``Φ(Δ/√q)``, or ``T_{2a}(Δ/√(q·b/a))`` with the variance integrated out.
    """
    from scipy.special import ndtr, stdtr

    delta = mean[:, 0] - mean[:, 1]
    diff = factor[:, 0] - factor[:, 1]
    q = np.maximum(np.einsum("rp,rp->r", diff, diff), 1e-300)
    if a is None:
        p0 = ndtr(delta / np.sqrt(q))
    else:
        p0 = stdtr(2.0 * a, delta / np.sqrt(q * b / a))
    return np.stack([p0, 1.0 - p0], axis=1)


def gambit_contexts(obs: np.ndarray) -> np.ndarray:
    """Context ids ``(R,)`` of GAMBIT observations ``(R, 2)``."""
    if obs.ndim != 2 or obs.shape[1] != 2:
        raise ValueError(f"expected GAMBIT observations [location, step_bucket] of shape (R, 2), "
                         f"got {obs.shape}")
    return context_ids(obs)


def require_contexts(spec: EnvDescription, agent: str) -> None:
    """Raise a clear error unless the env has the 12 discrete IHS contexts."""
    if spec.n_contexts != N_CONTEXTS:
        raise ValueError(f"{agent} needs an env with the {N_CONTEXTS} IHS contexts (a GambitIHS "
                         f"env); this env has n_contexts={spec.n_contexts}")


def require_simulator(spec: EnvDescription, agent: str) -> Any:
    """The env's simulator, or a clear error where it has none."""
    if spec.simulator is None:
        raise ValueError(f"{agent} needs simulator access (EnvDescription.simulator), which this "
                         "env does not give; use foGAMBITTS, which learns the treatment online")
    return spec.simulator


N_CONTEXT_FEATURES = len(LOCATIONS) + len(STEP_BUCKETS)

#: ``(12, 7)`` location one-hot (3) and step-bucket one-hot (4) of each context id.
CONTEXT_ONE_HOTS = np.zeros((N_CONTEXTS, N_CONTEXT_FEATURES))
for _c in range(N_CONTEXTS):
    _loc, _bucket = divmod(_c, len(STEP_BUCKETS))
    CONTEXT_ONE_HOTS[_c, _loc] = 1.0
    CONTEXT_ONE_HOTS[_c, len(LOCATIONS) + _bucket] = 1.0
CONTEXT_ONE_HOTS.setflags(write=False)


class BayesLinReg:
    """Batched Bayesian linear regression, ``y = φᵀθ + ε``, over R replicates.

    Two noise models:

    - ``noise_var=None`` (learned): Normal-Inverse-Gamma, ``θ | v ~ N(μ0, v·B0⁻¹)``,
      ``v ~ IG(a0, b0)``, ``ε ~ N(0, v)``.
    - ``noise_var=v`` (known): ``θ ~ N(μ0, B0⁻¹)``, ``ε ~ N(0, v)``.

    The precision ``B`` and ``S = B0·μ0 + Σ φy / v`` are accumulated exactly and ``μ = B⁻¹S``;
    ``b`` uses the prediction-error recursion ``b += (y - φᵀμ)² / (2(1 + φᵀB⁻¹φ))``, which equals
    the closed form ``b0 + (yᵀy + μ0ᵀB0μ0 - μᵀBμ)/2`` without its cancellation.

    Why a square root and not ``B⁻¹``: posterior draws need a factor ``L`` with
    ``L Lᵀ = B⁻¹``, and a Cholesky factorisation per step costs more than the rest of the
    update. ``root`` is such a factor, kept by Potter's rank-one square-root update (O(p²) per
    observation, no factorisation); it is not triangular. Every :attr:`REFRESH_EVERY` updates it
    is recomputed exactly as the Cholesky factor of ``B⁻¹``, which bounds rounding drift.

    Args:
        replicates: R.
        mu0: prior mean ``(p,)``.
        precision0: prior precision diagonal ``(p,)``.
        noise_var: known noise variance, or None to learn it.
        a0: IG shape (learned noise).
        b0: IG scale (learned noise).
        zero_s0: start ``S`` at 0 instead of ``B0·μ0`` (the code release's behaviour: the prior
            mean is dropped at the first update).
    """

    REFRESH_EVERY = 64  #: updates between exact recomputations of ``root`` from ``B``

    def __init__(self, replicates: int, mu0: np.ndarray, precision0: np.ndarray,
                 noise_var: float | None, a0: float = 1.0, b0: float = 10.0,
                 zero_s0: bool = False) -> None:
        p = len(mu0)
        self.p = p
        self.noise_var = noise_var
        self._B = np.broadcast_to(np.diag(precision0), (replicates, p, p)).copy()
        # scaled features not yet added to B (B is read only at refreshes: one matmul then)
        self._pending = np.empty((replicates, self.REFRESH_EVERY, p))
        self._n_pending = 0
        self.S = np.zeros((replicates, p)) if zero_s0 else np.broadcast_to(
            precision0 * mu0, (replicates, p)).copy()
        self.mu = np.broadcast_to(np.asarray(mu0, dtype=np.float64), (replicates, p)).copy()
        self.a = np.full(replicates, float(a0))
        self.b = np.full(replicates, float(b0))
        self.n = 0
        self._refresh_root()

    @property
    def B(self) -> np.ndarray:
        """The posterior precision ``(R, p, p)``."""
        if self._n_pending:
            rows = self._pending[:, :self._n_pending]
            self._B += np.matmul(np.swapaxes(rows, -1, -2), rows)
            self._n_pending = 0
        return self._B

    @property
    def cov(self) -> np.ndarray:
        """``B⁻¹`` ``(R, p, p)``, as ``root rootᵀ``."""
        cov = np.matmul(self.root, np.swapaxes(self.root, -1, -2))
        return 0.5 * (cov + np.swapaxes(cov, -1, -2))

    def _refresh_root(self) -> None:
        cov = np.linalg.inv(self.B)
        self.root = np.linalg.cholesky(0.5 * (cov + np.swapaxes(cov, -1, -2)))

    def update(self, phi: np.ndarray, y: np.ndarray) -> None:
        """Add one observation per replicate: features ``(R, p)``, targets ``(R,)``.

        With ``w = rootᵀφ`` and ``c = root·w = B⁻¹φ``, the new precision ``B + sφφᵀ`` has inverse
        ``B⁻¹ - ccᵀ/δ`` (Sherman-Morrison, ``δ = 1/s + wᵀw``), whose square root is
        ``root - γ c wᵀ`` with ``γ = 1/(δ + √(δ/s))`` (Potter): O(p²), no factorisation.
        """
        scale = 1.0 if self.noise_var is None else 1.0 / self.noise_var
        w = np.matmul(phi[:, None, :], self.root)[:, 0, :]
        c = np.matmul(self.root, w[:, :, None])[:, :, 0]  # B⁻¹φ, before this update
        q = np.einsum("rp,rp->r", w, w)
        if self.noise_var is None:
            err = y - np.einsum("rp,rp->r", phi, self.mu)
            self.b = self.b + 0.5 * err * err / (1.0 + q)
            self.a = self.a + 0.5
        np.multiply(phi, np.sqrt(scale), out=self._pending[:, self._n_pending])
        self._n_pending += 1
        self.S += scale * y[:, None] * phi
        self.n += 1
        if self.n % self.REFRESH_EVERY == 0:
            self._refresh_root()  # exact now and then: bounds rounding drift
        else:
            delta = 1.0 / scale + q
            gamma = 1.0 / (delta + np.sqrt(delta / scale))
            self.root -= (gamma[:, None] * c)[:, :, None] * w[:, None, :]
        back = np.matmul(self.S[:, None, :], self.root)  # (rootᵀS)ᵀ
        self.mu = np.matmul(self.root, np.swapaxes(back, -1, -2))[:, :, 0]

    def sample(self, streams: CounterStreams, counter: int, stream: int,
               n_samples: int | None = None) -> np.ndarray:
        """Posterior draws of θ: ``(R, p)``, or ``(R, n_samples, p)``."""
        shape = () if n_samples is None else (n_samples,)
        if self.noise_var is None:  # v and z in one hashing pass (same numbers as apart)
            a = np.broadcast_to(self.a.reshape(-1, *([1] * len(shape))), (len(self.a), *shape))
            g, z = streams.gamma_and_normal(counter, stream, np.ascontiguousarray(a), stream + 4,
                                            (*shape, self.p))
            v = self.b.reshape(-1, *([1] * len(shape))) / g
        else:
            v = np.ones((self.mu.shape[0], *shape))
            z = streams.normal(counter, stream + 4, (*shape, self.p))
        if n_samples is None:
            return self.mu + np.sqrt(v)[:, None] * np.matmul(self.root, z[:, :, None])[:, :, 0]
        return self.mu[:, None] + np.sqrt(v)[..., None] * np.einsum("rpq,rsq->rsp", self.root, z)
