"""Figures of the aggregates and of one env configuration, for the report.

- :func:`plot_intervals`: per agent, IQM, median, mean and optimality gap with their 95%
  stratified-bootstrap intervals (a bar from low to high, a tick at the estimate), agents in
  rank order, as in Agarwal et al. (2021), Fig. 1;
- :func:`plot_improvement`: the matrix of ``P(row beats column)`` as a heatmap, each cell
  annotated with the estimate and its interval;
- :func:`plot_profiles`: performance profiles, the fraction of runs scoring above each
  threshold, with 95% bands;
- :func:`plot_env`: one env configuration's cumulative regret curves, every agent, with bands.

Each agent keeps its one colour (:func:`gambit_gym.bench.labels.line_styles`) in every figure.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gambit_gym.bench.aggregates import METRIC_NAMES, METRICS, Aggregates
from gambit_gym.bench.analysis import ORACLE, RANDOM, SettingStats
from gambit_gym.bench.labels import config_label, line_styles, reward_unit


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(agents: list[str]) -> dict[str, Any]:
    """Each agent's fixed colour, the one it has in every figure (suite figures included)."""
    return {a: style["color"] for a, style in line_styles(agents).items()}


def plot_intervals(aggs: Aggregates) -> Any:
    """One panel per metric; a row per agent: its interval as a bar, the estimate as a tick."""
    plt = _pyplot()
    agents = aggs.agents
    colours = _colours(agents)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS),
                                                      0.9 + 0.42 * len(agents)),
                             sharey=True, squeeze=False)
    y = np.arange(len(agents))[::-1]
    for ax, metric in zip(axes[0], METRICS):
        for yi, agent in zip(y, agents):
            iv = aggs.metrics[agent][metric]
            ax.barh(yi, iv.high - iv.low, left=iv.low, height=0.6, color=colours[agent],
                    alpha=0.55)
            ax.plot([iv.point, iv.point], [yi - 0.3, yi + 0.3], color="black", lw=1.5)
            ax.plot(iv.point, yi, "o", color=colours[agent], mec="black", ms=4)
        ax.set_title(METRIC_NAMES[metric] + (" (lower is better)"
                                             if metric == "optimality_gap" else ""),
                     fontsize=10)
        ax.set_xlabel("normalised score")
        ax.grid(axis="x", alpha=0.3)
        ends = [v for a in agents for v in (aggs.metrics[a][metric].low,
                                            aggs.metrics[a][metric].high) if np.isfinite(v)]
        if ends:  # bars have sticky edges: pad by hand so an interval at 1 stays in view
            pad = 0.06 * max(max(ends) - min(ends), 0.5)
            ax.set_xlim(min(ends) - pad, max(ends) + pad)
    axes[0][0].set_yticks(y)
    axes[0][0].set_yticklabels([config_label(a) for a in agents], fontsize=9)
    fig.suptitle(f"Aggregate scores (Random 0, Oracle 1) with {aggs.confidence:.0%} "
                 f"stratified-bootstrap intervals ({aggs.reps} resamples)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def plot_improvement(aggs: Aggregates) -> Any:
    """Heatmap of ``P(row > column)``, each cell with its interval."""
    plt = _pyplot()
    agents = aggs.agents
    n = len(agents)
    values = np.full((n, n), np.nan)
    for i, x in enumerate(agents):
        for j, y in enumerate(agents):
            if x != y:
                values[i, j] = aggs.improvement[x][y].point
    size = 1.6 + 1.05 * n
    fig, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(np.ma.masked_invalid(values), cmap="RdBu_r", vmin=0, vmax=1)
    for i, x in enumerate(agents):
        for j, y in enumerate(agents):
            if x == y or not np.isfinite(values[i, j]):
                continue
            iv = aggs.improvement[x][y]
            dark = abs(iv.point - 0.5) > 0.3
            ax.text(j, i, f"{iv.point:.2f}\n[{iv.low:.2f}, {iv.high:.2f}]", ha="center",
                    va="center", fontsize=7, color="white" if dark else "black")
    ax.set_xticks(range(n))
    ax.set_xticklabels([config_label(a) for a in agents], rotation=40, ha="right", fontsize=8)
    ax.set_yticks(range(n))
    ax.set_yticklabels([config_label(a) for a in agents], fontsize=8)
    ax.set_xlabel("Y (column)")
    ax.set_ylabel("X (row)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="P(X > Y)")
    ax.set_title("Probability of improvement P(X > Y),\naveraged over the envs both ran",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_profiles(aggs: Aggregates) -> Any:
    """Performance profiles: fraction of runs with score above tau, with bands."""
    plt = _pyplot()
    colours = _colours(aggs.agents)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    tau = aggs.thresholds
    for agent in aggs.agents:
        point, low, high = aggs.profiles[agent]
        ax.plot(tau, point, color=colours[agent], label=config_label(agent), lw=1.6)
        ax.fill_between(tau, low, high, color=colours[agent], alpha=0.2, lw=0)
    ax.set_xlabel("normalised score τ (Random 0, Oracle 1)")
    ax.set_ylabel("fraction of runs with score > τ")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.set_title(f"Performance profiles, {aggs.confidence:.0%} bands", fontsize=10)
    fig.tight_layout()
    return fig


def plot_env(stats: list[SettingStats], title: str, confidence: float = 0.95) -> Any:
    """One env configuration: each agent's mean cumulative regret with its band.

    Random (dashed) and Oracle (dotted), the references of the score, are drawn in grey.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.0, 4.4))
    styles = line_styles([s.agent_key for s in stats])
    for s in stats:
        t = np.arange(1, s.horizon + 1)
        reference = s.agent_key in (RANDOM, ORACLE)
        colour = styles[s.agent_key]["color"]
        ax.plot(t, s.curve_mean, label=f"{config_label(s.agent_key)} (R={s.n})",
                **styles[s.agent_key])
        if not reference:
            lo, hi = s.band(confidence)
            ax.fill_between(t, lo, hi, color=colour, alpha=0.2, lw=0)
    ax.set_xlabel("step t")
    unit = reward_unit(stats[0].env_id) if stats else "reward units"
    ax.set_ylabel(f"cumulative regret ({unit})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    ax.set_title(f"{config_label(title)}\nmean cumulative regret, {confidence:.0%} bands",
                 fontsize=10)
    fig.tight_layout()
    return fig
