"""Scoring, the leaderboard in four formats, figures and the CLI on a small real store."""

import csv
import io
import json
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest
from bench_helpers import cli, make_small_store, subprocess_env
from scipy import stats

from gambit_gym.bench.analysis import summarise
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.plots import plot_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return make_small_store(tmp_path_factory.mktemp("lb") / "small.sqlite")


def test_scores_and_intervals_from_the_stored_replicates(store):
    rows = summarise(store.records(suite="one_d"))
    by_agent = {r.agent: r for r in rows}
    assert set(by_agent) == {"Random", "Oracle", "StdTS", "poGAMBITTS"}
    rand, orc = by_agent["Random"], by_agent["Oracle"]
    assert rand.score == pytest.approx(0.0) and orc.score == pytest.approx(1.0)
    assert orc.mean == 0.0 and rand.mean > 0
    for r in rows:
        assert r.n == 4
        half = stats.t.ppf(0.975, 3) * r.final_regret.std(ddof=1) / 2
        assert (r.ci_low, r.ci_high) == pytest.approx((r.mean - half, r.mean + half))
        assert r.curve_mean[-1] == pytest.approx(r.mean)
        assert r.score == pytest.approx((rand.mean - r.mean) / rand.mean)


def test_leaderboard_ranks_and_formats(store):
    board = Leaderboard.from_store(store)
    assert board.rows[0].agent == "Oracle" and board.rows[0].rank == 1
    # StdTS learns little in 30 steps: by IQM it sits beside Random, in one rank group
    assert {r.agent for r in board.rows[-2:]} == {"Random", "StdTS"}
    assert len(board.columns) == 6  # K = 3, 5, 15, 30, 40 and the 1-D env
    assert board.columns[0] == 'GambitIHS-1D-v0' or "n_prompts" in board.columns[0]
    for row in board.rows:
        for cell in row.cells.values():
            assert 1 <= cell.rank <= 4

    md = board.render("md").splitlines()
    assert md[0].startswith("| Rank | Agent | IQM [95% CI] | Median [95% CI] |")
    assert md[1].startswith("|---|")
    assert len({line.count("|") for line in md[:2 + len(board.rows)]}) == 1
    cell_head = next(i for i, line in enumerate(md) if line.startswith("| Rank | Agent | Score |"))
    assert len({line.count("|") for line in md[cell_head:cell_head + 2 + len(board.rows)]}) == 1

    records = list(csv.DictReader(io.StringIO(board.render("csv"))))
    assert len(records) == sum(len(r.cells) for r in board.rows)
    assert {r["agent"] for r in records} == {"Random", "Oracle", "StdTS", "poGAMBITTS"}

    doc = json.loads(board.render("json"))
    assert doc["columns"] == board.columns and doc["rows"][0]["rank"] == 1

    class Cells(HTMLParser):
        def __init__(self):
            super().__init__()
            self.td = 0

        def handle_starttag(self, tag, attrs):
            self.td += tag == "td"

    parser = Cells()
    parser.feed(board.render("html"))
    n = len(board.rows)
    # aggregate table (rank, agent, 4 metrics, envs, runs), the n x n improvement matrix, the
    # cells, the provenance (what, value)
    assert parser.td == (n * 8 + n * (n + 1) + n * (3 + len(board.columns))
                         + 2 * len(board._provenance_rows()))
    with pytest.raises(ValueError, match="unknown format"):
        board.render("xlsx")


def test_figures_png_and_svg(store, tmp_path):
    paths = plot_store(store, tmp_path)
    assert sorted(p.name for p in paths) == ["one_d.png", "one_d.svg", "scale_arms.png",
                                             "scale_arms.svg"]
    from matplotlib import image

    for p in paths:
        if p.suffix == ".png":  # decodes, a figure's size, not one flat colour
            pixels = image.imread(p)
            assert pixels.shape[0] >= 200 and pixels.shape[1] >= 300, pixels.shape
            assert pixels[..., :3].std() > 0.02, f"{p} is blank"
        else:  # matplotlib's SVG keeps each text as a comment: the legend names the agents
            text = p.read_text()
            assert text.lstrip().startswith("<?xml") and "<svg" in text
            agents = ["StdTS", "poGAMBITTS"] if p.stem == "one_d" else ["StdTS"]
            for agent in agents:
                assert f"<!-- {agent} -->" in text, (p.name, agent)


def test_cli_commands_and_errors(store, tmp_path, capsys):
    from gambit_gym.cli import main

    for command in ("bench", "leaderboard", "plot", "report", "export-obp"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0 and "usage:" in capsys.readouterr().out
    out = subprocess.run(cli("leaderboard", str(store.path), "--format", "csv"),
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.startswith("agent,env,replicates")
    assert main(["plot", str(store.path), "--out", str(tmp_path / "f"), "--formats", "svg"]) == 0
    assert (tmp_path / "f" / "one_d.svg").is_file()
    capsys.readouterr()
    for args, message in [
        (("leaderboard", str(tmp_path / "nope.sqlite")), "no results store"),
        (("bench", "--suite", "nope", "--out", str(tmp_path / "x.sqlite")), "unknown suite"),
        (("bench", "--suite", "one_d", "--agents", "Nope", "--out", str(tmp_path / "x.sqlite")),
         "has no agent 'Nope'"),
        (("bench", "--suite", "one_d", "--add-agent", "nosuchmod:X",
          "--out", str(tmp_path / "x.sqlite")), "cannot import module"),
        (("leaderboard", str(store.path), "--suite", "core"), "holds no results"),
        (("export-obp", str(store.path), "--out", str(tmp_path / "x.npz")), "--unit ID"),
        (("plot", str(store.path), "--formats", "gif"), "unknown figure format"),
    ]:
        assert main(list(args)) == 2, args
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_overall_score_is_mean_of_env_scores(store):
    board = Leaderboard.from_store(store)
    for row in board.rows:
        scores = [c.score for c in row.cells.values()]
        assert row.score == pytest.approx(np.mean(scores))


def test_leaderboard_ranks_by_iqm_of_replicate_scores(store):
    board = Leaderboard.from_store(store, reps=500)
    stats_rows = summarise(store.records(), by_suite=False)
    for row in board.rows:
        runs = np.concatenate([s.replicate_scores() for s in stats_rows
                               if s.agent_key == row.agent])
        assert row.iqm.point == pytest.approx(stats.trim_mean(runs, 0.25))
        assert row.iqm.low <= row.iqm.point <= row.iqm.high
    iqms = [r.iqm.point for r in board.rows]
    assert iqms == sorted(iqms, reverse=True)
    # Random and StdTS do not differ on 30 steps: their intervals overlap, they share ranks
    by_agent = {r.agent: r for r in board.rows}
    assert by_agent["Random"].iqm.overlaps(by_agent["StdTS"].iqm)
    assert by_agent["Random"].rank_text == by_agent["StdTS"].rank_text == "3–4"
    assert by_agent["Oracle"].rank_text == "1"
    # poGAMBITTS ran on the 1-D env only: its aggregates cover 1 env, 4 runs
    assert board.aggregates.n_runs["poGAMBITTS"] == {"GambitIHS-1D-v0": 4}
    md_row = next(line for line in board.render("md").splitlines()
                  if line.startswith("| 2 | poGAMBITTS |"))
    assert md_row.endswith("| 1 | 4 |")


def test_json_carries_every_aggregate_and_the_improvement_matrix(store):
    doc = json.loads(Leaderboard.from_store(store, reps=300).render("json"))
    again = json.loads(Leaderboard.from_store(store, reps=300).render("json"))
    assert doc == again  # seeded bootstrap: same store, same intervals
    aggs = doc["aggregates"]
    agents = [a["agent"] for a in aggs["agents"]]
    assert set(agents) == {"Random", "Oracle", "StdTS", "poGAMBITTS"}
    for entry in aggs["agents"]:
        for metric in ("iqm", "median", "mean", "optimality_gap"):
            assert set(entry[metric]) == {"point", "low", "high"}
    poi = aggs["probability_of_improvement"]
    for x in agents:
        assert set(poi[x]) == set(agents) - {x}
        for y in poi[x]:
            assert poi[x][y]["point"] + poi[y][x]["point"] == pytest.approx(1.0)
    assert poi["Oracle"]["Random"]["point"] == pytest.approx(1.0)
    profiles = aggs["performance_profiles"]
    assert len(profiles["Oracle"]["fraction"]) == len(profiles["thresholds"])
    assert aggs["method"]["reps"] == 300
    other = json.loads(Leaderboard.from_store(store, reps=300, seed=1).render("json"))
    assert other["aggregates"]["agents"] != aggs["agents"]  # other seed, other intervals


def test_narrowed_bench_runs_the_references_and_says_why_a_score_is_missing(tmp_path, capsys):
    from gambit_gym.bench.store import ResultStore
    from gambit_gym.cli import main

    common = ["bench", "--suite", "one_d", "--agents", "StdTS", "--replicates", "2",
              "--horizon", "10", "--executor", "serial", "--no-progress", "--no-propensities"]
    assert main(common + ["--out", str(tmp_path / "with.sqlite")]) == 0
    board = Leaderboard.from_store(ResultStore(tmp_path / "with.sqlite", create=False))
    assert {r.agent for r in board.rows} == {"StdTS", "Random", "Oracle"}
    assert all(np.isfinite(r.score) for r in board.rows) and not board.score_notes()
    assert main(common + ["--no-reference", "--out", str(tmp_path / "without.sqlite")]) == 0
    board = Leaderboard.from_store(ResultStore(tmp_path / "without.sqlite", create=False))
    assert [r.agent for r in board.rows] == ["StdTS"]
    note = "No score on GambitIHS-1D-v0: no Random run on this env config"
    for text in (board.render("md"), board.render("html"), board.render("json")):
        assert note in text
    capsys.readouterr()
