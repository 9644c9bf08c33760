"""The runner's propensity log: the chosen actions' probabilities and their standard errors.

It asks each agent for its action probabilities, keeps the chosen arm's, and summarises the
Monte Carlo standard errors for the run's metadata.

Why a separate module: agents differ in what they can report (the built-in agents take a target
relative standard error and say what they achieved; a user's agent may only have
``action_probabilities(obs, n_samples)``), and the runner's loop should not care.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np


def accepts_target_rse(method: Any) -> bool:
    """Whether an agent's probabilities method takes ``target_rse`` (the built-in ones do)."""
    try:
        return "target_rse" in inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False


class PropensityLog:
    """Propensities of the chosen actions ``(R, T)``, with the standard error of each estimate.

    Args:
        replicates: R.
        horizon: T.
        n_samples: the most Monte Carlo draws per decision.
        target_rse: the target relative standard error (SE / p) of the chosen action's
            probability, passed to agents that take one (None: they draw
            ``n_samples`` each time).
    """

    def __init__(self, replicates: int, horizon: int, n_samples: int,
                 target_rse: float | None) -> None:
        self.n_samples = n_samples
        self.target_rse = target_rse
        self.values = np.zeros((replicates, horizon))
        self.se = np.full((replicates, horizon), np.nan)  # NaN: the agent reports none
        self.draws = np.full((replicates, horizon), -1, dtype=np.int64)
        self._accepts: dict[Any, bool] = {}

    def _kwargs(self, method: Any) -> dict[str, Any]:
        # inspect.signature costs about 0.2 ms, paid every step: asked once per function
        func = getattr(method, "__func__", method)
        known = self._accepts.get(func)
        if known is None:
            known = self._accepts[func] = accepts_target_rse(method)
        return {"target_rse": self.target_rse} if known else {}

    def batch(self, agent: Any, obs: np.ndarray) -> np.ndarray:
        """``(R, K)`` probabilities from a batched agent (or single agents behind one)."""
        method = agent.action_probabilities_batch
        return np.asarray(method(obs, self.n_samples, **self._kwargs(method)))

    def record(self, t: int, rows: np.ndarray | int, probs: np.ndarray, actions: np.ndarray,
               agent: Any) -> None:
        """Store the chosen actions' probabilities at step ``t`` for replicates ``rows``.

        ``probs`` is ``(len(rows), K)`` (or ``(K,)`` for one replicate), ``actions`` the
        actions taken; the agent's ``propensity_se`` / ``propensity_draws``, where it has
        them, are those of the same call.
        """
        rows = np.atleast_1d(rows)
        probs = np.atleast_2d(probs)
        actions = np.atleast_1d(actions)
        picked = np.arange(len(rows))
        self.values[rows, t] = probs[picked, actions]
        se = getattr(agent, "propensity_se", None)
        if se is not None:
            self.se[rows, t] = np.atleast_2d(se)[picked, actions]
            self.draws[rows, t] = np.atleast_1d(agent.propensity_draws)

    def summary(self) -> dict[str, Any]:
        """What the run's metadata says about the propensities' precision."""
        out: dict[str, Any] = {"max_samples": self.n_samples, "target_rse": self.target_rse}
        known = ~np.isnan(self.se)
        if known.any():
            se = self.se[known]
            draws = self.draws[known]
            values = self.values[known]
            rse = se[values > 0] / values[values > 0]
            out.update(mean_se=float(se.mean()), max_se=float(se.max()),
                       mean_rse=float(rse.mean()) if len(rse) else None,
                       median_rse=float(np.median(rse)) if len(rse) else None,
                       zero_share=float((values == 0).mean()),
                       mean_draws=float(draws.mean()), max_draws=int(draws.max()),
                       exact_share=float((draws == 0).mean()))
        return out
