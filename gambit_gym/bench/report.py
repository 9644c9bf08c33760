"""A static HTML report of a results store that opens from disk with no server.

``write_report(store, out_dir)`` writes ``index.html`` (the overall leaderboard, the aggregate
figures, links to one page per env configuration under ``envs/``, one figure, leaderboard and
settings table per suite (no second leaderboard when there is one suite), and the run metadata
as tables), the figures as PNG and SVG under ``figures/`` (referenced by relative paths) and
the leaderboard as ``leaderboard.{md,csv,json}``. The page
has no scripts and no external resources.
"""

from __future__ import annotations

import datetime as _dt
import html
from pathlib import Path
from urllib.parse import quote

from gambit_gym._paths import inside, output_dir
from gambit_gym.bench.analysis import SettingStats, summarise
from gambit_gym.bench.labels import config_label, is_reference, natural_key, panel_label
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.plots import figure_name, panel_order, plot_store
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


def _table(head: list[str], rows: list[list[str]], cls: str = "meta") -> str:
    esc = html.escape
    return (f"<table class=\"{cls}\"><thead><tr>"
            + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                      for row in rows) + "</tbody></table>")


def _settings_table(stats: list[SettingStats], suite: str) -> str:
    """Per setting of a suite: panel, agent, env, T, R, wall time; in the figure's order."""
    panels = panel_order(suite, stats)
    ordered = sorted(stats, key=lambda s: (panels.index(s.panel), is_reference(s.agent_key),
                                           natural_key(config_label(s.agent_key))))
    rows = [[panel_label(s.panel), config_label(s.agent_key), config_label(s.env_key),
             s.horizon, s.n, f"{s.wall_time_s:.2f}"] for s in ordered]
    return _table(["panel", "agent", "env", "T", "R", "wall time (s)"], rows)


def _suites_table(suites: dict[str, dict]) -> str:
    """One row per suite: its name, R, T, seed, number of settings and description."""
    rows = [[name, d.get("replicates", "–"), d.get("horizon", "–"), d.get("seed", "–"),
             len(d["settings"]) if isinstance(d.get("settings"), list) else
             d.get("settings", "–"), d.get("description", "")]
            for name, d in suites.items()]
    return "<h3>Suites</h3>" + _table(["suite", "R", "T", "seed", "settings", "description"],
                                      rows)


def _versions_table(versions: list[dict[str, str]]) -> str:
    """Package and platform versions the units ran with, one row per distinct set."""
    keys = sorted({k for v in versions for k in v}, key=natural_key)
    rows = [[v.get(k, "–") for k in keys] for v in versions]
    return "<h3>Versions</h3>" + _table(keys, rows) if keys else ""


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
        if len(suites) > 1:  # with one suite, its leaderboard is the one above
            parts.append(Leaderboard.from_stats(stats).to_html(full_page=False))
        parts.append(_settings_table(stats, name))
    parts.append("<h2 id=\"metadata\">Run metadata</h2>")
    rows = [("store", info["path"]), ("units", info["units"]),
            ("first unit", _when(info["first"])), ("last unit", _when(info["last"])),
            ("report written", _when(_dt.datetime.now(_dt.timezone.utc).timestamp()))]
    parts.append("<table class=\"meta\"><tbody>" + "".join(
        f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in rows)
        + "</tbody></table>")
    parts.append(_suites_table(suites))
    parts.append(_versions_table(info["versions"]))
    parts.append("<p>Figures: " + ", ".join(
        f"<a href=\"figures/{esc(quote(p.name))}\">{esc(p.name)}</a>" for p in figures) + "</p>")
    parts.append("</body></html>\n")
    index = inside(out, "index.html")
    tmp = index.with_suffix(".html.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    tmp.replace(index)
    return index
