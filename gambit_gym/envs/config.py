"""Configuration of a GAMBIT environment: one frozen dataclass, and the named presets.

Every registered ``GambitIHS-*`` id is a preset (the outcome model, its dims, the working dims)
plus the kwargs a user may change: ``noise_level`` or ``noise_sd``, ``n_prompts`` or
``prompt_ids``, ``horizon``, ``bank``, ``center_rewards`` (and ``no_message_reward`` for the
optional-message env, ``generator`` / ``embedder`` for the live env), and the user dynamics
(``habituation``, ``disengagement``, ``missing_rate``, ``reward_delay``, ``drift_sd``,
``change_point`` and their parameters; :mod:`gambit_gym.envs.user_dynamics`),
``embedding``: what ``info["embedding"]`` holds (the named style scores, or the message's full
MiniLM sentence vector or its PCA; :mod:`gambit_gym.text.sentence_vectors`), and the safety
filter and the cost model (``safety_filter``, ``max_redraws``, ``unsafe_budget``,
``cost_model``; :mod:`gambit_gym.envs.safety`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from gambit_gym._validate import (
    check_index,
    check_index_sequence,
    check_number,
    check_positive_int,
    unexpected_kwargs_error,
)
from gambit_gym.envs.safety import CostModel, check_categories, check_filter, cost_model_from
from gambit_gym.envs.study import dimension_subset
from gambit_gym.envs.study import outcome_facts as _facts
from gambit_gym.envs.user_dynamics import DYNAMICS_KWARGS, UserDynamics, dynamics_from
from gambit_gym.text.sentence_vectors import parse_embedding

MLP_NOISE_LADDER: tuple[float, ...] = tuple(
    np.linspace(_facts("3d")["noise_sd_ladder"][0], _facts("mlp")[
        "noise_sd_ladder_top"], 5).tolist()
)


@dataclass(frozen=True)
class GambitConfig:
    """A GAMBIT environment's configuration, validated on construction.

    Attributes:
        preset: the named configuration this came from.
        outcome: ``"linear"`` or ``"mlp"``.
        outcome_facts: the study model whose intercept/coefficients are used.
        true_dims: dims the reward is computed from.
        working_dims: dims carried in ``info["embedding"]`` (equal to ``true_dims`` unless the
            env is misspecified).
        covariates: whether the outcome has the study's location and step-bucket terms.
        noise_ladder: the study's noise sds for levels 0..4 (level 0 also calibrates the model).
        noise_level: index into ``noise_ladder``.
        noise_sd: explicit noise sd, overriding ``noise_level``.
        n_prompts: K, the number of prompts offered.
        prompt_ids: explicit prompt ids (overrides ``n_prompts``).
        horizon: steps per episode.
        bank: response bank file; None for the shipped bank.
        optional: whether action 0 means "send no message".
        no_message_reward: for optional envs, the expected reward of sending nothing: "median",
            "min" or "max" of the arms' expected rewards in that context, or a number.
        live: whether each step calls a generator and an embedder instead of the bank.
        mlp_seed: seed of the MLP outcome's fixed weights.
        center_rewards: subtract one constant from every reward (and every expected reward in
            ``info`` and the oracle): the mean expected reward over the 12 contexts and the
            actions. Regret and the order of the arms are unchanged; rewards sit near 0 instead
            of near 83, which learners that start their estimates at 0 need (see the README,
            "Using off-the-shelf learners").
        embedding: what ``info["embedding"]`` holds: ``"scores"`` (default: the working dims'
            named style scores), ``"minilm384"`` (the message's unit-length 384-d MiniLM
            sentence vector, which the named scores are linear projections of) or ``"pca:k"``
            (its first k principal components over the bank, each scaled to unit sd, k <= 32).
            The reward always comes from ``true_dims``; the agent is not told which directions
            of the vector matter (:mod:`gambit_gym.text.sentence_vectors`).
        safety_filter: None, ``"block"`` or ``"redraw"`` (:mod:`gambit_gym.envs.safety`).
        max_redraws: N, the redraws of ``"redraw"`` before it blocks.
        unsafe_budget: the largest unsafe-delivery rate the oracle's prompts may have (None:
            unconstrained); ``GambitIHS-Safe-v0`` sets it.
        cost_model: prices and latencies of generation (:class:`~.safety.CostModel`).
        unsafe_categories: the safety categories that make a message unsafe (None: all six).
        arm_selection: how the K prompts are picked without ``prompt_ids``: ``"spread"``
            (evenly spread by expected reward, the study's rule) or ``"best"`` (the K with the
            highest expected reward; ``GambitIHS-Safe-v0``).
    """

    preset: str
    outcome: str = "linear"
    outcome_facts: str = "3d"
    true_dims: tuple[str, ...] = ("optimism", "formality", "severity")
    working_dims: tuple[str, ...] = ("optimism", "formality", "severity")
    covariates: bool = False
    noise_ladder: tuple[float, ...] = tuple(_facts("3d")["noise_sd_ladder"])
    noise_level: int = 0
    noise_sd: float | None = None
    n_prompts: int = 5
    prompt_ids: tuple[int, ...] | None = None
    horizon: int = 1000
    bank: str | None = None
    optional: bool = False
    no_message_reward: str | float = "median"
    live: bool = False
    mlp_seed: int = 0
    center_rewards: bool = False
    habituation: float = 0.0
    habituation_memory: float = 0.8
    disengagement: float = 0.0
    burden_memory: float = 0.9
    disengage_mode: str = "silence"
    missing_rate: float = 0.0
    reward_delay: int = 0
    drift_sd: float = 0.0
    change_point: int | None = None
    embedding: str = "scores"
    safety_filter: str | None = None
    max_redraws: int = 3
    unsafe_budget: float | None = None
    cost_model: CostModel | None = None
    unsafe_categories: tuple[str, ...] | None = None
    arm_selection: str = "spread"

    def __post_init__(self) -> None:
        if self.outcome not in ("linear", "mlp"):
            raise ValueError(f"outcome must be 'linear' or 'mlp', got {self.outcome!r}")
        try:
            check_index("noise_level", self.noise_level, len(self.noise_ladder))
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{exc}; or pass noise_sd= for any other level") from None
        if self.noise_sd is not None:
            check_number("noise_sd", self.noise_sd, minimum=0.0)
        if self.prompt_ids is not None:
            ids = check_index_sequence("prompt_ids", self.prompt_ids, None)
            object.__setattr__(self, "prompt_ids", ids)
        else:
            check_positive_int("n_prompts", self.n_prompts)
        check_positive_int("horizon", self.horizon)
        if self.arm_selection not in ("spread", "best"):
            raise ValueError(f"arm_selection must be 'spread' or 'best', got "
                             f"{self.arm_selection!r}")
        if not isinstance(self.center_rewards, (bool, np.bool_)):
            raise ValueError(f"center_rewards must be True or False, got {self.center_rewards!r}")
        if isinstance(self.no_message_reward, str):
            if self.no_message_reward not in ("median", "min", "max"):
                raise ValueError("no_message_reward must be 'median', 'min', 'max' or a number")
        else:
            check_number("no_message_reward ('median', 'min', 'max' or a number)",
                         self.no_message_reward)
        parse_embedding(self.embedding)
        if self.live and self.embedding != "scores":
            raise ValueError("embedding= needs the response bank; GambitIHS-Live-v0 embeds "
                             "each message with its embedder's named scores")
        dynamics = dynamics_from({k: getattr(self, k) for k in DYNAMICS_KWARGS})
        if self.live and dynamics.active:
            raise ValueError("user dynamics (habituation, missing_rate, ...) need the response "
                             "bank; GambitIHS-Live-v0 does not offer them")
        for name in DYNAMICS_KWARGS:  # the validated values (ints for the step counts)
            object.__setattr__(self, name, getattr(dynamics, name))
        _, redraws = check_filter(self.safety_filter, self.max_redraws)
        object.__setattr__(self, "max_redraws", redraws)
        object.__setattr__(self, "cost_model", cost_model_from(self.cost_model))
        object.__setattr__(self, "unsafe_categories",
                           check_categories(self.unsafe_categories))
        if self.unsafe_budget is not None:
            budget = check_number("unsafe_budget", self.unsafe_budget, minimum=0.0)
            if budget > 1:
                raise ValueError(f"unsafe_budget is a rate in [0, 1], got {budget!r}")
            object.__setattr__(self, "unsafe_budget", float(budget))
            if dynamics.stateful_mean:
                raise ValueError("unsafe_budget needs a stationary user: habituation, drift_sd "
                                 "and change_point move the oracle, which the budget does not "
                                 "follow")

    @property
    def dynamics(self) -> UserDynamics:
        """The user-dynamics options (:mod:`gambit_gym.envs.user_dynamics`)."""
        return dynamics_from({k: getattr(self, k) for k in DYNAMICS_KWARGS})

    @property
    def effective_noise_sd(self) -> float:
        """The reward noise sd in force."""
        return float(self.noise_sd if self.noise_sd is not None
                     else self.noise_ladder[self.noise_level])

    @property
    def calibration_sd(self) -> float:
        """The sd of the mean reward over the bank that the outcome is scaled to (level 0)."""
        return float(self.noise_ladder[0])

    @property
    def n_actions(self) -> int:
        """Size of the action space (K, plus one for the optional-message env)."""
        k = len(self.prompt_ids) if self.prompt_ids is not None else self.n_prompts
        return k + int(self.optional)

    def table_key(self) -> tuple[Any, ...]:
        """What the precomputed dynamics tables depend on: every field but :data:`NOT_IN_TABLES`.

        Derived from the fields, not listed by hand, so a new field is part of the key (tables
        are rebuilt for it) unless it is declared not to change them.
        """
        return tuple((f.name, getattr(self, f.name)) for f in fields(self)
                     if f.name not in NOT_IN_TABLES)


#: Config fields the shared dynamics tables do not depend on: the episode, the noise, the
#: rewards' offset and the user dynamics are applied per env on top of the tables.
NOT_IN_TABLES = frozenset({"noise_level", "noise_sd", "horizon", "center_rewards",
                           "cost_model", *DYNAMICS_KWARGS})


_LADDER_1D = tuple(_facts("1d_optimism")["noise_sd_ladder"])
_LADDER_3D = tuple(_facts("3d")["noise_sd_ladder"])
_LADDER_20D = tuple(_facts("20d")["noise_sd_ladder"])
_DIMS_3D = ("optimism", "formality", "severity")


def _preset_table() -> dict[str, dict[str, Any]]:
    table: dict[str, dict[str, Any]] = {
        "3d": {},
        "1d": dict(outcome_facts="1d_optimism", true_dims=("optimism",),
                   working_dims=("optimism",), noise_ladder=_LADDER_1D),
        "mlp": dict(outcome="mlp", true_dims=("optimism", "severity", "formality"),
                    working_dims=("optimism", "severity", "formality"),
                    noise_ladder=MLP_NOISE_LADDER),
        "covariates": dict(outcome_facts="3d_with_covariates", covariates=True),
        "optional": dict(optional=True),
        "live": dict(live=True),
        # the constrained benchmark: "send nothing" (always safe) beside 10 prompts, and a
        # budget on the unsafe-delivery rate (docs/safety.md)
        "safe": dict(optional=True, n_prompts=SAFE_N_PROMPTS, unsafe_budget=SAFE_BUDGET,
                     unsafe_categories=SAFE_CATEGORIES, arm_selection="best"),
    }
    for n in (5, 10, 15, 20):
        dims = dimension_subset(n)
        table[f"{n}d"] = dict(outcome_facts="20d", true_dims=dims, working_dims=dims,
                              noise_ladder=_LADDER_20D)
    # the agent is not told which style dims matter: it sees all 20 scores, the outcome uses 3
    table["3of20"] = dict(working_dims=dimension_subset(20))
    for working in MISSPEC_WORKING_DIMS:
        table[f"misspec-{working}"] = dict(outcome_facts="1d_optimism", true_dims=("optimism",),
                                           working_dims=(working,), noise_ladder=_LADDER_1D)
    return table


#: The working dims of the study's misspecification experiment (Fig. 3): the outcome depends on
#: optimism, the agent sees one of these (presets ``misspec-<dim>``, ids
#: ``GambitIHS-Misspec-<Dim>-v0``; ``bench.suites`` builds its suite from this tuple).
MISSPEC_WORKING_DIMS: tuple[str, ...] = ("severity", "encouragement", "formality", "clarity")
#: ``GambitIHS-Safe-v0``: its prompts and its budget on the unsafe-delivery rate.
SAFE_N_PROMPTS = 10
SAFE_BUDGET = 0.005
#: the harmful categories: off_topic (70% of bank v1) does not count against the budget
SAFE_CATEGORIES: tuple[str, ...] = ("shaming", "threat", "unsafe_exertion", "weight_stigma",
                                    "medical_claim")

PRESETS: dict[str, dict[str, Any]] = _preset_table()

#: Keyword arguments a user may pass to every GAMBIT id.
USER_KWARGS: tuple[str, ...] = ("noise_level", "noise_sd", "n_prompts", "prompt_ids",
                                "horizon", "bank", "center_rewards", "embedding"
                                ) + DYNAMICS_KWARGS + ("safety_filter", "max_redraws",
                                                       "unsafe_budget", "no_message_reward",
                                                       "cost_model", "unsafe_categories")
#: Extra keyword arguments of particular presets.
PRESET_KWARGS: dict[str, tuple[str, ...]] = {"live": ("generator", "embedder", "device")}


def valid_kwargs(preset: str) -> tuple[str, ...]:
    """The keyword arguments ``gym.make`` accepts for a preset."""
    return USER_KWARGS + PRESET_KWARGS.get(preset, ()) + ("render_mode",)


def make_config(preset: str, owner: str = "GambitEnv.__init__", extra: tuple[str, ...] = (),
                /, **kwargs: Any) -> GambitConfig:
    """Build a validated config from a preset name and a user's kwargs.

    Args:
        preset: a key of :data:`PRESETS`.
        owner: the callable named in an unknown-kwarg error, as Python would name it.
        extra: the owner's own keyword arguments, listed first among the valid ones there.
        **kwargs: the user's env kwargs (see :func:`valid_kwargs`).

    Raises:
        ValueError: an unknown preset, or a bad value.
        TypeError: an unknown kwarg, in Python's wording ("got an unexpected keyword
            argument 'x'"), listing the valid ones.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid presets: {sorted(PRESETS)}")
    allowed = set(valid_kwargs(preset)) - {"render_mode", "generator", "embedder", "device"}
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise unexpected_kwargs_error(owner, unknown, extra + valid_kwargs(preset),
                                      f" (GAMBIT preset {preset!r})")
    known = {f.name for f in fields(GambitConfig)}
    values = {**PRESETS[preset], **{k: v for k, v in kwargs.items() if k in known}}
    if values.get("noise_level") is None:
        values.pop("noise_level", None)
    config = GambitConfig(preset=preset, **values)
    # which kwargs the user gave is known here, not in the config (no hidden field for it)
    if "noise_level" in kwargs and kwargs.get("noise_sd") is not None:
        raise ValueError("pass either noise_level or noise_sd, not both")
    if "n_prompts" in kwargs and "prompt_ids" in kwargs:
        raise ValueError("pass either n_prompts or prompt_ids, not both")
    if "max_redraws" in kwargs and config.safety_filter != "redraw":
        raise ValueError("max_redraws applies to safety_filter='redraw' only; pass both")
    if "no_message_reward" in kwargs and not config.optional and config.safety_filter is None:
        raise ValueError("no_message_reward is the outcome of sending nothing: it applies to "
                         "GambitIHS-Optional-v0 and to envs with a safety_filter (a blocked "
                         "message), so pass safety_filter= too")
    return config
