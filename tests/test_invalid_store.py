"""Results stores that are garbled, foreign or read-only: one line naming the file and the
problem, exit 2, from every command that opens a store (leaderboard, plot, report, export-obp,
bench --resume); reading a read-only store still works."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess

import pytest

from gambit_gym.bench import suites
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.cli import main

BENCH = ["bench", "--suite", "one_d", "--agents", "Random", "--replicates", "2", "--horizon",
         "10", "--chunk", "2", "--executor", "serial", "--no-progress",
         "--propensity-samples", "20", "--resume"]


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    path = tmp_path_factory.mktemp("stores") / "good.sqlite"
    suite = suites.get("one_d").narrow(replicates=2, horizon=10, agents=["Random", "Oracle"])
    sweep(suite, ResultStore(path), executor=SerialExecutor(), chunk=2, progress=False,
          propensity_samples=20)
    with sqlite3.connect(path) as con:  # one file, no -wal beside it, for copying
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.execute("PRAGMA journal_mode=DELETE")
    return path


def _sql(path, *statements):
    with sqlite3.connect(path) as con:
        for st in statements:
            con.execute(st)


def _make(kind, good, path):
    if kind == "random bytes":
        path.write_bytes(os.urandom(4096))
    elif kind == "text file":
        path.write_text("unit_id,suite\n1,x\n")
    elif kind == "empty file":
        path.write_bytes(b"")
        return path, r"no units|holds no results"
    elif kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    elif kind == "foreign sqlite":
        _sql(path, "CREATE TABLE units (id INTEGER, name TEXT)",
             "INSERT INTO units VALUES (1, 'x')")
    elif kind == "garbled summary":
        shutil.copy(good, path)
        _sql(path, "UPDATE units SET summary = X'00010203'")
    elif kind == "garbled unit json":
        shutil.copy(good, path)
        _sql(path, "UPDATE units SET unit = '{not json'")
    elif kind == "unit json of another shape":
        shutil.copy(good, path)
        _sql(path, "UPDATE units SET unit = '[1, 2, 3]'")
    elif kind == "garbled suite definition":
        shutil.copy(good, path)
        _sql(path, "UPDATE suites SET definition = '7'")
    return path, None


KINDS = ["random bytes", "text file", "truncated", "foreign sqlite", "garbled summary",
         "garbled unit json", "unit json of another shape", "garbled suite definition"]
ROW_KINDS = {"garbled summary", "garbled unit json", "unit json of another shape"}
PATTERN = r"(is not a (gambit-gym )?results store|damaged|not a usable results store)"


def _commands(store, tmp_path):
    return [
        ["leaderboard", store],
        ["leaderboard", store, "--format", "json"],
        ["plot", store, "--out", str(tmp_path / "figs")],
        ["report", store, "--out", str(tmp_path / "site")],
        ["export-obp", store, "--env", "GambitIHS-1D-v0", "--agent", "Random", "--out",
         str(tmp_path / "x.npz")],
        [*BENCH, "--out", store],
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_garbled_and_foreign_stores_are_one_line_exit_2(kind, good, tmp_path, capsys):
    path, _ = _make(kind, good, tmp_path / f"{kind.replace(' ', '_')}.sqlite")
    commands = _commands(str(path), tmp_path)
    if kind in ROW_KINDS:  # bench --resume reads only the unit ids, not the rows
        commands = commands[:-1]
    if kind == "garbled suite definition":  # read by plot and report only
        commands = commands[2:4]
    for args in commands:
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2, (kind, args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (kind, args, err)
        assert str(path) in err and re.search(PATTERN, err), (kind, args, err)


@pytest.fixture
def read_only_store(good, tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "store.sqlite"
    shutil.copy(good, path)
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(path), str(folder)],
                          capture_output=True).returncode != 0:
            pytest.skip("cannot make a file that root cannot write here (chattr +i failed)")
    yield path
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path), str(folder)], check=False)
    os.chmod(folder, 0o755)
    os.chmod(path, 0o644)


def test_read_only_store_reads_and_refuses_writes_in_one_line(read_only_store, tmp_path,
                                                             capsys):
    path = str(read_only_store)
    assert main(["leaderboard", path]) == 0
    assert "Random" in capsys.readouterr().out
    assert main(["plot", path, "--out", str(tmp_path / "figs")]) == 0
    capsys.readouterr()
    code = main([*BENCH, "--out", path])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(r"results store .*store\.sqlite is read-only", err), err
