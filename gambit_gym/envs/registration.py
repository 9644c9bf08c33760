"""Registers every gambit-gym environment id with Gymnasium, in one block.

Each row of :data:`ENV_IDS` is ``(id, entry point, vector entry point, kwargs, description)``.
``gambit-gym list`` and the contract tests read the same table, so nothing is listed twice.
Ids are registered without ``max_episode_steps``: the horizon is a kwarg (``horizon=``) and the
env truncates itself, so a TimeLimit wrapper with a fixed limit would contradict it. A user's
``max_episode_steps`` larger than the horizon becomes the horizon, or an error where the user
also set ``horizon`` (:mod:`gambit_gym.envs.episode`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

GAMBIT = "gambit_gym.envs.gambit_env:GambitEnv"
GAMBIT_VEC = "gambit_gym.envs.gambit_vector:GambitVectorEnv"
MIXED_LINEAR = "gambit_gym.envs.mixed_effect:MixedEffectLinearEnv"
MIXED_LOGISTIC = "gambit_gym.envs.mixed_effect:MixedEffectLogisticEnv"

ENV_IDS: list[tuple[str, str, str | None, dict[str, Any], str]] = [
    # --- GAMBIT (Intern Health Study) environments -------------------------------------------
    ("GambitIHS-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d"}, "3-D linear outcome"),
    ("GambitIHS-1D-v0", GAMBIT, GAMBIT_VEC, {"preset": "1d"}, "1-D optimism outcome"),
    ("GambitIHS-5D-v0", GAMBIT, GAMBIT_VEC, {"preset": "5d"}, "5-D linear (20-D table subset)"),
    ("GambitIHS-10D-v0", GAMBIT, GAMBIT_VEC, {"preset": "10d"}, "10-D linear subset"),
    ("GambitIHS-15D-v0", GAMBIT, GAMBIT_VEC, {"preset": "15d"}, "15-D linear subset"),
    ("GambitIHS-20D-v0", GAMBIT, GAMBIT_VEC, {"preset": "20d"}, "20-D linear"),
    ("GambitIHS-MLP-v0", GAMBIT, GAMBIT_VEC, {"preset": "mlp"}, "nonlinear MLP outcome, 3 dims"),
    ("GambitIHS-Covariates-v0", GAMBIT, GAMBIT_VEC, {"preset": "covariates"},
     "3-D linear with location and step-bucket terms"),
    ("GambitIHS-Misspec-Severity-v0", GAMBIT, GAMBIT_VEC, {"preset": "misspec-severity"},
     "optimism outcome, agent sees severity"),
    ("GambitIHS-Misspec-Encouragement-v0", GAMBIT, GAMBIT_VEC,
     {"preset": "misspec-encouragement"}, "optimism outcome, agent sees encouragement"),
    ("GambitIHS-Misspec-Formality-v0", GAMBIT, GAMBIT_VEC, {"preset": "misspec-formality"},
     "optimism outcome, agent sees formality"),
    ("GambitIHS-Misspec-Clarity-v0", GAMBIT, GAMBIT_VEC, {"preset": "misspec-clarity"},
     "optimism outcome, agent sees clarity"),
    ("GambitIHS-3of20-v0", GAMBIT, GAMBIT_VEC, {"preset": "3of20"},
     "3-D linear outcome; the agent sees all 20 style scores, not which 3 matter"),
    ("GambitIHS-Optional-v0", GAMBIT, GAMBIT_VEC, {"preset": "optional"},
     "action 0 sends no message"),
    # --- non-stationary users (gambit_gym.envs.user_dynamics; docs/user_dynamics.md) --------
    ("GambitIHS-Habituation-v0", GAMBIT, GAMBIT_VEC,
     {"preset": "3d", "habituation": 1.0, "habituation_memory": 0.8},
     "3-D linear; a message's effect fades with its similarity to recent ones"),
    ("GambitIHS-Disengage-v0", GAMBIT, GAMBIT_VEC,
     {"preset": "optional", "disengagement": 0.001, "burden_memory": 0.9},
     "Optional env; burden of messages sent makes the user stop reporting steps"),
    ("GambitIHS-Disengage-Terminate-v0", GAMBIT, None,
     {"preset": "optional", "disengagement": 0.001, "burden_memory": 0.9,
      "disengage_mode": "terminate"},
     "as Disengage, but the episode ends (terminated) when the user leaves"),
    ("GambitIHS-Missing-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "missing_rate": 0.3},
     "3-D linear; 30% of days' steps unobserved (reward 0.0, reward_observed False)"),
    ("GambitIHS-Delayed-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "reward_delay": 2},
     "3-D linear; each reward arrives 2 steps late (info['reward_step'])"),
    ("GambitIHS-Drift-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "drift_sd": 0.05},
     "3-D linear; outcome coefficients follow a Gaussian random walk"),
    ("GambitIHS-ChangePoint-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "change_point": 200},
     "3-D linear; message effects change sign at step 200"),
    # --- learning the embedding (gambit_gym.text.sentence_vectors; docs/user_dynamics.md) ---
    ("GambitIHS-MiniLM-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "embedding": "minilm384"},
     "3-D linear outcome; the agent sees the full 384-d MiniLM vector (`gambit-gym "
     "embed-bank` first)"),
    ("GambitIHS-MiniLM-PCA8-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "embedding": "pca:8"},
     "3-D linear outcome; the agent sees the first 8 principal components of the MiniLM "
     "vector"),
    ("GambitIHS-MiniLM-PCA32-v0", GAMBIT, GAMBIT_VEC, {"preset": "3d", "embedding": "pca:32"},
     "3-D linear outcome; the agent sees the first 32 principal components of the MiniLM "
     "vector"),
    # --- safety (gambit_gym.envs.safety; docs/safety.md) -------------------------------------
    ("GambitIHS-Safe-v0", GAMBIT, GAMBIT_VEC, {"preset": "safe"},
     "send nothing + the 10 best prompts; oracle and regret under a budget of 0.005 on the "
     "rate of harmful messages delivered (info['unsafe_delivered']); needs the scored bank"),
    ("GambitIHS-Live-v0", GAMBIT, GAMBIT_VEC, {"preset": "live"},
     "live generator and embedder at every step"),
    # --- mixed-effect (meTS) synthetic environments ------------------------------------------
    ("MixedEffectLinear-v0", MIXED_LINEAR, None, {},
     "K=100 actions sharing L=3 latent effects, Gaussian rewards"),
    ("MixedEffectLogistic-v0", MIXED_LOGISTIC, None, {},
     "K=100 actions sharing L=3 latent effects, Bernoulli rewards"),
]


def register_all() -> None:
    """Register every id in :data:`ENV_IDS` (idempotent)."""
    for env_id, entry_point, vector_entry_point, kwargs, _ in ENV_IDS:
        if env_id in gym.registry:
            continue
        gym.register(
            id=env_id,
            entry_point=entry_point,
            vector_entry_point=vector_entry_point,
            kwargs=dict(kwargs),
            nondeterministic=kwargs.get("preset") == "live",
            disable_env_checker=False,
        )


def registered_ids() -> list[str]:
    """Every id this package registers, in table order."""
    return [row[0] for row in ENV_IDS]
