"""Experiment suites as data: the study's blocks, the two meTS experiments and ``core``.

A suite is a list of :class:`Setting` rows (env id + kwargs, agent + kwargs, and the labels a
figure needs) plus its default replicates, horizon and seed. Everything else is derived from
these rows: the units a sweep runs (:mod:`gambit_gym.bench.units`), the panels and lines of a
figure (:mod:`gambit_gym.bench.plots`) and the leaderboard's rows. Nothing is listed twice.

>>> suite = get("scale_arms")
>>> suite.replicates, suite.horizon
(250, 1000)
>>> sorted({s.panel for s in suite.settings})[:2]
['K=15', 'K=3']
>>> small = suite.narrow(replicates=2, horizon=10, agents=["StdTS"], envs=["GambitIHS-v0"])
>>> len(small.settings), small.horizon  # StdTS, Random and Oracle for each of the 5 K
(15, 10)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from gambit_gym.envs.config import MISSPEC_WORKING_DIMS

#: The study's protocol (``gambitts_study_facts.json``, algorithms.md D.5).
STUDY_REPLICATES = 250
STUDY_HORIZON = 1000
STUDY_LONG_HORIZON = 10_000
STUDY_SEED = 323
#: The study's grids: the numbers of prompts of Fig. 4 and the noise levels of Figs. 5, 6 and 9.
STUDY_N_PROMPTS: tuple[int, ...] = (3, 5, 15, 30, 40)
STUDY_NOISE_LEVELS: tuple[int, ...] = (0, 1, 2, 3, 4)
#: Fig. 3: the working dim the agents see -> its env id (optimism: the correct one).
MISSPEC_ENVS: dict[str, str] = {
    "optimism": "GambitIHS-1D-v0",
    **{dim: f"GambitIHS-Misspec-{dim.capitalize()}-v0" for dim in MISSPEC_WORKING_DIMS}}
#: The meTS experiments (Aouali et al. 2023): n = 5000 rounds; 50 runs in our benchmark script.
METS_HORIZON = 5000
METS_REPLICATES = 50

#: Agents that every suite carries so that scores can be normalised (Random = 0, Oracle = 1).
REFERENCE_AGENTS: tuple[str, ...] = ("Random", "Oracle")
#: The mixed-effect envs publish no oracle table, and their oracle's regret is 0 by definition,
#: so only Random is run there (the scoring takes the oracle's regret as 0 where it has no row).
METS_REFERENCE_AGENTS: tuple[str, ...] = ("Random",)
#: The GAMBITTS comparison of most study blocks.
GAMBITTS_AGENTS: tuple[str, ...] = ("poGAMBITTS", "foGAMBITTS", "ens-poGAMBITTS", "StdTS",
                                    "StdTS-Contextual")
#: Agents that act on the GAMBIT (prompt) envs, for ``core``.
GAMBIT_ENV_AGENTS: tuple[str, ...] = (
    "StdTS", "StdTS-Contextual", "poGAMBITTS", "foGAMBITTS", "ens-poGAMBITTS", "ens-foGAMBITTS",
    "LinTS", "LinUCB", "UCB1", "EpsilonGreedy", "Random", "Oracle", "PPO", "A2C", "DQN",
    "StdTS-Observed", "poGAMBITTS-Observed", "DiscountedTS", "poGAMBITTS-Burden",
    "poGAMBITTS-PCA",
)
#: Agents of the mixed-effect experiments (with the two references), for ``core``.
METS_LINEAR_AGENTS: tuple[str, ...] = ("meTS-Lin", "meTS-Fa", "HierTS", "LinTS-Disjoint",
                                       "LinUCB-Disjoint")
METS_LOGISTIC_AGENTS: tuple[str, ...] = ("meTS-GLM", "meTS-Lin", "HierTS", "GLM-TS", "UCB-GLM")


@dataclass(frozen=True)
class Setting:
    """One cell of a suite's grid: an env configuration and an agent configuration.

    Attributes:
        env_id: a registered environment id.
        agent: a registered agent name or a ``"module:Class"`` path.
        env_kwargs: keyword arguments for ``gym.make``.
        agent_kwargs: keyword arguments for the agent.
        panel: the figure panel this setting is drawn in (e.g. ``"K=15"``).
        label: the line's label within the panel (defaults to the agent).
        tags: free-form tags (``"reference"`` marks Random and Oracle).
    """

    env_id: str
    agent: str
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    agent_kwargs: dict[str, Any] = field(default_factory=dict)
    panel: str = ""
    label: str = ""
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id:
            raise ValueError(f"env_id must be a non-empty string, got {self.env_id!r}")
        if not isinstance(self.agent, str) or not self.agent:
            raise ValueError(f"agent must be a registered name or 'module:Class', got "
                             f"{self.agent!r}")
        for name in ("env_kwargs", "agent_kwargs"):
            value = getattr(self, name)
            if not isinstance(value, dict):
                raise ValueError(f"{name} must be a dict, got {type(value).__name__}")
            try:
                json.dumps(value, sort_keys=True)
            except TypeError as exc:
                raise ValueError(f"{name} must be JSON-serialisable (they key the results "
                                 f"store): {exc}") from None
        if not self.panel:
            object.__setattr__(self, "panel", self.env_id)
        if not self.label:
            object.__setattr__(self, "label", self.agent)

    @property
    def env_key(self) -> str:
        """Canonical text of the env configuration (id + kwargs), a leaderboard column."""
        return config_key(self.env_id, self.env_kwargs)

    @property
    def agent_key(self) -> str:
        """Canonical text of the agent configuration (name + kwargs), a leaderboard row."""
        return config_key(self.agent, self.agent_kwargs)


def config_key(name: str, kwargs: dict[str, Any]) -> str:
    """``name`` or ``name{"k": v}`` with sorted, compact JSON kwargs."""
    if not kwargs:
        return name
    return name + json.dumps(kwargs, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class Suite:
    """A named grid of settings with the protocol it is run under.

    Attributes:
        name: the suite's name (``gambit-gym bench --suite NAME``).
        description: what the suite reproduces.
        settings: the grid.
        replicates: Monte Carlo replicates R per setting.
        horizon: steps T per replicate.
        seed: base seed; replicate ``r`` of every setting uses ``seed + r`` (common random
            numbers across agents).
    """

    name: str
    description: str
    settings: tuple[Setting, ...]
    replicates: int = STUDY_REPLICATES
    horizon: int = STUDY_HORIZON
    seed: int = STUDY_SEED

    def __post_init__(self) -> None:
        for attr in ("replicates", "horizon"):
            value = getattr(self, attr)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{attr} must be a positive integer, got {value!r}")
        if not self.settings:
            raise ValueError(f"suite {self.name!r} has no settings left (check --agents/--envs)")
        keys = [(s.env_key, s.agent_key) for s in self.settings]
        if len(set(keys)) != len(keys):
            raise ValueError(f"suite {self.name!r} lists the same (env, agent) setting twice")

    @property
    def agents(self) -> list[str]:
        """Distinct agents, in order of appearance."""
        return list(dict.fromkeys(s.agent for s in self.settings))

    @property
    def env_ids(self) -> list[str]:
        """Distinct env ids, in order of appearance."""
        return list(dict.fromkeys(s.env_id for s in self.settings))

    def narrow(self, *, replicates: int | None = None, horizon: int | None = None,
               agents: Sequence[str] | None = None, envs: Sequence[str] | None = None,
               seed: int | None = None, references: bool = True) -> Suite:
        """A copy with fewer replicates, another horizon, or only some agents / env ids.

        Args:
            replicates: R.
            horizon: T.
            agents: keep only these agents, and the reference agents (Random, Oracle) unless
                ``references`` is False: scores are normalised by them.
            envs: keep only these env ids.
            seed: base seed.
            references: keep the reference agents; False drops those not named in ``agents``.

        Raises:
            ValueError: an agent or env id that the suite does not contain.
        """
        settings = self.settings
        if agents:
            _check_subset("agent", agents, self.agents, self.name)
        named = set(agents or ())

        def kept(s: Setting) -> bool:
            if "reference" in s.tags and s.agent not in named:
                return references
            return not named or s.agent in named

        settings = tuple(s for s in settings if kept(s))
        if envs:
            _check_subset("env id", envs, self.env_ids, self.name)
            settings = tuple(s for s in settings if s.env_id in set(envs))
        horizon = self.horizon if horizon is None else horizon
        if horizon != self.horizon:
            settings = tuple(_with_horizon(s, horizon) for s in settings)
        return replace(self, settings=settings,
                       replicates=self.replicates if replicates is None else replicates,
                       horizon=horizon, seed=self.seed if seed is None else seed)

    def with_agent(self, agent: str | type, agent_kwargs: dict[str, Any] | None = None,
                   label: str | None = None) -> Suite:
        """A copy with a user's agent added beside the suite's agents, on every env config.

        Args:
            agent: a registered name, a ``"module:Class"`` path, or a class defined at a
                module's top level. A class in the script you run (``__main__``) works with the
                serial and local executors (spawned workers import the script again, so keep
                the sweep under ``if __name__ == "__main__":``), not with Ray.
            agent_kwargs: the agent's kwargs.
            label: its line label in figures (default: the agent and its kwargs, readable).

        Raises:
            ValueError: the agent is not importable by name.
        """
        agent = agent_ref(agent)
        from gambit_gym.agents import resolve

        resolve(agent)  # fail now, with the registry's message, not in a worker
        seen: dict[str, Setting] = {}
        for s in self.settings:
            seen.setdefault(s.env_key, s)
        extra = tuple(Setting(env_id=s.env_id, env_kwargs=dict(s.env_kwargs), agent=agent,
                              agent_kwargs=dict(agent_kwargs or {}), panel=s.panel,
                              label=label or _line_label(agent, agent_kwargs or {}),
                              tags=("user",))
                      for s in seen.values())
        return replace(self, settings=self.settings + extra)

    def with_env_kwargs(self, extra: dict[str, Any]) -> Suite:
        """A copy with ``extra`` merged into every setting's env kwargs (e.g. a bank file)."""
        if not extra:
            return self
        return replace(self, settings=tuple(replace(s, env_kwargs={**s.env_kwargs, **extra})
                                            for s in self.settings))


def _line_label(agent: str, agent_kwargs: dict[str, Any]) -> str:
    """A user agent's figure label: its name and kwargs, readable (``LinTS (alpha = 2)``)."""
    from gambit_gym.bench.labels import config_label

    return config_label(config_key(agent, agent_kwargs))


def agent_ref(agent: str | type | Any) -> str:
    """A registered name or ``module:Class`` path for an agent given as a name or a class."""
    if isinstance(agent, str):
        return agent
    module, qualname = getattr(agent, "__module__", None), getattr(agent, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        raise ValueError(f"agent {agent!r} must be a class importable as 'module:Class' "
                         "(defined at a module's top level, not inside a function) so that "
                         "worker processes can build it")
    return f"{module}:{qualname}"


def _with_horizon(s: Setting, horizon: int) -> Setting:
    if "horizon" in s.env_kwargs:
        return replace(s, env_kwargs={**s.env_kwargs, "horizon": horizon})
    return s


def _check_subset(what: str, asked: Iterable[str], have: list[str], suite: str) -> None:
    missing = [a for a in asked if a not in have]
    if missing:
        raise ValueError(f"suite {suite!r} has no {what} {', '.join(map(repr, missing))}; "
                         f"it has: {', '.join(have)}")


# ----------------------------------------------------------------------------- builders
def _grid(env_rows: Iterable[tuple[str, dict[str, Any], str]], agents: Iterable[str],
          *, references: Sequence[str] = REFERENCE_AGENTS) -> tuple[Setting, ...]:
    """Every agent on every ``(env_id, env_kwargs, panel)`` row, plus the reference agents."""
    agent_list = list(dict.fromkeys(list(agents) + list(references)))
    return tuple(
        Setting(env_id=env_id, env_kwargs=dict(kw), agent=agent, panel=panel,
                tags=("reference",) if agent in REFERENCE_AGENTS else ())
        for env_id, kw, panel in env_rows for agent in agent_list
    )


def _one_d() -> Suite:
    return Suite("one_d", "1-D optimism outcome: GAMBITTS agents vs StdTS and contextual StdTS "
                 "(study Figure 2)", _grid([("GambitIHS-1D-v0", {}, "1-D optimism")],
                                           GAMBITTS_AGENTS))


def _misspecification() -> Suite:
    rows = [(env_id, {}, "working: optimism (correct)" if dim == "optimism"
             else f"working: {dim}") for dim, env_id in MISSPEC_ENVS.items()]
    return Suite("misspecification", "1-D optimism outcome; the agents see one working "
                 "dimension (study Figure 3)",
                 _grid(rows, ("poGAMBITTS", "foGAMBITTS", "ens-poGAMBITTS", "StdTS-Contextual")))


def _scale_arms() -> Suite:
    rows = [("GambitIHS-v0", {"n_prompts": k}, f"K={k}") for k in STUDY_N_PROMPTS]
    return Suite("scale_arms", "3-D linear env with K in {3, 5, 15, 30, 40} prompts "
                 "(study Figure 4)", _grid(rows, GAMBITTS_AGENTS))


def _var_decomp(name: str, env_id: str, figure: int, agents: Sequence[str]) -> Suite:
    rows = [(env_id, {"noise_level": level}, f"noise level {level}")
            for level in STUDY_NOISE_LEVELS]
    kind = "linear" if "MLP" not in env_id else "MLP (nonlinear)"
    return Suite(name, f"3-D {kind} outcome at the study's noise levels 0..4 "
                 f"(study Figure {figure})", _grid(rows, agents))


def _db_access() -> Suite:
    draws: list[int | None] = [15, 50, 100, 500, None]
    settings = tuple(
        Setting(env_id="GambitIHS-v0", agent="poGAMBITTS",
                agent_kwargs={} if n is None else {"n_sim_draws": n}, panel="simulator draws",
                label=f"poGAMBITTS ({'all' if n is None else n} draws)")
        for n in draws
    ) + _grid([("GambitIHS-v0", {}, "simulator draws")], ("StdTS-Contextual",))
    return Suite("db_access", "poGAMBITTS with 15, 50, 100, 500 or all simulator draws per "
                 "(prompt, context) cell (study Figure 7)", settings)


def _scale_dimensions() -> Suite:
    rows = [("GambitIHS-v0", {}, "d=3")] + [
        (f"GambitIHS-{d}D-v0", {}, f"d={d}") for d in (5, 10, 15, 20)]
    return Suite("scale_dimensions", "linear outcome on d in {3, 5, 10, 15, 20} style "
                 "dimensions (study Figure 8)", _grid(rows, GAMBITTS_AGENTS))


def _fogambitts_arms() -> Suite:
    rows = [("GambitIHS-v0", {"n_prompts": 3, "noise_level": level}, f"noise level {level}")
            for level in STUDY_NOISE_LEVELS]
    return Suite("fogambitts_arms", "foGAMBITTS vs contextual and plain StdTS, K=3, T=10,000, "
                 "growing noise (study Figure 9)",
                 _grid(rows, ("foGAMBITTS", "StdTS-Contextual", "StdTS")),
                 horizon=STUDY_LONG_HORIZON)


def _covariates() -> Suite:
    return Suite("covariates", "3-D linear outcome with location and step-bucket terms",
                 _grid([("GambitIHS-Covariates-v0", {}, "covariates")],
                       GAMBITTS_AGENTS + ("LinTS",)))


def _mets(name: str, env_id: str, agents: Sequence[str]) -> Suite:
    return Suite(name, f"{env_id}: meTS against its hierarchical and disjoint baselines "
                 "(Aouali et al. 2023), n=5000 rounds",
                 _grid([(env_id, {}, env_id)], agents, references=METS_REFERENCE_AGENTS),
                 replicates=METS_REPLICATES, horizon=METS_HORIZON)


#: The non-stationary user ids of ``beyond`` (gambit_gym.envs.user_dynamics), the stationary id
#: they depart from, and the ids whose agents are not told which style dims matter (all 20
#: scores; 32 principal components of the MiniLM sentence vector; the whole 384-d vector).
BEYOND_ENVS: tuple[str, ...] = ("GambitIHS-v0", "GambitIHS-Habituation-v0",
                                "GambitIHS-Disengage-v0", "GambitIHS-Missing-v0",
                                "GambitIHS-Delayed-v0", "GambitIHS-Drift-v0",
                                "GambitIHS-ChangePoint-v0", "GambitIHS-3of20-v0",
                                "GambitIHS-MiniLM-PCA32-v0", "GambitIHS-MiniLM-v0")
#: The study's agents (the ensemble's run time left out) and the agents that cope.
BEYOND_AGENTS: tuple[str, ...] = ("poGAMBITTS", "foGAMBITTS", "StdTS", "StdTS-Contextual",
                                  "StdTS-Observed", "poGAMBITTS-Observed", "DiscountedTS",
                                  "poGAMBITTS-Burden", "poGAMBITTS-PCA")
BEYOND_REPLICATES = 20
#: foGAMBITTS keeps a d x d Normal-Inverse-Wishart scale per (replicate, context, prompt):
#: 70 MB per replicate at d = 384, so it is not run on the full vector.
BEYOND_WIDE = {"GambitIHS-MiniLM-v0": ("foGAMBITTS",)}
# Only Random is run as a reference: the Oracle agent plays the stationary oracle table, which
# is not the oracle of a habituating or drifting user; the scoring takes the oracle's regret as
# 0, which is exactly the regret of the env's one-step greedy oracle with the true state.


def _beyond() -> Suite:
    settings = sum((_grid([(e, {}, e)], [a for a in BEYOND_AGENTS
                                          if a not in BEYOND_WIDE.get(e, ())],
                          references=METS_REFERENCE_AGENTS) for e in BEYOND_ENVS), ())
    return Suite("beyond", "non-stationary users (habituation, disengagement, missing and "
                 "delayed rewards, drift, a change point) and unknown relevant dims (up to the "
                 "full MiniLM sentence vector) x the study's agents and the agents that cope "
                 "(docs/user_dynamics.md)", settings, replicates=BEYOND_REPLICATES)


#: The constrained benchmark (docs/safety.md): the safe agent beside the unconstrained ones.
SAFE_AGENTS: tuple[str, ...] = ("Safe-poGAMBITTS", "poGAMBITTS", "StdTS-Contextual", "StdTS")
SAFE_REPLICATES = 20


def _safe() -> Suite:
    rows = [("GambitIHS-Safe-v0", {}, "no filter: the agent keeps to the budget"),
            ("GambitIHS-Safe-v0", {"safety_filter": "block"},
             "filter: unsafe messages blocked")]
    settings = _grid(rows[:1], SAFE_AGENTS) + _grid(rows[1:], ("poGAMBITTS",
                                                                "StdTS-Contextual"))
    return Suite("safe", "reward with a budget on the unsafe-delivery rate (GambitIHS-Safe-v0): "
                 "regret and constraint violation per agent; a safety filter beside it "
                 "(docs/safety.md)", settings, replicates=SAFE_REPLICATES)


#: Representative envs of ``core`` (the leaderboard's columns).
CORE_GAMBIT_ENVS: tuple[str, ...] = ("GambitIHS-v0", "GambitIHS-1D-v0", "GambitIHS-MLP-v0",
                                     "GambitIHS-Covariates-v0", "GambitIHS-Misspec-Severity-v0",
                                     "GambitIHS-20D-v0")


def _core() -> Suite:
    gambit = _grid([(e, {}, e) for e in CORE_GAMBIT_ENVS], GAMBIT_ENV_AGENTS)
    mets = (_grid([("MixedEffectLinear-v0", {}, "MixedEffectLinear-v0")], METS_LINEAR_AGENTS,
                  references=METS_REFERENCE_AGENTS)
            + _grid([("MixedEffectLogistic-v0", {}, "MixedEffectLogistic-v0")],
                    METS_LOGISTIC_AGENTS, references=METS_REFERENCE_AGENTS))
    # the safe agent needs a budget: it runs (beside the others) on the constrained env
    safe = _grid([("GambitIHS-Safe-v0", {}, "GambitIHS-Safe-v0")], SAFE_AGENTS)
    return Suite("core", "every registered agent on a representative set of envs (the "
                 "leaderboard)", gambit + mets + safe)


#: The suites by name: one builder each, evaluated on demand.
SUITES: dict[str, Callable[[], Suite]] = {
    "one_d": _one_d,
    "misspecification": _misspecification,
    "scale_arms": _scale_arms,
    "var_decomp_linear": lambda: _var_decomp("var_decomp_linear", "GambitIHS-v0", 5,
                                             GAMBITTS_AGENTS),
    "var_decomp_nonlinear": lambda: _var_decomp("var_decomp_nonlinear", "GambitIHS-MLP-v0", 6,
                                                GAMBITTS_AGENTS + ("ens-foGAMBITTS",)),
    "db_access": _db_access,
    "scale_dimensions": _scale_dimensions,
    "fogambitts_arms": _fogambitts_arms,
    "covariates": _covariates,
    "mets_linear": lambda: _mets("mets_linear", "MixedEffectLinear-v0", METS_LINEAR_AGENTS),
    "mets_logistic": lambda: _mets("mets_logistic", "MixedEffectLogistic-v0",
                                   METS_LOGISTIC_AGENTS),
    "core": _core,
    "beyond": _beyond,
    "safe": _safe,
}

#: The study's experiment blocks, in the order of its figures.
STUDY_BLOCKS: tuple[str, ...] = ("one_d", "misspecification", "scale_arms", "var_decomp_linear",
                                 "var_decomp_nonlinear", "db_access", "scale_dimensions",
                                 "fogambitts_arms", "covariates")


def names() -> list[str]:
    """Suite names, in definition order."""
    return list(SUITES)


def get(name: str) -> Suite:
    """The suite called ``name``.

    Raises:
        KeyError: an unknown name (the message lists the valid ones).
    """
    if name not in SUITES:
        raise KeyError(f"unknown suite {name!r}; suites: {', '.join(SUITES)}")
    return SUITES[name]()
