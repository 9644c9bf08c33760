"""Figures, tables and the report read like a paper's: readable labels, numeric order, titles
with env / T / noise / unit, one colour per agent across figures, references grey and dashed,
no empty panels, metadata as tables, one leaderboard when there is one suite."""

import re

import matplotlib
import pytest
from bench_helpers import make_small_store

from gambit_gym.bench import labels
from gambit_gym.bench.analysis import summarise
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.plots import plot_suite
from gambit_gym.bench.report import write_report
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.suites import get

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_small_store(tmp_path_factory.mktemp("figs") / "small.sqlite")


@pytest.mark.parametrize("key, label", [
    ('GambitIHS-v0{"n_prompts":3}', "GambitIHS-v0 (K = 3)"),
    ('GambitIHS-v0{"n_prompts":3,"noise_level":2}', "GambitIHS-v0 (K = 3, noise 2)"),
    ('GambitIHS-v0{"noise_sd":1.5}@T=500', "GambitIHS-v0 (noise sd 1.5, T = 500)"),
    ('poGAMBITTS{"n_sim_draws":15}', "poGAMBITTS (draws = 15)"),
    ('LinUCB{"alpha":2.0}', "LinUCB (alpha = 2.0)"),
    ("__main__:MyAgent", "MyAgent"),
    ("StdTS", "StdTS"),
])
def test_config_labels(key, label):
    assert labels.config_label(key) == label


def test_numeric_order():
    panels = ["K=15", "K=30", "K=3", "K=40", "K=5"]
    assert sorted(panels, key=labels.natural_key) == ["K=3", "K=5", "K=15", "K=30", "K=40"]


def test_line_styles_are_fixed_and_references_grey_dashed():
    a = labels.line_styles(["StdTS", "poGAMBITTS", "Random", "Oracle", "my_pkg:Mine"])
    b = labels.line_styles(["my_pkg:Mine", "Oracle", "poGAMBITTS"])
    assert a["poGAMBITTS"] == b["poGAMBITTS"] and a["my_pkg:Mine"] == b["my_pkg:Mine"]
    assert len({s["color"] for s in a.values()}) == len(a)
    for ref in ("Random", "Oracle"):
        colour = a[ref]["color"].lstrip("#")
        r, g, bl = (int(colour[i:i + 2], 16) for i in (0, 2, 4))
        assert r == g == bl  # grey
        assert a[ref]["linestyle"] != "-"


def _lines(fig):
    out = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out.setdefault(line.get_label(), set()).add(
                    (matplotlib.colors.to_hex(line.get_color()), str(line.get_linestyle())))
    return out


def test_figures_title_colours_and_panels(store):
    figs = {}
    for name in ("scale_arms", "one_d"):
        figs[name] = plot_suite(summarise(store.records(suite=name)), name,
                                with_reference=True)
    title = figs["scale_arms"]._suptitle.get_text()
    assert "GambitIHS-v0" in title and "T = 30" in title and "noise level 0" in title
    assert "√steps" in title and "R = 4" in title
    panel_titles = [ax.get_title() for ax in figs["scale_arms"].axes if ax.get_title()]
    assert panel_titles == ["K = 3", "K = 5", "K = 15", "K = 30", "K = 40"]
    for fig in figs.values():  # every visible grid cell draws curves or holds the legend
        for ax in fig.axes:
            if ax.axison:
                assert ax.get_lines(), "an empty panel"
            else:
                assert ax.get_legend() is not None
    scale, one_d = _lines(figs["scale_arms"]), _lines(figs["one_d"])
    for agent in set(scale) & set(one_d):  # one colour per agent across figures
        assert scale[agent] == one_d[agent] and len(scale[agent]) == 1, agent
    assert {"StdTS", "Random", "Oracle"} <= set(scale)
    assert next(iter(scale["Random"]))[1] != "-"


def test_readable_leaderboard_headers_with_raw_keys_kept_in_csv(store):
    board = Leaderboard.from_store(store)
    md = board.render("md")
    assert "GambitIHS-v0 (K = 3)" in md and '{"n_prompts"' not in md
    assert '{""n_prompts""' in board.render("csv")  # machine-readable keys stay exact


def test_report_tables_and_one_leaderboard_for_one_suite(tmp_path):
    store = ResultStore(tmp_path / "one.sqlite")
    suite = get("scale_arms").narrow(replicates=2, horizon=10, agents=["StdTS"])
    sweep(suite, store, executor=SerialExecutor(), progress=False, propensities=False)
    text = write_report(store, tmp_path / "site").read_text(encoding="utf-8")
    assert text.count('class="leaderboard"') == 1  # the suite's table is the overall one
    metadata = text[text.index('id="metadata"'):]
    assert '{"' not in metadata  # tables, not JSON blobs
    assert "<th>suite</th>" in metadata and "<th>numpy</th>" in metadata
    settings = text[text.index("<th>wall time (s)</th>"):]
    panels = re.findall(r"<tr><td>(K = \d+)</td>", settings)
    assert list(dict.fromkeys(panels)) == ["K = 3", "K = 5", "K = 15", "K = 30", "K = 40"]


def test_env_page_figures_use_the_same_colours(store):
    from gambit_gym.bench.aggregate_plots import plot_env

    stats = summarise(store.records(suite="one_d"))
    env_fig = plot_env(stats, stats[0].env_key)
    suite_fig = plot_suite(stats, "one_d", with_reference=True)
    env_lines = {label.split(" (R=")[0]: colours for label, colours in _lines(env_fig).items()}
    suite_lines = _lines(suite_fig)
    for agent in ("StdTS", "poGAMBITTS", "Random", "Oracle"):
        assert env_lines[agent] == suite_lines[agent], agent
