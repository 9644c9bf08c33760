"""poGAMBITTS for a population of users: pooled, mixed-effect or independent reward models.

All three are Thompson sampling on a Bayesian linear reward model of the message's working
embedding, with each prompt's expected embedding read from the simulator (poGAMBITTS). What
differs is how users share it (``pooling``):

- ``"pooled"``: one model for everyone, ``y = φ(c, z)ᵀβ + ε``. Learns fastest from N users;
  biased when users differ.
- ``"mixed"``: the pooled model plus per-user random slopes on the embedding,
  ``y = φ(c, z)ᵀβ + z̃ᵀb_u + ε`` with ``b_u ~ N(0, τ² I)`` — the mixed-effect model of the
  population env. Borrows strength early, converges to each user's own optimum.
- ``"independent"``: one model per user, ``y = φ(c, z)ᵀβ_u + ε``, the same prior for each.

``φ(c, z) = [z̃, location one-hot, step-bucket one-hot, 1]`` with ``z̃`` the working embedding
standardised over the arms' bank cells (from the simulator, so priors are on a fixed scale).
The joint posterior over all coefficients is Gaussian with the noise sd known (the env's, or
given); each acting user draws their own sample from it at every decision.

The population protocol (what :func:`gambit_gym.bench.population.run_population` calls):
``reset(spec, agents, seed)``, ``act(observations) -> actions``, ``update(observations,
actions, rewards, infos)``, all dicts keyed by agent name. :class:`IndependentAgents` gives any
single-user agent (``StdTS``, ``poGAMBITTS``, …) that protocol, one copy per user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from gambit_gym._validate import check_number
from gambit_gym.core.description import EnvDescription
from gambit_gym.text.contexts import LOCATIONS, N_CONTEXTS, STEP_BUCKETS, context_ids

POOLINGS: tuple[str, ...] = ("pooled", "mixed", "independent")
_N_CTX_FEATURES = len(LOCATIONS) + len(STEP_BUCKETS)


def _context_one_hots() -> np.ndarray:
    out = np.zeros((N_CONTEXTS, _N_CTX_FEATURES))
    for c in range(N_CONTEXTS):
        loc, bucket = divmod(c, len(STEP_BUCKETS))
        out[c, loc] = 1.0
        out[c, len(LOCATIONS) + bucket] = 1.0
    return out


_ONE_HOTS = _context_one_hots()


@dataclass(eq=False)
class PopulationGambitTS:
    """poGAMBITTS over a population of users (see the module docstring).

    Args:
        pooling: ``"pooled"``, ``"mixed"`` or ``"independent"``.
        random_effect_sd: τ, the prior sd of each user's deviation in the embedding
            coefficients (``"mixed"``), on the standardised-embedding scale.
        prior_precision: prior precision of the embedding and context coefficients (mean 0).
        intercept_mean: prior mean of the intercept (the study's 77).
        intercept_precision: its prior precision (the study's 0.01).
        noise: ``"env"`` (the env's published noise sd) or a noise sd > 0.
        min_noise_sd: floor on the noise sd (a noiseless env would make the posterior exact
            after one step).
    """

    pooling: str = "pooled"
    random_effect_sd: float = 0.5
    prior_precision: float = 1.0
    intercept_mean: float = 77.0
    intercept_precision: float = 0.01
    noise: str | float = "env"
    min_noise_sd: float = 0.05
    _state: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        for name in ("random_effect_sd", "prior_precision", "intercept_precision",
                     "min_noise_sd"):
            check_number(name, getattr(self, name), minimum=0.0, strict=True)
        if isinstance(self.noise, str):
            if self.noise != "env":
                raise ValueError(f"noise must be 'env' or a noise sd > 0, got {self.noise!r}")
        else:
            check_number("noise", self.noise, minimum=0.0, strict=True)

    # ------------------------------------------------------------------ protocol
    def reset(self, spec: EnvDescription, agents: Sequence[str], seed: int | None = None) -> None:
        """Forget everything; prepare for users ``agents`` of the env described by ``spec``."""
        sim = spec.simulator
        if sim is None or not hasattr(sim, "mean_embedding_table"):
            raise ValueError("PopulationGambitTS needs simulator access (spec.simulator with "
                             "mean_embedding_table and cell_embeddings)")
        if spec.n_contexts != N_CONTEXTS:
            raise ValueError(f"PopulationGambitTS needs the 12 IHS contexts, got "
                             f"{spec.n_contexts}")
        if self.noise == "env":
            if spec.noise_sd is None:
                raise ValueError("noise='env' but the env publishes no noise_sd; pass noise=")
            sd = float(spec.noise_sd)
        else:
            sd = float(self.noise)
        table = np.asarray(sim.mean_embedding_table, dtype=np.float64)  # (12, K, d)
        cells = np.concatenate([np.asarray(sim.cell_embeddings(a, c), dtype=np.float64)
                                for a in range(table.shape[1]) for c in range(N_CONTEXTS)])
        mean, scale = cells.mean(axis=0), cells.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        users = list(agents)
        d = table.shape[2]
        p = d + _N_CTX_FEATURES + 1
        n = len(users)
        phi_mu = np.zeros(p)
        phi_mu[-1] = self.intercept_mean
        phi_prec = np.full(p, self.prior_precision)
        phi_prec[-1] = self.intercept_precision
        if self.pooling == "pooled":
            mu0, prec0 = phi_mu, phi_prec
        elif self.pooling == "mixed":
            mu0 = np.concatenate([phi_mu, np.zeros(n * d)])
            prec0 = np.concatenate([phi_prec, np.full(n * d, self.random_effect_sd ** -2)])
        else:
            mu0, prec0 = np.tile(phi_mu, n), np.tile(phi_prec, n)
        self._state = {
            "rng": np.random.default_rng(seed), "users": {u: i for i, u in enumerate(users)},
            "mean": mean, "scale": scale, "zbar": (table - mean) / scale, "d": d, "p": p,
            "n": n, "noise_var": max(sd, self.min_noise_sd) ** 2,
            "precision": np.diag(prec0), "eta": prec0 * mu0, "k": table.shape[1],
        }

    def act(self, observations: dict[str, Any]) -> dict[str, int]:
        """A Thompson-sampled prompt for each user in ``observations``."""
        st = self._require_state()
        names = list(observations)
        if not names:
            return {}
        users = self._user_index(names)
        contexts = context_ids(np.stack([np.asarray(observations[a]) for a in names]))
        chol = cho_factor(st["precision"], lower=False)
        mean = cho_solve(chol, st["eta"])
        cov = cho_solve(chol, np.eye(mean.size))
        root = np.linalg.cholesky((cov + cov.T) / 2)
        eps = st["rng"].standard_normal((len(names), mean.size))
        theta = mean + eps @ root.T  # (m, P), each row ~ N(μ, Λ⁻¹)
        feats = self._features(users[:, None], contexts[:, None],
                               st["zbar"][contexts])  # (m, K, P)
        scores = np.einsum("mkp,mp->mk", feats, theta)
        return {a: int(scores[j].argmax()) for j, a in enumerate(names)}

    def update(self, observations: dict[str, Any], actions: dict[str, int],
               rewards: dict[str, float], infos: dict[str, dict[str, Any]]) -> None:
        """Add each acting user's (context, received embedding, reward) to the posterior."""
        st = self._require_state()
        names = [a for a in actions if a in rewards and "embedding" in infos.get(a, {})]
        if not names:
            return
        users = self._user_index(names)
        contexts = context_ids(np.stack([np.asarray(observations[a]) for a in names]))
        z = np.stack([np.asarray(infos[a]["embedding"], dtype=np.float64) for a in names])
        x = self._features(users, contexts, (z - st["mean"]) / st["scale"])  # (m, P)
        y = np.array([float(rewards[a]) for a in names])
        st["precision"] += x.T @ x / st["noise_var"]
        st["eta"] += x.T @ y / st["noise_var"]

    def posterior_mean(self) -> np.ndarray:
        """The posterior mean of all coefficients, ``(P,)`` (for inspection and tests)."""
        st = self._require_state()
        return cho_solve(cho_factor(st["precision"]), st["eta"])

    # ------------------------------------------------------------------ internals
    def _require_state(self) -> dict[str, Any]:
        if not self._state:
            raise RuntimeError("call reset(spec, agents, seed) before act/update")
        return self._state

    def _user_index(self, names: Sequence[str]) -> np.ndarray:
        index = self._state["users"]
        unknown = [a for a in names if a not in index]
        if unknown:
            raise KeyError(f"users {unknown} were not passed to reset(); known: {list(index)}")
        return np.array([index[a] for a in names], dtype=np.int64)

    def _features(self, users: np.ndarray, contexts: np.ndarray, zt: np.ndarray) -> np.ndarray:
        """Joint design rows ``(..., P)`` of standardised embeddings ``zt`` ``(..., d)``.

        ``users`` and ``contexts`` broadcast against ``zt.shape[:-1]``.
        """
        st = self._state
        shape = zt.shape[:-1]
        users = np.broadcast_to(users, shape)
        one_hot = np.broadcast_to(_ONE_HOTS[np.broadcast_to(contexts, shape)],
                                  (*shape, _N_CTX_FEATURES))
        phi = np.concatenate([zt, one_hot, np.ones((*shape, 1))], axis=-1)  # (..., p)
        if self.pooling == "pooled":
            return phi
        n = st["n"]
        block = zt if self.pooling == "mixed" else phi  # what user u's own block holds
        rows = int(np.prod(shape, dtype=np.int64))
        out = np.zeros((rows, n, block.shape[-1]))
        out[np.arange(rows), users.reshape(-1)] = block.reshape(rows, -1)
        out = out.reshape(*shape, n * block.shape[-1])
        return np.concatenate([phi, out], axis=-1) if self.pooling == "mixed" else out


class IndependentAgents:
    """One copy of a single-user agent per user, in the population protocol.

    Args:
        agent: a registered agent name, a ``"module:Class"`` path, a class or a factory.
        **kwargs: the agent's constructor kwargs.

    User ``i`` of a population reset with ``seed`` gets seed ``seed * 100_003 + i`` (or None),
    so users' randomisation is independent and reproducible.
    """

    def __init__(self, agent: str | Callable[..., Any], **kwargs: Any) -> None:
        from gambit_gym.agents.base import resolve

        self.factory = resolve(agent)
        self.name = agent if isinstance(agent, str) else getattr(agent, "__name__", str(agent))
        self.kwargs = kwargs
        self.agents: dict[str, Any] = {}

    def reset(self, spec: EnvDescription, agents: Sequence[str], seed: int | None = None) -> None:
        """A fresh agent per user, each reset with its own seed."""
        self.agents = {}
        for i, name in enumerate(agents):
            agent = self.factory(**self.kwargs)
            agent.reset(spec, None if seed is None else int(seed) * 100_003 + i)
            self.agents[name] = agent

    def act(self, observations: dict[str, Any]) -> dict[str, int]:
        """Each user's own agent acts on their observation."""
        return {a: int(self.agents[a].act(obs)) for a, obs in observations.items()}

    def update(self, observations: dict[str, Any], actions: dict[str, int],
               rewards: dict[str, float], infos: dict[str, dict[str, Any]]) -> None:
        """Each user's own agent learns from their own step."""
        for a, action in actions.items():
            if a in rewards:
                self.agents[a].update(observations[a], action, rewards[a], infos[a])
