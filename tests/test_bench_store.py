"""The results store: exact moments, no duplicates, atomic records, kill -9 and resume,
two writers on one store."""

import json
import signal
import sqlite3
import subprocess
import time

import numpy as np
import pytest
from bench_helpers import cli, subprocess_env

from gambit_gym.bench import run, suites
from gambit_gym.bench.cli_bench import build_suite, configure
from gambit_gym.bench.executors import SerialExecutor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.units import UnitRecord, execute, merge_moments, plan


def _tiny_suite():
    return suites.get("one_d").narrow(replicates=5, horizon=20, agents=["Random", "StdTS"])


def test_record_round_trip_and_duplicate_is_ignored(tmp_path):
    unit = plan(_tiny_suite(), chunk=5)[1]
    result = run(unit.setting.env_id, unit.setting.agent, horizon=unit.horizon,
                 replicates=unit.n_reps, seed=unit.run_seed, progress=False, propensities=True,
                 n_propensity_samples=100)
    record = UnitRecord.from_result(unit, result)
    store = ResultStore(tmp_path / "s.sqlite")
    assert store.add(record) is True
    assert store.add(record) is False
    assert len(store) == 1
    (back,) = store.records(logs=True)
    assert back.unit == unit
    np.testing.assert_allclose(back.final_regret, result.regret.sum(axis=1))
    np.testing.assert_array_equal(back.actions, result.actions)
    np.testing.assert_array_equal(back.contexts, result.contexts)
    np.testing.assert_allclose(back.rewards, result.rewards, rtol=1e-6)
    np.testing.assert_allclose(back.propensities, result.propensities, rtol=1e-6)
    assert back.versions["numpy"] == np.__version__


def test_a_unit_records_its_cpu_seconds_and_the_store_keeps_them(tmp_path):
    # CPU time (not wall) is what a shared machine lets one compare: a unit of 40x the
    # decisions records several times the CPU seconds of a short one, both kept by the store
    short, long_ = (plan(suites.get("one_d").narrow(replicates=4, horizon=t, agents=["StdTS"]),
                         chunk=4)[0] for t in (25, 1000))
    execute(short)  # the process's first unit pays the imports and the bank; not compared
    store = ResultStore(tmp_path / "s.sqlite")
    for unit in (short, long_):
        store.add(execute(unit))
    cpu = {r.unit.horizon: r.metadata["cpu_time_s"] for r in store.records()}
    assert set(cpu) == {25, 1000}
    assert 0 < cpu[25] < cpu[1000] / 3


def test_merged_chunk_moments_equal_direct_ones():
    rng = np.random.default_rng(0)
    regret = rng.exponential(size=(11, 40))
    cum = np.cumsum(regret, axis=1)
    unit = plan(_tiny_suite(), chunk=5)[0]
    records = []
    for lo, hi in ((0, 4), (4, 5), (5, 11)):
        from gambit_gym.bench.result import RunResult

        res = RunResult(env_id="x", agent="y", regret=regret[lo:hi], rewards=regret[lo:hi],
                        actions=np.zeros((hi - lo, 40), dtype=int))
        records.append(UnitRecord.from_result(unit, res))
    n, mean, var = merge_moments(records)
    assert n == 11
    np.testing.assert_allclose(mean, cum.mean(axis=0))
    np.testing.assert_allclose(var, cum.var(axis=0, ddof=1))


def test_sweep_without_resume_refuses_a_started_store(tmp_path):
    store = ResultStore(tmp_path / "s.sqlite")
    suite = _tiny_suite().narrow(replicates=2)
    report = sweep(suite, store, executor=SerialExecutor(), chunk=1, progress=False,
                   propensities=False)
    assert (report.ran, report.skipped) == (len(plan(suite, chunk=1)), 0)
    with pytest.raises(ValueError, match="pass --resume"):
        sweep(suite, store, executor=SerialExecutor(), chunk=1, progress=False)
    again = sweep(suite, store, executor=SerialExecutor(), chunk=1, progress=False,
                  resume=True)
    assert (again.ran, again.skipped) == (0, report.ran)


def test_store_errors_are_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no results store"):
        ResultStore(tmp_path / "missing.sqlite", create=False)
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a database" * 100)
    with pytest.raises(ValueError, match="not a results store"):
        ResultStore(bad)


# ------------------------------------------------------------------ kill -9, resume, two writers
BENCH_ARGS = ["bench", "--suite", "one_d", "--agents", "Random,Oracle",
              "--add-agent", "bench_helpers:slow_random", "--add-agent-kwargs",
              json.dumps({"delay": 0.4}), "--replicates", "6", "--horizon", "20", "--chunk", "1",
              "--executor", "serial", "--no-progress", "--propensity-samples", "50"]


def _planned_ids(args):
    import argparse

    parser = argparse.ArgumentParser()
    configure(parser)
    ns = parser.parse_args(args[1:] + ["--out", "unused"])
    return {u.unit_id for u in plan(build_suite(ns), chunk=ns.chunk)}


def _count(path):
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _integrity(path):
    with sqlite3.connect(path) as con:
        return con.execute("PRAGMA integrity_check").fetchone()[0]


def _finals(path):
    return {r.unit.unit_id: r.final_regret for r in ResultStore(path, create=False).records()}


def test_kill_9_then_resume_equals_an_uninterrupted_sweep(tmp_path):
    planned = _planned_ids(BENCH_ARGS)
    assert len(planned) == 18
    env = subprocess_env()
    killed = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(cli(*BENCH_ARGS, "--out", str(killed)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while _count(killed) < 4 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = _count(killed)
    assert 4 <= partial < 18, f"sweep not interrupted mid-way ({partial} units)"
    assert _integrity(killed) == "ok"

    refused = subprocess.run(cli(*BENCH_ARGS, "--out", str(killed)), env=env,
                             capture_output=True, text=True, timeout=240)
    assert refused.returncode == 2 and "pass --resume" in refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr

    resumed = subprocess.run(cli(*BENCH_ARGS, "--out", str(killed), "--resume"), env=env,
                             capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{18 - partial} units run, {partial} already stored" in resumed.stderr

    whole = tmp_path / "whole.sqlite"
    done = subprocess.run(cli(*BENCH_ARGS, "--out", str(whole)), env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    a, b = _finals(killed), _finals(whole)
    assert set(a) == set(b) == planned
    assert _count(killed) == 18
    for uid in planned:
        np.testing.assert_array_equal(a[uid], b[uid])


def test_two_processes_writing_one_store(tmp_path):
    args = [a if a != json.dumps({"delay": 0.4}) else json.dumps({"delay": 0.05})
            for a in BENCH_ARGS]
    planned = _planned_ids(args)
    path = tmp_path / "shared.sqlite"
    ResultStore(path)
    env = subprocess_env()
    procs = [subprocess.Popen(cli(*args, "--out", str(path), "--resume"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    assert _integrity(path) == "ok"
    assert set(_finals(path)) == planned
    assert _count(path) == len(planned)


def test_ctrl_c_stops_a_process_pool_sweep_promptly_and_resume_completes(tmp_path):
    args = ["bench", "--suite", "one_d", "--agents", "Random,StdTS", "--replicates", "6",
            "--horizon", "60", "--chunk", "1", "--no-progress", "--propensity-samples", "50"]
    path = tmp_path / "int.sqlite"
    proc = subprocess.Popen(cli(*args, "--workers", "2", "--out", str(path)),
                            env=subprocess_env(), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 240
    while _count(path) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    import os

    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    start = time.time()
    err = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err
    assert time.time() - start < 20
    assert _integrity(path) == "ok" and 2 <= _count(path) < 12
    done = subprocess.run(cli(*args, "--executor", "serial", "--out", str(path), "--resume"),
                          env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert set(_finals(path)) == _planned_ids(args)


def test_a_failing_agent_is_reported_and_the_sweep_goes_on(tmp_path, capsys):
    from gambit_gym.cli import main

    path = tmp_path / "f.sqlite"
    args = ["bench", "--suite", "one_d", "--agents", "Random", "--no-reference",
            "--replicates", "2", "--horizon", "10", "--executor", "serial", "--no-progress",
            "--out", str(path), "--add-agent"]
    # an agent that cannot even be built is stopped by the check before any unit runs
    assert main(args + ["bench_helpers:broken_agent"]) == 2
    err = capsys.readouterr().err
    assert "bench_helpers:broken_agent: building it with kwargs {} failed (RuntimeError: " \
           "this agent is broken on purpose)" in err
    assert len(ResultStore(path)) == 0
    # one that fails mid-run fails its units; the sweep reports them and goes on
    assert main(args + ["bench_helpers:FailsLater"]) == 1
    err = capsys.readouterr().err
    assert "1 units run" in err and "1 failed" in err
    assert "failed: bench_helpers:FailsLater on GambitIHS-1D-v0, replicates 0..1: " \
           "RuntimeError: this agent is broken on purpose" in err
    assert {r.unit.setting.agent for r in ResultStore(path).records()} == {"Random"}
