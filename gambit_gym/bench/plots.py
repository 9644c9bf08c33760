"""Cumulative-regret figures with 95% bands, one figure per suite, laid out like the study's.

One panel per value of the suite's varying factor (K, noise level, dimension, working
dimension; the setting's ``panel``), one line per agent configuration (its ``label``), shared
y axis within a figure, as in the study's Figures 2-9. Titles name the env, T, noise, R and the
reward's unit; every agent keeps one colour across figures. The reference agents (Random and
Oracle) are left out unless asked for (then grey and dashed): Oracle is the zero line and
Random would flatten the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gambit_gym._paths import inside, output_dir, safe_filename
from gambit_gym.bench import labels
from gambit_gym.bench import suites as suite_defs
from gambit_gym.bench.analysis import SettingStats, summarise
from gambit_gym.bench.store import ResultStore

FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")


def panel_order(suite: str, stats: list[SettingStats]) -> list[str]:
    """The suite's panels in its own order (unknown suites: numbers sorted by value)."""
    seen = list(dict.fromkeys(s.panel for s in stats))
    if suite in suite_defs.SUITES:
        order = list(dict.fromkeys(s.panel for s in suite_defs.get(suite).settings))
        return [p for p in order if p in seen] + sorted(
            (p for p in seen if p not in order), key=labels.natural_key)
    return sorted(seen, key=labels.natural_key)


def _common(values: list[str], many: str) -> str:
    distinct = list(dict.fromkeys(values))
    return distinct[0] if len(distinct) == 1 else many


def figure_title(suite: str, stats: list[SettingStats], confidence: float = 0.95) -> str:
    """Two lines: what is drawn, then env, T, noise and R (``per panel`` where they vary)."""
    envs = [s.env_id for s in stats]
    noises = [labels.noise_label(s.env_id, labels.split_key(s.env_key)[1]) for s in stats]
    horizons = [str(s.horizon) for s in stats]
    n = min(s.n for s in stats)
    unit = _common([labels.reward_unit(e) for e in envs], "reward units")
    return (f"{suite}: mean cumulative regret ({unit}) with {confidence:.0%} bands\n"
            f"{_common(envs, 'env per panel')}, T = {_common(horizons, 'per panel')}, "
            f"{_common(noises, 'noise per panel')}, R = {n} replicates")


def plot_suite(stats: list[SettingStats], suite: str, *, with_reference: bool = False,
               confidence: float = 0.95):
    """A matplotlib figure of one suite's cumulative regret curves with bands.

    One panel per value of the varied factor; each agent has the colour it has in every
    figure (:func:`gambit_gym.bench.labels.line_styles`), the references grey and dashed.
    A spare grid cell holds the legend, so no panel is left empty.

    Args:
        stats: the suite's pooled statistics (``summarise(records)`` for that suite).
        suite: the suite's name (titles and panel order).
        with_reference: draw Random and Oracle too.
        confidence: band level.

    Returns:
        The ``matplotlib.figure.Figure``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [s for s in stats if with_reference or not labels.is_reference(s.agent_key)]
    if not shown:
        shown = stats
    panels = panel_order(suite, shown)
    ncols = min(len(panels), 3 if len(panels) != 4 else 2)
    nrows = math.ceil(len(panels) / ncols)
    spare = nrows * ncols - len(panels)
    single = len(panels) == 1  # one panel: the legend goes to its right
    size = (8.0, 4.2) if single else (4.4 * ncols, 3.4 * nrows)
    fig, axes = plt.subplots(nrows, ncols, figsize=size, sharey=True, squeeze=False)
    names = list(dict.fromkeys(s.label for s in shown))
    order = {}
    if suite in suite_defs.SUITES:
        order = {lab: i for i, lab in enumerate(dict.fromkeys(
            s.label for s in suite_defs.get(suite).settings))}
    refs = {s.label for s in shown if labels.is_reference(s.agent_key)}
    names.sort(key=lambda lab: (lab in refs, order.get(lab, len(order)),
                                labels.natural_key(lab)))
    # colours follow the agent configuration (its key), as in every other figure
    key_of = {s.label: s.agent_key for s in shown}
    by_key = labels.line_styles([key_of[lab] for lab in names])
    styles = {lab: by_key[key_of[lab]] for lab in names}
    unit = _common([labels.reward_unit(s.env_id) for s in shown], "reward units")
    for ax, panel in zip(axes.flat, panels):
        for s in sorted((s for s in shown if s.panel == panel),
                        key=lambda s: names.index(s.label)):
            t = np.arange(1, s.horizon + 1)
            lo, hi = s.band(confidence)
            style = styles[s.label]
            ax.plot(t, s.curve_mean, label=labels.config_label(s.label), **style)
            if not labels.is_reference(s.agent_key):
                ax.fill_between(t, lo, hi, color=style["color"], alpha=0.18, lw=0)
        ax.set_title(labels.panel_label(panel), fontsize=10)
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
        ax.margins(x=0)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"cumulative regret ({unit})")
    handles = [plt.Line2D([], [], **{**styles[lab], "lw": 2}) for lab in names]
    texts = [labels.config_label(lab) for lab in names]
    bottom = 0.0
    if single:
        axes[0, 0].legend(handles, texts, loc="center left", bbox_to_anchor=(1.02, 0.5),
                          fontsize=9, frameon=False, title="agent")
    elif spare:  # the legend takes the spare cells: no empty panel
        for ax in axes.flat[len(panels):]:
            ax.set_axis_off()
        axes.flat[len(panels)].legend(handles, texts, loc="center", fontsize=9,
                                      frameon=False, title="agent")
    else:
        fig.legend(handles, texts, loc="lower center", ncol=min(len(names), 4), fontsize=9,
                   frameon=False)
        bottom = 0.04 + 0.035 * math.ceil(len(names) / 4)
    fig.suptitle(figure_title(suite, shown, confidence), fontsize=11)
    fig.tight_layout(rect=(0, bottom, 1, 0.88 if nrows == 1 else 0.95))
    return fig


def figure_name(suite: str, fmt: str) -> str:
    """The file name of a suite's figure: the suite's name reduced to a safe file name.

    Suite names come from the store, which may come from someone else; a name such as
    ``../../x`` or ``/etc/x`` must not become a path out of the output folder.
    """
    return f"{safe_filename(suite, what='suite name')}.{fmt}"


def plot_store(store: ResultStore, out_dir: str | Path, *, suite: str | None = None,
               formats: tuple[str, ...] = FIGURE_FORMATS,
               with_reference: bool = False) -> list[Path]:
    """Write one figure per suite in the store, in each of ``formats``.

    Returns:
        The files written (``<out_dir>/<suite>.<fmt>``, the suite's name made a safe file name
        by :func:`figure_name`).

    Raises:
        ValueError: no results, an unknown format, or an output folder that cannot be written.
    """
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad:
        raise ValueError(f"unknown figure format(s) {bad}; formats: {', '.join(FIGURE_FORMATS)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [suite] if suite else list(store.suites())
    out = output_dir(out_dir)
    written = []
    for name in names:
        records = store.records(suite=name)
        if not records:
            continue
        fig = plot_suite(summarise(records), name, with_reference=with_reference)
        for fmt in formats:
            path = inside(out, figure_name(name, fmt))
            fig.savefig(path, dpi=120, metadata={"Date": None} if fmt == "svg" else None)
            written.append(path)
        plt.close(fig)
    if not written:
        raise ValueError(f"{store.path} holds no results"
                         + (f" for suite {suite!r}" if suite else ""))
    return written
