"""A static HTML report of a results store that opens from disk with no server.

``write_report(store, out_dir)`` writes ``index.html`` (the overall leaderboard, the aggregate
figures, links to one page per env configuration under ``envs/``, one table and one figure per
suite, and the run metadata), the figures as PNG and SVG under ``figures/`` (referenced by
relative paths) and the leaderboard as ``leaderboard.{md,csv,json}``. The page
has no scripts and no external resources.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
from pathlib import Path
from urllib.parse import quote

from gambit_gym._paths import inside, output_dir
from gambit_gym.bench.analysis import summarise
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.plots import figure_name, plot_store
from gambit_gym.bench.report_pages import aggregate_section, env_pages
from gambit_gym.bench.store import ResultStore

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; }
th { background: #f3f3f3; } td:nth-child(2) { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; }
.meta td, .meta th { text-align: left; }
"""


def _when(t: float | None) -> str:
    if t is None:
        return "–"
    return _dt.datetime.fromtimestamp(t, tz=_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def write_report(store: ResultStore, out_dir: str | Path) -> Path:
    """Write the report; returns the path of ``index.html``.

    Every file lands inside ``out_dir``: figure names come from :func:`figure_name` (a suite
    name from the store is never used as a path), and links are built from those names.

    Raises:
        ValueError: the store holds no results, or ``out_dir`` cannot be written.
    """
    esc = html.escape
    out = output_dir(out_dir)
    overall = Leaderboard.from_store(store)
    for fmt in ("md", "csv", "json"):
        inside(out, f"leaderboard.{fmt}").write_text(overall.render(fmt), encoding="utf-8")
    figures = plot_store(store, out / "figures")
    info = store.info()
    suites = store.suites()

    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
             f"<title>gambit-gym report: {esc(store.path.name)}</title><style>{_CSS}</style>"
             f"</head><body><h1>gambit-gym benchmark report</h1>"
             f"<p>Store <code>{esc(str(store.path))}</code>: {info['units']} units, "
             f"{info['replicates']} replicates, {info['compute_s']:.1f} s of compute.</p>",
             "<h2 id=\"leaderboard\">Leaderboard (all suites)</h2>",
             "<p>Agents ranked by IQM with its interval, the probability that each beats "
             "each other, then per env: mean cumulative regret at T ± half-width of its 95% "
             "interval (normalised score: uniform random 0, oracle 1) #rank within the env. "
             "Files: <a href=\"leaderboard.md\">Markdown</a>, "
             "<a href=\"leaderboard.csv\">CSV</a>, <a href=\"leaderboard.json\">JSON</a>.</p>",
             overall.to_html(full_page=False),
             aggregate_section(overall, out),
             env_pages(overall, summarise(store.records(), by_suite=False), out, _CSS)]
    for name, definition in suites.items():
        records = store.records(suite=name)
        if not records:
            continue
        stats = summarise(records)
        parts.append(f"<h2 id=\"suite-{esc(name)}\">Suite <code>{esc(name)}</code></h2>")
        if definition.get("description"):
            parts.append(f"<p>{esc(definition['description'])}</p>")
        png = f"figures/{quote(figure_name(name, 'png'))}"
        svg = f"figures/{quote(figure_name(name, 'svg'))}"
        if inside(out, f"figures/{figure_name(name, 'png')}").is_file():
            parts.append(f"<p><a href=\"{esc(svg)}\"><img src=\"{esc(png)}\" "
                         f"alt=\"cumulative regret, suite {esc(name)}\"></a></p>")
        parts.append(Leaderboard.from_stats(stats).to_html(full_page=False))
        parts.append("<table class=\"meta\"><thead><tr><th>panel</th><th>agent</th>"
                     "<th>env</th><th>T</th><th>R</th><th>wall time (s)</th></tr></thead><tbody>")
        for s in stats:
            parts.append(f"<tr><td>{esc(s.panel)}</td><td>{esc(s.agent_key)}</td>"
                         f"<td>{esc(s.env_key)}</td><td>{s.horizon}</td><td>{s.n}</td>"
                         f"<td>{s.wall_time_s:.2f}</td></tr>")
        parts.append("</tbody></table>")
    parts.append("<h2 id=\"metadata\">Run metadata</h2><table class=\"meta\"><tbody>")
    rows = [("store", info["path"]), ("units", info["units"]),
            ("first unit", _when(info["first"])), ("last unit", _when(info["last"])),
            ("report written", _when(_dt.datetime.now(_dt.timezone.utc).timestamp())),
            ("suites", json.dumps(suites, sort_keys=True))]
    rows += [(f"versions ({i + 1})", json.dumps(v, sort_keys=True))
             for i, v in enumerate(info["versions"])]
    parts += [f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows]
    parts.append("</tbody></table>")
    parts.append("<p>Figures: " + ", ".join(
        f"<a href=\"figures/{esc(quote(p.name))}\">{esc(p.name)}</a>" for p in figures) + "</p>")
    parts.append("</body></html>\n")
    index = inside(out, "index.html")
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(index)
    return index
