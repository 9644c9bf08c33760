"""Safe-poGAMBITTS: poGAMBITTS under a budget on the rate of unsafe messages delivered.

The constrained benchmark (``GambitIHS-Safe-v0``, docs/safety.md) asks for high reward while
the share of unsafe messages a user receives stays under a budget ε. This agent keeps, per
replicate, a Beta posterior on each prompt's unsafe rate in each context and acts by
poGAMBITTS's Thompson sampling restricted to the allowed prompts:

- a prompt whose upper credible bound (the ``confidence`` quantile of its posterior) is at most
  ε is allowed: it is credibly within the budget;
- a prompt whose posterior *mean* is at most ε but whose bound is not is allowed while the
  replicate has slack: while the unsafe messages it has delivered so far plus this prompt's
  expected one stay within ``ε · (t + 1)``. This spends the budget on learning (a strict
  upper-bound rule never tries a prompt it is unsure of, and so never becomes sure of it)
  without overdrawing it in expectation.

"Send nothing" (action 0 of the Optional envs) is always allowed; where nothing qualifies, the
prompts with the lowest bound are.

Where the rate's evidence comes from:

- **the simulator** (as poGAMBITTS reads its embeddings from it): at reset, ``n_safety_draws``
  messages of every (prompt, context) cell that no user sees are judged by the safety
  classifier (the bank's scores: :meth:`~gambit_gym.envs.dynamics.GambitSimulator.cell_unsafe`),
  each one pseudo-count; None uses every message of the cell;
- **the users' steps**: each step's ``info`` says how many of the messages generated were
  unsafe (``redraws + unsafe`` of ``redraws + 1``; :mod:`gambit_gym.envs.safety`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaincinv

from gambit_gym._validate import check_number, check_positive_int
from gambit_gym.agents._batched import check_positive, gambit_contexts
from gambit_gym.agents.gambitts import POGambitTS
from gambit_gym.core.description import EnvDescription
from gambit_gym.text.contexts import N_CONTEXTS

STREAM_SAFETY = 144  #: the simulator draws of the prior (16 ids, after STREAM_TREAT's)
SCORE_FIX = "score the bank with `gambit-gym score-safety`"


@dataclass(eq=False)
class SafePOGambitTS(POGambitTS):
    """poGAMBITTS restricted to prompts whose unsafe rate is credibly under the budget.

    Args:
        unsafe_budget: ε, the largest unsafe-delivery rate allowed; None reads the env's
            (``EnvDescription.extra["unsafe_budget"]``, set by ``GambitIHS-Safe-v0``).
        confidence: the quantile of the Beta posterior compared with ε (0.9: a prompt is
            allowed while its rate is below ε with posterior probability at least 0.9).
        n_safety_draws: simulator messages per cell judged at reset (None, the default: every
            message of the cell, as poGAMBITTS uses each cell's exact mean embedding; a number
            for a smaller audit, as in the study's database-size experiment).
        prior_unsafe: Beta prior pseudo-count of unsafe messages (Jeffreys: 0.5).
        prior_safe: Beta prior pseudo-count of safe messages.
        **kwargs: poGAMBITTS's (``n_sim_draws``, ``noise``, priors...).
    """

    unsafe_budget: float | None = None
    confidence: float = 0.9
    n_safety_draws: int | None = None
    prior_unsafe: float = 0.5
    prior_safe: float = 0.5

    supported_envs = ("GambitIHS-Safe-v0",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.unsafe_budget is not None:
            budget = check_number("unsafe_budget", self.unsafe_budget, minimum=0.0)
            if budget > 1:
                raise ValueError(f"unsafe_budget is a rate in [0, 1], got {budget!r}")
        confidence = check_number("confidence", self.confidence)
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
        check_positive_int("n_safety_draws", self.n_safety_draws, allow_none=True)
        check_positive("prior_unsafe", self.prior_unsafe)
        check_positive("prior_safe", self.prior_safe)

    def _setup(self, spec: EnvDescription) -> None:
        super()._setup(spec)
        extra = spec.extra or {}
        budget = self.unsafe_budget if self.unsafe_budget is not None \
            else extra.get("unsafe_budget")
        if budget is None:
            raise ValueError("Safe-poGAMBITTS needs a budget: run it on GambitIHS-Safe-v0 (or "
                             "an env with unsafe_budget=), or pass unsafe_budget=")
        self.budget = float(budget)
        k = self.n_actions
        #: actions that generate nothing (never unsafe): "send nothing" of the Optional envs
        self._silent = np.zeros(k, dtype=bool)
        if extra.get("optional"):
            self._silent[0] = True
        shape = (self.replicates, N_CONTEXTS, k)
        self.delivered_unsafe = np.zeros(self.replicates)  # unsafe messages sent so far
        self.n_unsafe = np.full(shape, float(self.prior_unsafe))
        self.n_safe = np.full(shape, float(self.prior_safe))
        sim = spec.simulator
        for a in np.flatnonzero(~self._silent):
            for c in range(N_CONTEXTS):
                flags = sim.cell_unsafe(int(a), c) if hasattr(sim, "cell_unsafe") else None
                if flags is None:
                    raise ValueError(f"Safe-poGAMBITTS needs the bank's safety scores and this "
                                     f"env's bank has none: {SCORE_FIX}")
                flags = np.asarray(flags, dtype=np.float64)
                if self.n_safety_draws is None:
                    seen = np.broadcast_to(flags, (self.replicates, len(flags)))
                else:
                    rows = self.streams.integers(int(a) * N_CONTEXTS + c, STREAM_SAFETY,
                                                 len(flags), (int(self.n_safety_draws),))
                    seen = flags[rows]
                self.n_unsafe[:, c, a] += seen.sum(axis=1)
                self.n_safe[:, c, a] += seen.shape[1] - seen.sum(axis=1)

    def upper_bounds(self, contexts: np.ndarray) -> np.ndarray:
        """The ``confidence`` quantile of each prompt's unsafe rate, ``(R, K)`` (0: silent)."""
        r = np.arange(self.replicates)
        ub = betaincinv(self.n_unsafe[r, contexts], self.n_safe[r, contexts], self.confidence)
        return np.where(self._silent, 0.0, ub)

    def _allowed(self, contexts: np.ndarray) -> np.ndarray:
        ub = self.upper_bounds(contexts)
        r = np.arange(self.replicates)
        a, b = self.n_unsafe[r, contexts], self.n_safe[r, contexts]
        mean = np.where(self._silent, 0.0, a / (a + b))
        # the expected unsafe deliveries, this step included, within the budget so far
        slack = self.delivered_unsafe[:, None] + mean <= self.budget * (self.t + 1)
        ok = (ub <= self.budget) | ((mean <= self.budget) & slack)
        none = ~ok.any(axis=1)
        if none.any():  # nothing credibly safe: the least unsafe prompts
            ok[none] = ub[none] <= ub[none].min(axis=1, keepdims=True)
        return ok

    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        super()._update(obs, actions, rewards, info)
        if "unsafe" not in info:
            raise KeyError(f"Safe-poGAMBITTS.update needs info['unsafe'] (the env's bank has no "
                           f"safety scores: {SCORE_FIX})")
        r = self.replicates
        unsafe = np.asarray(info["unsafe"]).reshape(r).astype(np.float64)
        redraws = np.broadcast_to(np.asarray(info.get("redraws", 0)), (r,)).astype(np.float64)
        generated = ~self._silent[actions]
        contexts = gambit_contexts(obs)
        rows = np.arange(r)
        self.n_unsafe[rows, contexts, actions] += np.where(generated, redraws + unsafe, 0.0)
        self.n_safe[rows, contexts, actions] += np.where(generated, 1.0 - unsafe, 0.0)
        sent = info.get("unsafe_delivered")
        self.delivered_unsafe += np.asarray(sent, dtype=np.float64).reshape(r) \
            if sent is not None else np.where(generated, unsafe, 0.0)
