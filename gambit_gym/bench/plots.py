"""Cumulative-regret figures with 95% bands, one figure per suite, laid out like the study's.

One panel per value of the suite's varying factor (K, noise level, dimension, working
dimension; the setting's ``panel``), one line per agent configuration (its ``label``), shared
y axis within a figure, as in the study's Figures 2-9. The reference agents (Random and Oracle)
are left out unless asked for: Oracle is the zero line and Random would flatten the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gambit_gym._paths import inside, output_dir, safe_filename
from gambit_gym.bench import suites as suite_defs
from gambit_gym.bench.analysis import SettingStats, summarise
from gambit_gym.bench.store import ResultStore

FIGURE_FORMATS: tuple[str, ...] = ("png", "svg")


def _panel_order(suite: str, stats: list[SettingStats]) -> list[str]:
    seen = list(dict.fromkeys(s.panel for s in stats))
    if suite in suite_defs.SUITES:
        order = list(dict.fromkeys(s.panel for s in suite_defs.get(suite).settings))
        return [p for p in order if p in seen] + [p for p in seen if p not in order]
    return sorted(seen)


def plot_suite(stats: list[SettingStats], suite: str, *, with_reference: bool = False,
               confidence: float = 0.95):
    """A matplotlib figure of one suite's cumulative regret curves with bands.

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

    shown = [s for s in stats if with_reference or s.agent_key not in ("Random", "Oracle")]
    if not shown:
        shown = stats
    panels = _panel_order(suite, shown)
    ncols = min(len(panels), 3 if len(panels) != 4 else 2)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), sharey=True,
                             squeeze=False)
    labels = list(dict.fromkeys(s.label for s in shown))
    if suite in suite_defs.SUITES:
        order = {lab: i for i, lab in enumerate(dict.fromkeys(
            s.label for s in suite_defs.get(suite).settings))}
        labels.sort(key=lambda lab: order.get(lab, len(order)))
    colours = {lab: plt.get_cmap("tab10")(i % 10) for i, lab in enumerate(labels)}
    for ax, panel in zip(axes.flat, panels):
        for s in (s for s in shown if s.panel == panel):
            t = np.arange(1, s.horizon + 1)
            lo, hi = s.band(confidence)
            ax.plot(t, s.curve_mean, color=colours[s.label], label=s.label, lw=1.4)
            ax.fill_between(t, lo, hi, color=colours[s.label], alpha=0.2, lw=0)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step t")
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel("cumulative regret")
    handles = [plt.Line2D([], [], color=colours[lab], lw=2) for lab in labels]
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
               frameon=False)
    n = min(s.n for s in shown)
    fig.suptitle(f"{suite}: mean cumulative regret, {confidence:.0%} bands (R≥{n})",
                 fontsize=11)
    legend_rows = math.ceil(len(labels) / 4)
    fig.tight_layout(rect=(0, 0.04 + 0.035 * legend_rows, 1, 0.95))
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
