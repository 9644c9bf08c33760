"""kill -9 of a running process-pool sweep: no worker outlives it, the store refuses the dead
sweep's writes, and a resume gives exactly the records of an uninterrupted run."""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from bench_helpers import cli, subprocess_env

from gambit_gym.bench.store import NotOwnerError, ResultStore

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the process table from /proc")

ARGS = ["bench", "--suite", "one_d", "--agents", "Random,StdTS", "--replicates", "6",
        "--horizon", "80", "--chunk", "1", "--no-progress", "--propensity-samples", "50"]


def _stat(pid):
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])


def _descendants(root):
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st is not None:
                children.setdefault(st[1], []).append(int(name))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _alive(pid):
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def _count(path):
    try:
        with sqlite3.connect(path, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _records(path):
    return {r.unit.unit_id: r for r in ResultStore(path, create=False).records(logs=True)}


def test_kill_9_leaves_no_worker_and_resume_equals_an_uninterrupted_run(tmp_path):
    env = subprocess_env()
    killed = tmp_path / "killed.sqlite"
    proc = subprocess.Popen(cli(*ARGS, "--workers", "2", "--out", str(killed)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while _count(killed) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    workers = _descendants(proc.pid)
    assert workers, "the sweep started no worker processes"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gone_by = time.time() + 5
    while any(_alive(p) for p in workers) and time.time() < gone_by:
        time.sleep(0.1)
    left = [p for p in workers if _alive(p)]
    for p in left:  # do not leave them behind even when the test fails
        os.kill(p, signal.SIGKILL)
    assert not left, f"processes still running 5 s after kill -9 of the sweep: {left}"
    partial = _count(killed)

    with sqlite3.connect(killed) as con:
        (stale,) = con.execute("SELECT token FROM writers").fetchone()
    resumed = subprocess.run(cli(*ARGS, "--workers", "2", "--out", str(killed), "--resume"),
                             env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    planned = int(re.search(r"(\d+) planned", resumed.stderr).group(1))
    assert 2 <= partial < planned, f"sweep not interrupted mid-way ({partial} units)"
    assert f"{planned - partial} units run, {partial} already stored" in resumed.stderr
    with sqlite3.connect(killed) as con:
        assert con.execute("SELECT COUNT(*) FROM writers").fetchone()[0] == 0

    # a late write under the dead sweep's claim is refused
    store = ResultStore(killed, create=False)
    some = next(iter(_records(killed).values()))
    with pytest.raises(NotOwnerError, match="no longer owns this store"):
        store.add(some, writer=stale)

    whole = tmp_path / "whole.sqlite"
    done = subprocess.run(cli(*ARGS, "--executor", "serial", "--out", str(whole)), env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    a, b = _records(killed), _records(whole)
    assert set(a) == set(b) and len(a) == planned
    for uid in a:
        for field in ("final_regret", "cum_mean", "cum_m2", "actions", "rewards",
                      "propensities", "contexts"):
            np.testing.assert_array_equal(getattr(a[uid], field), getattr(b[uid], field),
                                          err_msg=f"{uid} {field}")


def _write_from_child(path, token, conn):
    store = ResultStore(path, create=False)
    record = store.records(logs=True)[0]
    try:
        store.add(record, writer=token)
        conn.send("written")
    except NotOwnerError as exc:
        conn.send(str(exc))


def test_a_process_other_than_the_claimant_cannot_write_under_its_claim(tmp_path):
    from gambit_gym.bench import suites
    from gambit_gym.bench.executors import SerialExecutor, sweep

    path = tmp_path / "s.sqlite"
    suite = suites.get("one_d").narrow(replicates=1, horizon=5, agents=["Random"])
    sweep(suite, ResultStore(path), executor=SerialExecutor(), progress=False,
          propensity_samples=10)
    store = ResultStore(path)
    token = store.claim()
    ctx = mp.get_context("fork")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_write_from_child, args=(path, token, theirs))
    child.start()
    child.join(60)
    assert "no longer owns this store" in ours.recv()
    record = store.records(logs=True)[0]
    assert store.add(record, writer=token) is False  # the claimant itself may (a duplicate)
    store.release(token)
    with pytest.raises(NotOwnerError):
        store.add(record, writer=token)
