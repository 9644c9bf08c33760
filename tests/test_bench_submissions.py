"""Submissions: a suite split over two processes merges into the one-run store; conflicting
and mismatched merges are refused; validate passes an honest store and catches a tampered one."""

import io
import json
import shutil
import sqlite3
import subprocess

import numpy as np
import pytest
from bench_helpers import VersionedRandom, cli, subprocess_env

from gambit_gym.bench import suites
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.leaderboard import Leaderboard
from gambit_gym.bench.provenance import ProvenanceMismatch
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.submissions import (
    MergeConflict,
    _differences,
    merge_stores,
    validate_store,
)
from gambit_gym.cli import main

ARGS = ("--suite", "one_d", "--replicates", "4", "--horizon", "20", "--agents",
        "Random,Oracle,StdTS", "--chunk", "2", "--propensity-samples", "50", "--executor",
        "serial", "--no-progress")


def _suite():
    return suites.get("one_d").narrow(replicates=4, horizon=20,
                                      agents=["Random", "Oracle", "StdTS"])


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    root = tmp_path_factory.mktemp("submit")
    whole = ResultStore(root / "whole.sqlite")
    sweep(_suite(), whole, executor=SerialExecutor(), chunk=2, progress=False,
          propensity_samples=50)
    procs = [subprocess.Popen(cli("bench", *ARGS, "--shard", f"{i}/2", "--out",
                                  str(root / f"part{i}.sqlite")),
                              env=subprocess_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (1, 2)]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    return root, whole


def _rows(store):
    return {row["unit_id"]: row for row in store.raw_rows()}


def test_split_suite_merges_into_the_one_run_store(stores, tmp_path):
    root, whole = stores
    a, b = ResultStore(root / "part1.sqlite"), ResultStore(root / "part2.sqlite")
    assert len(a) == len(b) == 3 and not a.unit_ids() & b.unit_ids()
    assert main(["merge", str(tmp_path / "merged.sqlite"), str(a.path), str(b.path)]) == 0
    merged = ResultStore(tmp_path / "merged.sqlite", create=False)
    want, got = _rows(whole), _rows(merged)
    assert set(got) == set(want) and len(got) == 6
    for uid, row in want.items():
        assert _differences(row, got[uid]) == [], uid
        assert json.loads(got[uid]["provenance"])["suite"] == \
            json.loads(row["provenance"])["suite"]
    assert merged.suites() == whole.suites()
    one = json.loads(Leaderboard.from_store(whole, reps=200).render("json"))
    two = json.loads(Leaderboard.from_store(merged, reps=200).render("json"))
    assert one == two


def test_identical_units_are_kept_once(stores, tmp_path):
    root, _ = stores
    copy = tmp_path / "copy.sqlite"
    shutil.copy(root / "part1.sqlite", copy)
    inputs = [root / "part1.sqlite", copy, root / "part2.sqlite"]
    before = [p.read_bytes() for p in inputs]
    report = merge_stores(tmp_path / "m.sqlite", inputs)
    assert (report.units, report.duplicates) == (6, 3)
    assert [p.read_bytes() for p in inputs] == before  # inputs opened read-only


def _tamper(path, agent, delta=0.5, key="final_regret"):
    """Add ``delta`` to the first replicate's stored ``key`` in one unit of ``agent``."""
    with sqlite3.connect(path) as con:
        uid, blob = con.execute("SELECT unit_id, summary FROM units WHERE agent = ? "
                                "ORDER BY unit_id LIMIT 1", (agent,)).fetchone()
        with np.load(io.BytesIO(blob)) as data:
            arrays = {k: data[k].copy() for k in data.files}
        arrays[key][0] += delta
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        con.execute("UPDATE units SET summary = ? WHERE unit_id = ?", (buf.getvalue(), uid))
    return uid


def test_a_submitters_added_agent_merges_with_the_maintainers_store(stores, tmp_path):
    _, whole = stores
    mine = ResultStore(tmp_path / "mine.sqlite")
    sweep(_suite().with_agent(VersionedRandom), mine, executor=SerialExecutor(), chunk=2,
          progress=False, propensity_samples=50)
    report = merge_stores(tmp_path / "board.sqlite", [whole.path, mine.path])
    assert (report.units, report.duplicates) == (8, 6)
    board = Leaderboard.from_store(ResultStore(tmp_path / "board.sqlite"), reps=100)
    assert "bench_helpers:VersionedRandom" in {r.agent for r in board.rows}
    assert ResultStore(tmp_path / "board.sqlite").suites()["one_d"]["settings"] == 4


def test_conflicting_units_are_refused_and_nothing_is_written(stores, tmp_path):
    root, whole = stores
    forged = tmp_path / "forged.sqlite"
    shutil.copy(whole.path, forged)
    uid = _tamper(forged, "StdTS")
    out = tmp_path / "out.sqlite"
    with pytest.raises(MergeConflict, match=f"unit {uid} .* different results "
                                            r"\(final_regret differ\)"):
        merge_stores(out, [root / "part1.sqlite", root / "part2.sqlite", forged])
    assert not out.exists()


def test_mismatched_stores_are_refused(stores, tmp_path, capsys):
    root, whole = stores
    other = ResultStore(tmp_path / "other.sqlite")  # the same suite run with other R
    sweep(_suite().narrow(replicates=2), other, executor=SerialExecutor(), chunk=2,
          progress=False, propensities=False)  # propensities are not compared
    out = tmp_path / "out.sqlite"
    assert main(["merge", str(out), str(whole.path), str(other.path)]) == 2
    err = capsys.readouterr().err
    assert "suite 'one_d' was run with other replicates, horizon or seed" in err
    assert "replicates 4" in err and "replicates 2" in err and err.count("\n") == 1
    assert not out.exists()

    bank = tmp_path / "bank.sqlite"  # the same units claimed on another response bank
    shutil.copy(root / "part2.sqlite", bank)
    with sqlite3.connect(bank) as con:
        con.execute("UPDATE units SET provenance = json_set(provenance, '$.bank.sha256', ?)",
                    ("f" * 64,))
    with pytest.raises(ProvenanceMismatch, match="two different response banks"):
        merge_stores(out, [root / "part1.sqlite", bank])
    assert not out.exists()

    for args, message in [
        ((str(whole.path), str(root / "part1.sqlite")), "already exists"),
        ((str(tmp_path / "n.sqlite"), str(tmp_path / "nope.sqlite")), "no results store"),
    ]:
        assert main(["merge", *args]) == 2
        assert message in capsys.readouterr().err
    assert not (tmp_path / "n.sqlite").exists()


def test_validate_passes_an_honest_store_and_fails_a_tampered_one(stores, tmp_path, capsys):
    _, whole = stores
    checks = validate_store(whole, "one_d", units=10, replicates=2, seed=3)
    assert len(checks) == 6 and all(c.ok for c in checks), [c.mismatches for c in checks]
    assert {c.replicates for c in checks} == {2}

    forged = tmp_path / "forged.sqlite"
    shutil.copy(whole.path, forged)
    uid = _tamper(forged, "StdTS", delta=1e-9)  # a barely visible edit is still caught
    checks = validate_store(ResultStore(forged), "one_d", units=10, replicates=1)
    bad = [c for c in checks if not c.ok]
    assert [c.unit_id for c in bad] == [uid]
    assert any(m.startswith("final regret differs at 1 place(s)") for m in bad[0].mismatches)

    assert main(["validate", str(whole.path), "--suite", "one_d", "--units", "2"]) == 0
    assert "2 of 2 units reproduce bit for bit" in capsys.readouterr().err
    assert main(["validate", str(forged), "--suite", "one_d", "--units", "6",
                 "--replicates", "1"]) == 1
    out = capsys.readouterr()
    assert f"MISMATCH {uid}" in out.out and "do not accept this store" in out.err
    assert main(["validate", str(whole.path), "--suite", "core"]) == 2
    assert "holds no units of suite 'core'" in capsys.readouterr().err
