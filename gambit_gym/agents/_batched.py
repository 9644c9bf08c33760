"""Shared machinery of the built-in agents: batched-first state, feature maps, Bayesian regression.

Every built-in agent keeps its state with a leading replicate axis R and implements
``_act(obs, counter)``, ``_update(obs, actions, rewards, info)`` and ``_probabilities(obs,
counter, n_samples)`` on batches. The single-replicate protocol (``reset / act / update /
action_probabilities``) is the batched form with R = 1, so the two give the same decisions for
the same seed by construction (see :mod:`gambit_gym.agents._rng`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from gambit_gym._validate import check_index, check_index_array, check_number, check_positive_int
from gambit_gym.agents._rng import CounterStreams, replicate_keys
from gambit_gym.core.description import EnvDescription
from gambit_gym.text.contexts import LOCATIONS, N_CONTEXTS, STEP_BUCKETS, context_ids

#: Env ids the GAMBIT agents run on (the contract test uses the first).
GAMBIT_ENVS: tuple[str, ...] = ("GambitIHS-v0", "GambitIHS-1D-v0")

# Stream ids: each purpose owns 16 consecutive ids (a gamma draw uses 3, a normal one more).
STREAM_ACT = 16
STREAM_TIE = 32
STREAM_PROP_TIE = 64
STREAM_RESET = 80
STREAM_TRAIN = 96
STREAM_PERTURB = 112
STREAM_TREAT = 128


#: Default target relative standard error (SE / p) of the chosen action's Monte Carlo propensity.
PROPENSITY_RSE = 0.1
#: Draws per replicate in the first round of a Monte Carlo propensity (see
#: :func:`sampled_probabilities`).
PROPENSITY_PILOT = 32
_PROP_TAG = 0x9E3779B97F4A7C15  # mixed into each replicate's key: the propensity generators
_PROP_CHUNK = 1 << 21  # scores materialised at once (R·S·K elements)


def propensity_generator(keys: np.ndarray) -> np.random.Generator:
    """The numpy generator of a batch's propensity draws, seeded from its replicates' keys.

    Why not the counter streams the agents act with: propensities need tens to hundreds of
    draws per replicate and step, which numpy draws for the whole batch in one call several
    times faster than hashing. The price: a replicate's propensity estimates (not its
    decisions) depend on the batch it runs in. It is separate from the acting streams, so
    computing propensities never changes a decision.
    """
    return np.random.Generator(np.random.PCG64([*(int(k) for k in keys), _PROP_TAG]))


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


_T_HILL_DOF = 12.0  # from here on the normal transform is within 1e-10 of the t CDF


def t_cdf(x: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """The standard Student-t CDF, vectorised and cheap, for the conditional propensities.

    ``dof >= 12``: Hill's normal transform (CACM Algorithm 395; within 1e-10 of the exact CDF
    there, checked against scipy in the tests), an ``ndtr`` and a few operations where
    ``scipy.special.stdtr`` takes about ten times as long. Integer ``dof < 12`` (the agents'
    posteriors: ``2 + pulls``): the finite series of the CDF (Abramowitz & Stegun 26.7.3-4).
    Other ``dof``: ``stdtr``.

    Args:
        x: points, ``(r, n)``.
        dof: degrees of freedom, ``(r, 1)`` (one per row).
    """
    from scipy.special import ndtr, stdtr

    x, dof = np.broadcast_arrays(np.asarray(x, dtype=np.float64), dof)
    out = np.empty(x.shape)
    row_dof = dof[:, 0]
    big = row_dof >= _T_HILL_DOF
    if big.any():
        xb, nb = x[big], dof[big]
        a = nb - 0.5
        b = 48.0 * a * a
        w2 = a * np.log1p(xb * xb / nb)
        w = np.sqrt(w2)
        z = w + w * (w2 + 3.0) / b - w * (((4.0 * w2 + 33.0) * w2 + 240.0) * w2 + 855.0) / (
            10.0 * b * (b + 0.8 * w2 * w2 + 100.0))
        out[big] = ndtr(np.copysign(z, xb))
    integer = ~big & (row_dof == np.round(row_dof)) & (row_dof >= 1.0)
    if integer.any():
        xi, nu = x[integer], row_dof[integer]
        ni = nu[:, None]
        c = ni / (ni + xi * xi)
        sin = xi / np.sqrt(ni + xi * xi)
        odd = (nu % 2) == 1
        terms = np.where(odd, (nu - 1.0) // 2, nu // 2).astype(np.int64)  # per row
        # the series' coefficients per row (zero past its last term), then Horner in c
        j = np.arange(max(int(terms.max()), 1))
        step = np.where(odd[:, None], 2.0 * j / (2.0 * j + 1.0),
                        (2.0 * j - 1.0) / np.maximum(2.0 * j, 1.0))
        step[:, 0] = 1.0
        coef = np.cumprod(step, axis=1) * (j < terms[:, None])
        total = np.zeros(xi.shape)
        for jj in range(len(j) - 1, -1, -1):
            total *= c
            total += coef[:, jj, None]
        even_cdf = 0.5 + 0.5 * sin * total
        odd_cdf = 0.5 + (np.arctan(xi / np.sqrt(ni)) + sin * np.sqrt(c) * total) / np.pi
        out[integer] = np.where(odd[:, None], odd_cdf, even_cdf)
    rest = ~big & ~integer
    if rest.any():
        out[rest] = stdtr(dof[rest], x[rest])
    return out


def sampled_probabilities(noise: Any, scores: Any, generator: np.random.Generator,
                          replicates: int, n_actions: int, max_samples: int, chosen: np.ndarray,
                          target_rse: float | None, pilot: int = PROPENSITY_PILOT,
                          conditional_dof: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Propensities by Monte Carlo over an agent's own randomisation, draws set by their error.

    What needs to be precise is the propensity of the action the agent is about to take (the
    one logged for off-policy evaluation), and in relative terms (it divides the reward). So:
    a first round of ``pilot`` draws per replicate; a replicate whose chosen arm's estimate has
    a relative standard error above ``target_rse``, or was never drawn, gets one more round
    sized by the pilot to reach it (rounded up to a power of two times the pilot; at most
    ``max_samples`` draws in all). ``target_rse=None``: ``max_samples`` draws. Each round
    draws every replicate's random numbers in one generator call per kind of number.

    Two estimators of the chosen arm ``k``'s probability:

    - counting (default): the share of draws whose argmax is ``k``, logged as the add-one
      ``(C + 1)/(S + 1)``: never zero, and its inverse nearly unbiased for ``1/p``
      (``E[(S + 1)/(C + 1)] = (1 - (1 - p)^(S+1))/p`` for ``C ~ Binomial(S, p)``); relative SE
      ``√((1 - p̃)/(p̃ S))`` with ``p̃ = (C + 1)/(S + 2)``.
    - conditional (``conditional_dof`` given: the arms' scores are independent Student-t given
      the draw's shared numbers, as for StdTS and, given θ, foGAMBITTS): the mean over draws of
      ``P(X_k > M)``, ``M`` the largest of the other arms' draws, from ``k``'s own t CDF
      (:func:`t_cdf`). Unbiased, always positive, and its variance is at most the counting
      estimator's and far below it where ``k``'s score is spread wider than the others' (an
      arm the agent is still exploring: the counting estimator's hardest case). Its SE is the
      draws' sample SE.

    The other arms share ``1 - p_k`` in proportion to their counts (evenly if none was drawn).

    Args:
        noise: ``f(generator, rows, n) -> tuple of arrays``: the random numbers of ``n`` draws
            for replicates ``rows`` (``(len(rows), n, ...)``, or ``(n, ...)`` shared by the
            rows).
        scores: ``f(rows, numbers) -> (len(rows), n, K)``: the sampled scores of replicates
            ``rows`` from those numbers; with ``conditional_dof``, a tuple ``(scores, loc,
            scale)`` where ``loc`` and ``scale`` (broadcastable to the scores) are each arm's
            t location and scale given the numbers.
        generator: the batch's propensity generator (:func:`propensity_generator`).
        replicates: R.
        n_actions: K.
        max_samples: the most draws per replicate.
        chosen: ``(R,)`` the actions the agent takes now.
        target_rse: the target relative standard error, or None for ``max_samples`` draws.
        pilot: draws in the first round.
        conditional_dof: ``(R, K)`` the arms' t degrees of freedom, for the conditional
            estimator; None: counting.

    Returns:
        ``(probabilities (R, K), standard errors (R, K), draws (R,))``.
    """
    r = replicates
    counts = np.zeros((r, n_actions))
    cond_sum = np.zeros(r)
    cond_sq = np.zeros(r)
    drawn = np.zeros(r, dtype=np.int64)
    first = max_samples if target_rse is None else min(pilot, max_samples)
    need = np.full(r, first, dtype=np.int64)
    rows_all = np.arange(r)
    for _ in range(2):
        rows = np.flatnonzero(need > 0)
        n = int(need[rows].max())
        # one draw count per round: rows that need fewer use the first ``need`` draws
        per_call = max(1, _PROP_CHUNK // (n * max(n_actions, 8)))
        for lo in range(0, len(rows), per_call):
            part = rows[lo:lo + per_call]
            out = scores(part, noise(generator, part, n))
            sampled = out[0] if conditional_dof is not None else out
            picks = sampled.argmax(axis=-1)
            used = None if np.all(need[part] == n) else np.arange(n) < need[part, None]
            offsets = (np.arange(len(part)) * n_actions)[:, None]
            counts[part] += np.bincount((picks + offsets).ravel(),
                                        None if used is None else used.ravel(),
                                        minlength=len(part) * n_actions).reshape(
                                            len(part), n_actions)
            if conditional_dof is not None:
                surv = _chosen_survival(out, part, chosen[part], conditional_dof)
                if used is not None:
                    surv *= used
                cond_sum[part] += surv.sum(axis=1)
                cond_sq[part] += np.einsum("rn,rn->r", surv, surv)
        drawn += need
        if target_rse is None:
            break
        if conditional_dof is None:
            hits = counts[rows_all, chosen]
            p = (hits + 1.0) / (drawn + 2.0)
            per_draw = p * (1.0 - p)
        else:
            p = np.maximum(cond_sum / drawn, 1e-300)
            per_draw = np.maximum(cond_sq / drawn - p * p, 0.0) * drawn / np.maximum(drawn - 1, 1)
        want = per_draw / (p * p * target_rse ** 2)
        total = first * 2 ** np.ceil(np.log2(np.clip(want / first, 1.0, 2.0 * max_samples)))
        need = np.minimum(total, max_samples).astype(np.int64) - drawn
        need[want <= drawn] = 0
        if conditional_dof is None:
            hits = counts[rows_all, chosen]
            need[hits == 0] = max_samples - drawn[hits == 0]
        if not need.any():
            break
    smooth = (counts + 1.0) / (drawn[:, None] + 2.0)
    se = np.sqrt(smooth * (1.0 - smooth) / drawn[:, None])
    hits = counts[rows_all, chosen]
    if conditional_dof is None:
        p_chosen = (hits + 1.0) / (drawn + 1.0)
    else:
        p_chosen = np.maximum(cond_sum / drawn, np.finfo(float).tiny)  # never exactly 0
        var = np.maximum(cond_sq / drawn - p_chosen ** 2, 0.0) / np.maximum(drawn - 1, 1)
        se[rows_all, chosen] = np.sqrt(var)
    weights = counts.copy()
    weights[rows_all, chosen] = 0.0
    none = weights.sum(axis=1) == 0  # no other arm drawn (conditional estimator): evenly
    weights[none] = 1.0
    weights[none, chosen[none]] = 0.0
    probs = weights * ((1.0 - p_chosen) / weights.sum(axis=1))[:, None]
    probs[rows_all, chosen] = p_chosen
    return probs, se, drawn


def _chosen_survival(out: tuple[np.ndarray, ...], part: np.ndarray, chosen: np.ndarray,
                     dof: np.ndarray) -> np.ndarray:
    """``P(X_k > max of the other arms' draws)`` per draw ``(len(part), n)``, ``k = chosen``."""
    sampled, loc, scale = out
    shape = sampled.shape
    idx = chosen[:, None, None]
    others = sampled.copy()
    np.put_along_axis(others, idx, -np.inf, axis=-1)
    top = others.max(axis=-1)
    loc_k = np.take_along_axis(np.broadcast_to(loc, shape), idx, axis=-1)[..., 0]
    scale_k = np.take_along_axis(np.broadcast_to(scale, shape), idx, axis=-1)[..., 0]
    dof_k = dof[part, chosen][:, None]
    return t_cdf((loc_k - top) / scale_k, dof_k)  # P(X_k > top) = F((loc - top)/scale)


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


class BatchedAgent:
    """Base class: the agent protocol on top of a batched implementation.

    Subclasses are dataclasses of their hyperparameters and implement :meth:`_setup`,
    :meth:`_act`, :meth:`_update` and :meth:`_probabilities`.

    Attributes:
        supported_envs: env ids this agent runs on; the contract tests use the first one.
    """

    supported_envs: ClassVar[tuple[str, ...]] = GAMBIT_ENVS

    # ------------------------------------------------------------------ protocol
    def reset(self, spec: EnvDescription, seed: int | None = None) -> None:
        """Forget everything and prepare for ``spec`` (one replicate, seeded ``seed``)."""
        self.reset_batch(spec, seed, 1)

    def reset_batch(self, spec: EnvDescription, seed: int | None, replicates: int) -> None:
        """Prepare ``replicates`` independent copies; copy ``r`` behaves as one seeded ``seed+r``.

        Args:
            spec: the env description (the same for every replicate).
            seed: base seed, or None for fresh entropy.
            replicates: R.
        """
        if not isinstance(getattr(spec, "n_actions", None), (int, np.integer)):
            raise ValueError(f"{type(self).__name__}.reset needs the env's description "
                             f"(env.unwrapped.describe()), got {type(spec).__name__}")
        self.spec = spec
        self.replicates = check_positive_int("replicates", replicates)
        self.streams = CounterStreams(replicate_keys(seed, self.replicates))
        self.n_actions = int(spec.n_actions)
        self.t = 0
        self._prop_generator: np.random.Generator | None = None
        self._chosen_at: tuple[int, np.ndarray] | None = None
        self._setup(spec)

    def act(self, obs: Any) -> int:
        """Choose an action for one observation."""
        self._check_reset()
        return int(self.act_batch(np.asarray(obs)[None])[0])

    def update(self, obs: Any, action: int, reward: float, info: dict) -> None:
        """Learn from one step (``info`` is the env's step info)."""
        self._check_reset()
        a = check_index("action", action, self.n_actions)
        r = check_number("reward", reward)
        self.update_batch(np.asarray(obs)[None], np.array([a]), np.array([r]), batch_info(info))

    def action_probabilities(self, obs: Any, n_samples: int = 1000,
                             target_rse: float | None = PROPENSITY_RSE) -> np.ndarray:
        """``(K,)`` probabilities that :meth:`act` picks each action now.

        Args:
            obs: the observation.
            n_samples: the most Monte Carlo draws (agents whose propensities are sampled).
            target_rse: stop drawing once the probability of the action :meth:`act` is about
                to take has a relative standard error below this; None: ``n_samples`` draws.
        """
        self._check_reset()
        return self.action_probabilities_batch(np.asarray(obs)[None], n_samples, target_rse)[0]

    # ------------------------------------------------------------------ batched form
    def act_batch(self, obs: np.ndarray) -> np.ndarray:
        """Actions ``(R,)`` int64 for observations ``(R, ...)``."""
        self._check_reset()
        obs = self._check_obs(obs)
        kept = getattr(self, "_chosen_at", None)
        if kept is not None and kept[0] == self.t and (kept[1] is obs or np.array_equal(
                kept[1], obs)):
            actions = self._chosen  # computed for the propensities: the same function
        else:
            actions = np.asarray(self._act(obs, self.t), dtype=np.int64)
        self._chosen_at = None
        self.t += 1
        return actions

    def update_batch(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                     info: dict[str, Any]) -> None:
        """Learn from one step of every replicate.

        Args:
            obs: observations the actions were taken in, ``(R, ...)``.
            actions: ``(R,)`` ints.
            rewards: ``(R,)`` floats.
            info: the vector env's info (a dict of arrays with leading axis R).
        """
        self._check_reset()
        obs = self._check_obs(obs)
        actions = check_index_array("actions", actions, self.n_actions, (self.replicates,))
        rewards = _check_rewards(rewards, self.replicates)
        self._chosen_at = None  # the state changes: a kept next action would be stale
        self._update(obs, actions, rewards, info)

    def action_probabilities_batch(self, obs: np.ndarray, n_samples: int = 1000,
                                   target_rse: float | None = PROPENSITY_RSE) -> np.ndarray:
        """``(R, K)`` propensities of the next :meth:`act_batch` call (Monte Carlo or exact).

        Sampled propensities draw from their own generators, so computing them never changes
        the decisions. They are made precise where it matters: the action the agent is about
        to take (computed here, as :meth:`act_batch` will, and kept for it) gets a relative
        standard error of at most ``target_rse`` where ``n_samples`` draws allow. Afterwards
        :attr:`propensity_se` ``(R, K)`` holds each probability's standard error (0 where
        exact) and :attr:`propensity_draws` ``(R,)`` the draws made (0 where exact).

        Args:
            obs: observations ``(R, ...)``.
            n_samples: the most Monte Carlo draws per replicate.
            target_rse: the target relative standard error of the chosen action's
                probability; None: ``n_samples`` draws.
        """
        self._check_reset()
        n_samples = check_positive_int("n_samples", n_samples)
        if target_rse is not None:
            check_positive("target_rse", target_rse)
        obs = self._check_obs(obs)
        self._target_rse = target_rse
        self.propensity_se = np.zeros((self.replicates, self.n_actions))
        self.propensity_draws = np.zeros(self.replicates, dtype=np.int64)
        self._chosen: np.ndarray | None = None
        self._obs_for_chosen = obs.copy()
        return self._probabilities(obs, self.t, n_samples)

    def _next_actions(self) -> np.ndarray:
        """The actions :meth:`act_batch` takes next (computed once, kept for it)."""
        if self._chosen is None:
            self._chosen = np.asarray(self._act(self._obs_for_chosen, self.t), dtype=np.int64)
            self._chosen_at = (self.t, self._obs_for_chosen)
        return self._chosen

    def _propensity_generator(self) -> np.random.Generator:
        """The batch's propensity generator (:func:`propensity_generator`), made on first use."""
        if getattr(self, "_prop_generator", None) is None:
            self._prop_generator = propensity_generator(self.streams.keys)
        return self._prop_generator

    def _sampled(self, noise: Any, scores: Any, n_samples: int,
                 conditional_dof: np.ndarray | None = None) -> np.ndarray:
        """Monte Carlo propensities (:func:`sampled_probabilities`); records their SE."""
        probs, se, drawn = sampled_probabilities(noise, scores, self._propensity_generator(),
                                                 self.replicates, self.n_actions, n_samples,
                                                 self._next_actions(), self._target_rse,
                                                 conditional_dof=conditional_dof)
        self.propensity_se, self.propensity_draws = se, drawn
        return probs

    # ------------------------------------------------------------------ helpers
    def _check_reset(self) -> None:
        if not hasattr(self, "streams"):
            raise RuntimeError(f"{type(self).__name__}: call reset(spec, seed) first")

    def _check_obs(self, obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs)
        if obs.ndim == 0 or obs.shape[0] != self.replicates:
            raise ValueError(f"expected a batch of {self.replicates} observations, got shape "
                             f"{obs.shape}")
        space = getattr(self.spec, "observation_space", None)
        shape = getattr(space, "shape", None)
        if shape is not None and (obs.shape[1:] != tuple(shape) or obs.dtype.kind not in "iuf"):
            raise ValueError(f"expected observations of shape {tuple(shape)} (numbers, from the "
                             f"env's observation_space), got {obs.shape[1:]} of dtype "
                             f"{obs.dtype}")
        return obs

    def _setup(self, spec: EnvDescription) -> None:
        raise NotImplementedError

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        raise NotImplementedError

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        raise NotImplementedError

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        raise NotImplementedError


def batch_info(info: dict[str, Any]) -> dict[str, Any]:
    """A single env's step info as a batch of one (the keys agents read)."""
    out: dict[str, Any] = {}
    for key in ("embedding", "regret", "expected_reward", "optimal_action", "reward_observed",
                "reward_step"):
        if key in info:
            out[key] = np.asarray(info[key])[None]
    return out


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


def _check_rewards(rewards: Any, replicates: int) -> np.ndarray:
    """``(R,)`` finite float64 rewards, or a ValueError saying what is wrong."""
    try:
        arr = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"rewards must be {replicates} numbers, got {rewards!r}") from None
    if arr.size != replicates:
        raise ValueError(f"rewards must have shape ({replicates},) (one per replicate), got "
                         f"shape {arr.shape}")
    arr = arr.reshape(replicates)
    if not np.isfinite(arr).all():
        raise ValueError(f"rewards must be finite, got {arr[~np.isfinite(arr)][:5].tolist()}")
    return arr


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    """Raise a ValueError unless ``value`` is a finite number > 0 (or >= 0)."""
    check_number(name, value, minimum=0.0, strict=not allow_zero)


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
