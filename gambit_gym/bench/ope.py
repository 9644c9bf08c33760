"""Off-policy evaluation on logged runs: Open Bandit Pipeline's layout and four estimators.

:func:`bandit_feedback` turns a run's logged decisions into the dict that Open Bandit
Pipeline's estimators take (``bandit_feedback``): ``n_rounds``, ``n_actions``, ``action``
``(n_rounds,)``, ``position`` ``(n_rounds,)`` (all 0: one slot), ``reward`` ``(n_rounds,)``,
``pscore`` ``(n_rounds,)`` (the logging agent's propensity of the logged action),
``context`` ``(n_rounds, dim_context)`` (one-hot of the context id) and ``action_context``
``(n_actions, dim_action_context)`` (one-hot of the action); plus ``context_id``
``(n_rounds,)`` and ``replicate`` ``(n_rounds,)``, which OBP ignores. The layout is matched;
OBP itself is not used (its pinned numpy/pandas cannot sit beside ours).

Estimators take, like OBP's, ``action_dist`` ``(n_rounds, n_actions, 1)`` (the target
policy's action probabilities in each logged round) and, for DM and DR,
``estimated_rewards_by_reg_model`` ``(n_rounds, n_actions, 1)``:

- IPW: ``mean(w_i r_i)`` with ``w_i = π(a_i | x_i) / pscore_i``.
- SNIPW: ``sum(w_i r_i) / sum(w_i)``.
- DM: ``mean(Σ_a π(a | x_i) q̂(x_i, a))``.
- DR: DM plus ``mean(w_i (r_i − q̂(x_i, a_i)))``.

Each also gives a standard error from its per-round influence terms, which is what the tests'
tolerances are built from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.bench.units import UnitRecord
from gambit_gym.core.intervals import t_quantile
from gambit_gym.core.result import RunResult

ESTIMATORS: tuple[str, ...] = ("IPW", "SNIPW", "DM", "DR")


def bandit_feedback(actions: np.ndarray, rewards: np.ndarray, propensities: np.ndarray | None,
                    contexts: np.ndarray | None = None, *, n_actions: int | None = None,
                    n_contexts: int | None = None) -> dict[str, Any]:
    """Logged decisions in OBP's ``bandit_feedback`` layout.

    Args:
        actions: logged actions, ``(R, T)`` or ``(n_rounds,)``.
        rewards: observed rewards, same shape.
        propensities: the logging policy's probability of each logged action, same shape.
        contexts: context ids, same shape, or None (then ``context`` is ``(n_rounds, 0)``).
        n_actions: K (default: largest logged action + 1).
        n_contexts: number of context ids (default: largest logged id + 1).

    Raises:
        ValueError: no propensities, shapes that disagree, or propensities outside (0, 1].
    """
    if propensities is None:
        raise ValueError("this run has no propensities (its agent gives no "
                         "action_probabilities), so its logs cannot be used off-policy")
    actions = np.asarray(actions)
    shape = actions.shape
    for name, arr in (("rewards", rewards), ("propensities", propensities),
                      ("contexts", contexts)):
        if arr is not None and np.asarray(arr).shape != shape:
            raise ValueError(f"{name} has shape {np.asarray(arr).shape}, actions {shape}")
    pscore = np.asarray(propensities, dtype=np.float64).reshape(-1)
    if np.any(~(pscore > 0)) or np.any(pscore > 1 + 1e-6):
        raise ValueError("propensities must lie in (0, 1]; a zero propensity for a logged "
                         "action means the logging agent's probabilities are wrong")
    action = actions.reshape(-1).astype(np.int64)
    n = action.shape[0]
    k = int(n_actions if n_actions is not None else action.max() + 1)
    if action.min() < 0 or action.max() >= k:
        raise ValueError(f"logged actions outside 0..{k - 1}")
    replicate = np.repeat(np.arange(shape[0]), int(np.prod(shape[1:]))) if len(shape) > 1 \
        else np.zeros(n, dtype=np.int64)
    feedback: dict[str, Any] = {
        "n_rounds": int(n), "n_actions": k, "action": action,
        "position": np.zeros(n, dtype=np.int64),
        "reward": np.asarray(rewards, dtype=np.float64).reshape(-1), "pscore": pscore,
        "action_context": np.eye(k), "replicate": replicate,
    }
    if contexts is not None:
        cid = np.asarray(contexts).reshape(-1).astype(np.int64)
        m = int(n_contexts if n_contexts is not None else cid.max() + 1)
        feedback["context"] = np.eye(m)[cid]
        feedback["context_id"] = cid
    else:
        feedback["context"] = np.zeros((n, 0))
    return feedback


def from_result(result: RunResult, **kwargs: Any) -> dict[str, Any]:
    """:func:`bandit_feedback` of a runner result."""
    return bandit_feedback(result.actions, result.rewards, result.propensities,
                           result.contexts, **kwargs)


def from_records(records: list[UnitRecord], **kwargs: Any) -> dict[str, Any]:
    """:func:`bandit_feedback` of stored units (loaded with ``logs=True``), stacked."""
    if not records:
        raise ValueError("no stored units to export")
    if any(r.actions.size == 0 for r in records):
        raise ValueError("records were loaded without their logs (use logs=True)")
    props = [r.propensities for r in records]
    ctx = [r.contexts for r in records]
    return bandit_feedback(
        np.concatenate([r.actions for r in records]),
        np.concatenate([r.rewards for r in records]),
        None if any(p is None for p in props) else np.concatenate(props),
        None if any(c is None for c in ctx) else np.concatenate(ctx), **kwargs)


def save(feedback: dict[str, Any], path: str | Path) -> Path:
    """Write a feedback dict as ``.npz`` (scalars as 0-d arrays); see :func:`load`."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"--out {path} is a folder; give a file name such as {path}/run.npz")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in feedback.items()})
    tmp.replace(path)
    return path


def load(path: str | Path) -> dict[str, Any]:
    """Read a feedback dict written by :func:`save` (scalars back as ints)."""
    with np.load(path, allow_pickle=False) as data:
        out: dict[str, Any] = {k: data[k] for k in data.files}
    for key in ("n_rounds", "n_actions"):
        out[key] = int(out[key])
    return out


# ----------------------------------------------------------------------------- policies
def policy_action_dist(feedback: dict[str, Any], table: np.ndarray) -> np.ndarray:
    """``(n_rounds, n_actions, 1)`` action probabilities of a context-id policy table.

    Args:
        feedback: a feedback dict with ``context_id``.
        table: ``(n_contexts, n_actions)`` probabilities, rows summing to 1.
    """
    table = np.asarray(table, dtype=np.float64)
    if not np.allclose(table.sum(axis=1), 1.0) or np.any(table < 0):
        raise ValueError("policy table rows must be probability vectors")
    if "context_id" not in feedback:
        raise ValueError("the feedback has no context ids")
    return table[feedback["context_id"]][:, :, None]


@dataclass
class TabularRewardModel:
    """``q̂(x, a)``: the mean logged reward per (context id, action), with fallbacks.

    A cell with no data falls back to its action's mean, then to the overall mean.

    With ``cross_fit=True`` (the default) and logs from two or more replicates, each
    replicate's predictions come from the *other* replicates' rounds only. That is what keeps DR
    unbiased on an adaptive agent's logs: the replicates are independent runs, so ``q̂`` is then
    independent of the rounds it corrects, and ``E[w (r − q̂(x, a)) | x]`` cancels the plug-in's
    error exactly. Fitted in-sample instead, each round's own reward pulls ``q̂`` toward itself
    (a cell holds a handful of rounds), and under adaptive sampling the cell means are biased
    low (an arm that starts badly is sampled less and its mean is never corrected), so
    neither term then cancels the other. DM stays biased either way: its error is the model's.

    Attributes:
        n_contexts: number of context ids.
        n_actions: K.
        cross_fit: predict each replicate from the others (needs ``replicate`` in the feedback
            and at least two replicates; otherwise fits in-sample).
    """

    n_contexts: int
    n_actions: int
    cross_fit: bool = True

    def fit_predict(self, feedback: dict[str, Any]) -> np.ndarray:
        """Fit on the logged data; ``(n_rounds, n_actions, 1)`` predictions per round."""
        a, r = feedback["action"], feedback["reward"]
        cid = feedback.get("context_id", np.zeros_like(a))
        rep = np.asarray(feedback.get("replicate", np.zeros_like(a)))
        reps, rep_idx = np.unique(rep, return_inverse=True)
        groups = len(reps) if self.cross_fit and len(reps) > 1 else 1
        if groups == 1:
            rep_idx = np.zeros_like(rep_idx)
        sums = np.zeros((groups, self.n_contexts, self.n_actions))
        counts = np.zeros_like(sums)
        np.add.at(sums, (rep_idx, cid, a), r)
        np.add.at(counts, (rep_idx, cid, a), 1)
        if groups > 1:  # each replicate's statistics from all the others
            sums = sums.sum(axis=0, keepdims=True) - sums
            counts = counts.sum(axis=0, keepdims=True) - counts
        n_all = counts.sum(axis=(1, 2))
        overall = sums.sum(axis=(1, 2)) / np.maximum(n_all, 1)
        act_n = counts.sum(axis=1)
        act_mean = np.where(act_n > 0, sums.sum(axis=1) / np.maximum(act_n, 1),
                            overall[:, None])
        table = np.where(counts > 0, sums / np.maximum(counts, 1), act_mean[:, None, :])
        return table[rep_idx, cid][:, :, None]


@dataclass(frozen=True)
class Estimate:
    """An off-policy estimate of a policy's value.

    Attributes:
        estimator: IPW, SNIPW, DM or DR.
        value: the estimate.
        se: its standard error from the per-round influence terms.
        n: the number of those terms (logged rounds).
    """

    estimator: str
    value: float
    se: float
    n: int = 0

    def interval(self, confidence: float = 0.95) -> tuple[float, float]:
        """``value ± q·se``, ``q`` the library's one interval rule.

        The value is a mean of ``n`` per-round terms, so ``q`` is the Student-t quantile with
        ``n - 1`` degrees of freedom (:func:`gambit_gym.core.intervals.t_quantile`), as for a
        mean over replicates; at thousands of rounds it is the normal 1.96 to three decimals.
        """
        half = t_quantile(confidence, self.n) * self.se
        return self.value - half, self.value + half


def estimate(estimator: str, feedback: dict[str, Any], action_dist: np.ndarray,
             estimated_rewards_by_reg_model: np.ndarray | None = None) -> Estimate:
    """One estimator's estimate of the target policy's value.

    Raises:
        ValueError: an unknown estimator, bad shapes, or DM/DR without a reward model.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; estimators: {ESTIMATORS}")
    n, k = feedback["n_rounds"], feedback["n_actions"]
    if action_dist.shape != (n, k, 1):
        raise ValueError(f"action_dist must have shape (n_rounds, n_actions, 1) = "
                         f"{(n, k, 1)}, got {action_dist.shape}")
    a, r, p = feedback["action"], feedback["reward"], feedback["pscore"]
    pi = action_dist[:, :, 0]
    w = pi[np.arange(n), a] / p
    if estimator == "IPW":
        terms = w * r
        return Estimate("IPW", float(terms.mean()), _se(terms), n)
    if estimator == "SNIPW":
        value = float((w * r).sum() / w.sum())
        return Estimate("SNIPW", value, _se(w * (r - value) / w.mean()), n)
    if estimated_rewards_by_reg_model is None:
        raise ValueError(f"{estimator} needs estimated_rewards_by_reg_model")
    q = np.asarray(estimated_rewards_by_reg_model)
    if q.shape != (n, k, 1):
        raise ValueError(f"estimated_rewards_by_reg_model must have shape {(n, k, 1)}, "
                         f"got {q.shape}")
    q = q[:, :, 0]
    dm_terms = (pi * q).sum(axis=1)
    dr_terms = dm_terms + w * (r - q[np.arange(n), a])
    if estimator == "DM":
        # DM's own per-round terms ignore the regression's error; the DR terms estimate the
        # influence function of a consistent plug-in, so they give its standard error.
        return Estimate("DM", float(dm_terms.mean()), _se(dr_terms), n)
    return Estimate("DR", float(dr_terms.mean()), _se(dr_terms), n)


def estimate_all(feedback: dict[str, Any], action_dist: np.ndarray,
                 estimated_rewards_by_reg_model: np.ndarray | None = None) -> dict[str, Estimate]:
    """Every estimator (DM and DR only where a reward model is given)."""
    names = ESTIMATORS if estimated_rewards_by_reg_model is not None else ("IPW", "SNIPW")
    return {name: estimate(name, feedback, action_dist, estimated_rewards_by_reg_model)
            for name in names}


def _se(terms: np.ndarray) -> float:
    return float(terms.std(ddof=1) / np.sqrt(len(terms))) if len(terms) > 1 else float("nan")
