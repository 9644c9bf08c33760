"""The report's aggregate section and its pages per env configuration.

:func:`aggregate_section` draws the aggregate figures (intervals per agent, the
probability-of-improvement heatmap, performance profiles) into ``aggregate/`` (apart from
``figures/``, whose file names come from suite names) and returns the section's HTML.
:func:`env_pages` writes ``envs/<name>.html`` per leaderboard column (its regret curves and
its table) and returns the index's list of links. File names come from
:func:`gambit_gym._paths.safe_filename`, never straight from the store.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from gambit_gym._paths import inside, safe_filename
from gambit_gym.bench.aggregate_plots import (
    plot_env,
    plot_improvement,
    plot_intervals,
    plot_profiles,
)
from gambit_gym.bench.analysis import SettingStats
from gambit_gym.bench.labels import config_label
from gambit_gym.bench.leaderboard import Leaderboard, column_names

AGGREGATE_FIGURES: tuple[tuple[str, str], ...] = (
    ("intervals", "aggregate scores with intervals per agent"),
    ("improvement", "probability of improvement heatmap"),
    ("profiles", "performance profiles"),
)


def _save(fig, out: Path, rel_stem: str) -> tuple[str, str]:
    """Save a figure as PNG and SVG under ``out``; returns their relative URLs."""
    import matplotlib.pyplot as plt

    urls = []
    for fmt in ("png", "svg"):
        rel = f"{rel_stem}.{fmt}"
        fig.savefig(inside(out, rel), dpi=120, metadata={"Date": None} if fmt == "svg" else None)
        urls.append("/".join(quote(part) for part in rel.split("/")))
    plt.close(fig)
    return urls[0], urls[1]


def _figure(png: str, svg: str, alt: str) -> str:
    esc = html.escape
    return f'<p><a href="{esc(svg)}"><img src="{esc(png)}" alt="{esc(alt)}"></a></p>'


def aggregate_section(board: Leaderboard, out: Path) -> str:
    """Draw the aggregate figures of ``board`` into ``out/aggregate``; the section's HTML.

    Empty where the board has no aggregates (no Random rows to normalise by).
    """
    aggs = board.aggregates
    if aggs is None:
        return ""
    inside(out, "aggregate").mkdir(parents=True, exist_ok=True)
    parts = ['<h2 id="aggregates">Aggregate metrics</h2>',
             "<p>Over every run on every env configuration, normalised per replicate "
             "(uniform random 0, oracle 1). Bars: 95% stratified-bootstrap intervals "
             f"({aggs.reps} resamples, seed {aggs.seed}); tick: the estimate. Agents whose IQM "
             "intervals overlap share a rank range in the table above.</p>"]
    drawers = {"intervals": plot_intervals, "improvement": plot_improvement,
               "profiles": plot_profiles}
    for name, alt in AGGREGATE_FIGURES:
        png, svg = _save(drawers[name](aggs), out, f"aggregate/{name}")
        parts.append(_figure(png, svg, alt))
    return "\n".join(parts)


def env_page_name(column: str) -> str:
    """The page file name of a leaderboard column (safe, unique per column)."""
    return safe_filename(column, what="env configuration") + ".html"


def env_pages(board: Leaderboard, stats: list[SettingStats], out: Path, css: str) -> str:
    """Write one page per env column (regret curves and table); the index's list of links.

    Args:
        board: the overall leaderboard (its columns and cells).
        stats: the statistics it was built from (``summarise(records, by_suite=False)``).
        out: the report folder; pages go to ``out/envs``.
        css: the report's style sheet.
    """
    esc = html.escape
    by_column: dict[str, list[SettingStats]] = {}
    for s, col in zip(stats, column_names(stats)):
        by_column.setdefault(col, []).append(s)
    inside(out, "envs").mkdir(parents=True, exist_ok=True)
    links = []
    for col in board.columns:
        page = env_page_name(col)
        stem = page[:-len(".html")]
        rows = sorted((r for r in board.rows if col in r.cells), key=lambda r: r.cells[col].rank)
        curves = sorted(by_column.get(col, []), key=lambda s: s.agent_key)
        png, svg = _save(plot_env(curves, col), out, f"envs/{stem}")
        body = []
        for r in rows:
            c = r.cells[col]
            half = (c.ci_high - c.ci_low) / 2
            score = f"{c.score:.2f}" if c.score == c.score else "–"
            body.append(f"<tr><td>{c.rank:g}</td><td>{esc(r.agent)}</td><td>{c.n}</td>"
                        f"<td>{c.mean:.2f} ± {half:.2f}</td>"
                        f"<td>[{c.ci_low:.2f}, {c.ci_high:.2f}]</td><td>{score}</td></tr>")
        html_page = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>gambit-gym '
            f"env: {esc(col)}</title><style>{css}</style></head><body>"
            f'<p><a href="../index.html">← report</a></p><h1>{esc(config_label(col))}</h1>'
            f"<p>Configuration <code>{esc(col)}</code></p>"
            + _figure(png.split("/", 1)[1], svg.split("/", 1)[1],
                      f"cumulative regret on {col}")
            + '<table class="env"><thead><tr><th>Rank</th><th>Agent</th><th>R</th>'
            "<th>Mean regret at T ± half-width</th><th>95% CI</th><th>Score</th></tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>"
            "<p>Mean cumulative regret at T over R replicates, its 95% Student-t interval, and "
            "the normalised score (uniform random 0, oracle 1); rank 1 = lowest regret.</p>"
            "</body></html>\n")
        inside(out, f"envs/{page}").write_text(html_page, encoding="utf-8")
        links.append(f'<li><a href="envs/{esc(quote(page))}">{esc(config_label(col))}</a> '
                     f"({len(rows)} agents)</li>")
    return ('<h2 id="envs">Env configurations</h2><p>One page per configuration: its regret '
            "curves and table.</p><ul class=\"envs\">" + "".join(links) + "</ul>")
