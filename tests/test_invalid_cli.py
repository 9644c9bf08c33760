"""Every ``gambit-gym`` subcommand, given hostile or mistaken input, prints one line, exits 2,
and writes nothing outside the folder it was given.

Tables of (arguments, message pattern); the stores are real ones written by a tiny sweep, and
the hostile ones are those stores with their suite names rewritten as an attacker would.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from urllib.parse import unquote

import pytest
from bench_helpers import cli, subprocess_env

from gambit_gym.bench import suites
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.cli import main

HOSTILE_NAMES = ["../../escaped", "/tmp/gambit-abs-escape", "..", "a/../../b", "sub/dir",
                 "x\\..\\..\\y", "<b>&'\"", ".hidden"]


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "small.sqlite"
    suite = suites.get("one_d").narrow(replicates=2, horizon=10, agents=["Random", "Oracle"])
    sweep(suite, ResultStore(path), executor=SerialExecutor(), chunk=2, progress=False,
          propensity_samples=20)
    return path


def _rename_suite(src, dst, name):
    shutil.copy(src, dst)
    with sqlite3.connect(dst) as con:
        con.execute("UPDATE units SET suite = ?", (name,))
        con.execute("UPDATE suites SET name = ?", (name,))
    return dst


def _files(root):
    return {p for p in root.rglob("*") if p.is_file()}


def _run(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr().err


# ------------------------------------------------------------------ names that become paths
@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_plot_and_report_keep_hostile_suite_names_inside_out(tmp_path, store_path, capsys,
                                                            name):
    hostile = _rename_suite(store_path, tmp_path / "hostile.sqlite", name)
    box = tmp_path / "box"
    out = box / "inner" / "out"
    before = _files(tmp_path)
    abs_target = "/tmp/gambit-abs-escape"
    for ext in ("png", "svg"):
        if os.path.exists(f"{abs_target}.{ext}"):
            os.remove(f"{abs_target}.{ext}")

    code, err = _run(capsys, "plot", str(hostile), "--out", str(out))
    assert code == 0, err
    code, err = _run(capsys, "report", str(hostile), "--out", str(out / "site"))
    assert code == 0, err

    new = _files(tmp_path) - before
    assert new, "nothing was written"
    for path in new:
        assert out.resolve() in path.resolve().parents, f"{path} written outside {out}"
    for ext in ("png", "svg"):
        assert not os.path.exists(f"{abs_target}.{ext}")
    index = (out / "site" / "index.html").read_text()
    for link in re.findall(r'(?:href|src)="([^"]+)"', index):
        assert ".." not in link.split("/") and not link.startswith("/"), link
        assert (out / "site" / unquote(link)).is_file(), f"broken link {link}"


def test_two_names_that_clean_alike_get_two_files(tmp_path):
    from gambit_gym._paths import safe_filename

    assert safe_filename("one_d") == "one_d"
    assert safe_filename("a/b") != safe_filename("a_b")
    assert "/" not in safe_filename("../../x") and not safe_filename("..").startswith(".")
    with pytest.raises(ValueError, match="suite name must be a non-empty string"):
        safe_filename("", what="suite name")


def test_inside_refuses_a_symlink_out(tmp_path):
    from gambit_gym._paths import inside

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match="outside the output folder"):
        inside(tmp_path / "out", "link/x.png")
    with pytest.raises(ValueError, match="outside the output folder"):
        inside(tmp_path / "out", "../x.png")


# ------------------------------------------------------------------ one-line errors, exit 2
def _read_only_dir(path):
    """A folder nobody can write, root included (chattr +i), or None where that is not possible."""
    path.mkdir()
    os.chmod(path, 0o555)
    if os.geteuid() != 0:
        return path
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        os.chmod(path, 0o755)
        return None
    return path


@pytest.fixture
def read_only(tmp_path):
    path = _read_only_dir(tmp_path / "ro")
    if path is None:
        pytest.skip("cannot make a folder that root cannot write here (chattr +i failed)")
    yield path
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False)
    os.chmod(path, 0o755)


def _cases(tmp_path, store, read_only=None):
    existing = tmp_path / "a_file"
    existing.write_text("x")
    rows = [
        (["plot", store, "--out", str(existing)], r"--out .*a_file is an existing file"),
        (["report", store, "--out", str(existing)], r"--out .*a_file is an existing file"),
        (["leaderboard", store, "-o", str(tmp_path / "missing_dir" / "x.md")],
         r"cannot write --output .*x\.md: the folder .*missing_dir does not exist"),
        (["leaderboard", store, "-o", str(tmp_path)], r"--output .* is a folder"),
        (["export-obp", store, "--unit", "nope", "--out", str(tmp_path / "x.npz")],
         r"no stored units match"),
        (["bench", "--suite", "one_d", "--agents", "Random", "--replicates", "1", "--horizon",
          "5", "--executor", "serial", "--no-progress", "--out", str(tmp_path)],
         r"is a directory; the store is one SQLite file"),
        (["bench", "--suite", "one_d", "--agents", "Random", "--replicates", "1", "--horizon",
          "5", "--executor", "serial", "--no-progress", "--out", str(tmp_path / "s.sqlite"),
          "--add-agent", "gambit_gym.agents.classic:NoSuchAgent"],
         r"NoSuchAgent"),
        (["bench", "--suite", "one_d", "--agents", "Random", "--replicates", "1", "--horizon",
          "5", "--executor", "serial", "--no-progress", "--out", str(tmp_path / "s.sqlite"),
          "--add-agent", "no_such_module_xyz:Agent"],
         r"no_such_module_xyz"),
        (["leaderboard", str(tmp_path / "absent.sqlite")], r"no results store at .*absent"),
    ]
    if read_only is not None:
        rows += [
            (["plot", store, "--out", str(read_only / "figs")], r"cannot create the folder"),
            (["plot", store, "--out", str(read_only)], r"is not writable"),
            (["report", store, "--out", str(read_only)], r"is not writable"),
            (["leaderboard", store, "-o", str(read_only / "x.md")], r"Permission denied|"
             r"Operation not permitted"),
            (["bench", "--suite", "one_d", "--agents", "Random", "--replicates", "1",
              "--horizon", "5", "--executor", "serial", "--no-progress", "--out",
              str(read_only / "s.sqlite")], r"cannot open results store .*can it be written"),
        ]
    return rows


def test_cli_user_errors_are_one_line_exit_2(tmp_path, store_path, capsys):
    for args, pattern in _cases(tmp_path, str(store_path)):
        code, err = _run(capsys, *args)
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert re.search(pattern, err), (args, err)


def test_cli_read_only_folders_are_one_line_exit_2(tmp_path, store_path, capsys, read_only):
    cases = _cases(tmp_path, str(store_path), read_only)[-5:]
    before = _files(tmp_path)
    for args, pattern in cases:
        code, err = _run(capsys, *args)
        assert code == 2, (args, err)
        assert err.count("\n") == 1 and "Traceback" not in err, (args, err)
        assert re.search(pattern, err), (args, err)
    assert not list(read_only.iterdir())
    assert _files(tmp_path) - before == set()


def test_bench_agents_empty_is_refused(tmp_path):
    done = subprocess.run(cli("bench", "--suite", "one_d", "--agents", "", "--out",
                              str(tmp_path / "s.sqlite")),
                          env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "--agents: give at least one name" in done.stderr
    assert not (tmp_path / "s.sqlite").exists()


def _down_url():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


OTHER_COMMANDS = [
    (["demo", "--env", "Nope-v0"], r"Environment `Nope` doesn't exist"),
    (["demo", "--replicates", "0"], r"--replicates must be a positive integer, got 0"),
    (["demo", "--messages", "-1"], r"--messages must be an integer >= 0, got -1"),
    (["demo", "--agents", "Nope"], r"unknown agent 'Nope'"),
    (["bench", "--suite", "one_d", "--propensity-rse", "-0.1", "--out", "{tmp}/s.db"],
     r"--propensity-rse must be >= 0 \(0: always --propensity-samples draws\), got -0.1"),
    (["bank-report", "--bank", "{tmp}/missing.parquet", "--out", "{tmp}/r.md"],
     r"missing\.parquet' does not exist"),
    (["bank-report", "--bank", "{tmp}/not_a_bank.parquet", "--out", "{tmp}/r.md"],
     r"not a readable Parquet"),
    (["build-bank", "--generator", "nope", "--out", "{tmp}/b.parquet"], r"unknown generator"),
    (["build-bank", "--generator", "ollama:tiny", "--base-url", "ftp://x", "--out",
      "{tmp}/b.parquet"], r"base URL must start with http:// or https://"),
    (["build-bank", "--generator", "ollama:tiny", "--base-url", "{down}", "--per-pair", "1",
      "--prompts", "0", "--contexts", "0", "--texts-only", "--no-progress", "--timeout", "1",
      "--out", "{tmp}/b.parquet"],
     r"failed after \d+ tries: connection refused.*finished chunks are kept"),
]


@pytest.mark.parametrize("args, pattern", OTHER_COMMANDS,
                         ids=[" ".join(a[:3]) for a, _ in OTHER_COMMANDS])
def test_other_commands_one_line_exit_2(tmp_path, capsys, args, pattern):
    (tmp_path / "not_a_bank.parquet").write_text("hello")
    args = [a.format(tmp=tmp_path, down=_down_url()) for a in args]
    code, err = _run(capsys, *args)
    assert code == 2, (args, err)
    assert err.count("\n") == 1 and "Traceback" not in err, (args, err)
    assert re.search(pattern, err), (args, err)
