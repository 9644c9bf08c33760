"""The leaderboard's two-objective view: regret against unsafe deliveries (and cost).

For each agent on each env configuration: mean cumulative regret at T with its 95% interval,
the unsafe-delivery rate (unsafe messages that reached the user per step, averaged over the
replicates, with its 95% interval), the env's budget on that rate where it has one
(``unsafe_budget``, ``GambitIHS-Safe-v0``), the *constraint violation*
``max(0, rate - budget)`` and the share of replicates whose own rate exceeds the budget, and
the tokens and cost per step. It reads the per-replicate totals the store keeps
(:attr:`~gambit_gym.bench.units.UnitRecord.outcomes`); rows of envs without safety scores have
no rate (NaN). ``gambit-gym leaderboard STORE --view safety`` prints it; :func:`plot_tradeoff`
draws regret against the rate, one point per agent, with the budget as a line.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gambit_gym.bench.analysis import SettingStats
from gambit_gym.core.intervals import mean_interval


@dataclass
class ObjectiveRow:
    """One agent on one env configuration, in both objectives."""

    env_key: str
    agent_key: str
    horizon: int
    n: int
    regret: float
    regret_low: float
    regret_high: float
    unsafe_rate: float
    unsafe_low: float
    unsafe_high: float
    budget: float | None
    violation: float
    over_budget: float
    tokens_per_step: float
    cost_per_step: float


def env_budget(env_id: str, env_kwargs: dict[str, Any]) -> float | None:
    """The ``unsafe_budget`` of an env configuration (its kwargs, else its preset's), or None."""
    if "unsafe_budget" in env_kwargs:
        value = env_kwargs["unsafe_budget"]
        return None if value is None else float(value)
    import gymnasium as gym

    from gambit_gym.envs.config import PRESETS

    try:
        spec_kwargs = dict(gym.spec(env_id).kwargs)
    except gym.error.Error:
        return None
    if "unsafe_budget" in spec_kwargs:
        return spec_kwargs["unsafe_budget"]
    return PRESETS.get(spec_kwargs.get("preset", ""), {}).get("unsafe_budget")


def _kwargs_of(stat: SettingStats) -> dict[str, Any]:
    rest = stat.env_key[len(stat.env_id):]
    return json.loads(rest) if rest else {}


def objective_rows(stats: list[SettingStats], confidence: float = 0.95) -> list[ObjectiveRow]:
    """One :class:`ObjectiveRow` per statistics row, ordered by env then regret."""
    rows = []
    for s in stats:
        t = s.horizon
        unsafe = s.outcomes.get("unsafe_delivered")
        if unsafe is not None:
            per_rep = np.asarray(unsafe, dtype=np.float64) / t
            rate, half = mean_interval(per_rep, confidence)
        else:
            per_rep, rate, half = None, float("nan"), float("nan")
        budget = env_budget(s.env_id, _kwargs_of(s))
        if budget is None or per_rep is None:
            violation = over = float("nan")
        else:
            violation = max(rate - budget, 0.0)
            over = float(np.mean(per_rep > budget + 1e-12))
        tokens = s.outcomes.get("tokens")
        cost = s.outcomes.get("cost")
        rows.append(ObjectiveRow(
            env_key=s.env_key, agent_key=s.agent_key, horizon=t, n=s.n, regret=s.mean,
            regret_low=s.ci_low, regret_high=s.ci_high, unsafe_rate=rate,
            unsafe_low=rate - half, unsafe_high=rate + half, budget=budget,
            violation=violation, over_budget=over,
            tokens_per_step=float(np.mean(tokens) / t) if tokens is not None else math.nan,
            cost_per_step=float(np.mean(cost) / t) if cost is not None else math.nan))
    rows.sort(key=lambda r: (r.env_key, r.regret))
    return rows


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def render(rows: list[ObjectiveRow], fmt: str = "md") -> str:
    """The view as Markdown (``md``) or JSON (``json``)."""
    if fmt == "json":
        return json.dumps([asdict(r) for r in rows], indent=2, default=float) + "\n"
    if fmt != "md":
        raise ValueError(f"the safety view is written as 'md' or 'json', not {fmt!r}")
    lines = []
    for env in dict.fromkeys(r.env_key for r in rows):
        group = [r for r in rows if r.env_key == env]
        budget = group[0].budget
        lines += [f"### {env} (T={group[0].horizon}"
                  + (f", budget on the unsafe-delivery rate {budget:g})" if budget is not None
                     else ")"), "",
                  "| agent | regret at T [95% CI] | unsafe deliveries per step [95% CI] | "
                  "violation | replicates over budget | tokens per step | cost per step | n |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in group:
            lines.append(
                f"| {r.agent_key} | {r.regret:.1f} [{r.regret_low:.1f}, {r.regret_high:.1f}] "
                f"| {_num(r.unsafe_rate, 4)} [{_num(r.unsafe_low, 4)}, {_num(r.unsafe_high, 4)}]"
                f" | {_num(r.violation, 4)} | {_num(r.over_budget, 2)} "
                f"| {_num(r.tokens_per_step, 1)} | {_num(r.cost_per_step, 4)} | {r.n} |")
        lines.append("")
    return "\n".join(lines)


def plot_tradeoff(rows: list[ObjectiveRow], path: str | Path) -> Path:
    """Regret at T against the unsafe-delivery rate, one panel per env, one point per agent.

    Error bars are the 95% intervals of both; the dashed line is the budget.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(dict.fromkeys(r.env_key for r in rows))
    agents = sorted(dict.fromkeys(r.agent_key for r in rows))
    palette = plt.get_cmap("tab10")
    color = {a: palette(i % 10) for i, a in enumerate(agents)}  # one colour per agent
    fig, axes = plt.subplots(1, len(envs), figsize=(5.5 * len(envs), 4.2), squeeze=False)
    for ax, env in zip(axes[0], envs):
        group = [r for r in rows if r.env_key == env and np.isfinite(r.unsafe_rate)]
        for r in group:
            ax.errorbar(r.unsafe_rate, r.regret,
                        xerr=[[r.unsafe_rate - r.unsafe_low], [r.unsafe_high - r.unsafe_rate]],
                        yerr=[[r.regret - r.regret_low], [r.regret_high - r.regret]],
                        fmt="o", capsize=3, label=r.agent_key, color=color[r.agent_key])
        if group and group[0].budget is not None:
            ax.axvline(group[0].budget, color="k", linestyle="--", linewidth=1,
                       label=f"budget {group[0].budget:g}")
        top = max([r.unsafe_high for r in group] + [group[0].budget or 0.0 if group else 0.0])
        ax.set_xlim(-0.05 * top - 1e-4, 1.15 * top + 1e-4)
        ax.set_xlabel("unsafe deliveries per step")
        ax.set_ylabel(f"cumulative regret at T={group[0].horizon if group else '?'}")
        ax.set_title(env, fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
