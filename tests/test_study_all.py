"""The whole-study command (reproduce_study.py --all): every figure suite into one store,
resumable after kill -9 without losing or duplicating a unit (tiny R and T)."""

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bench_helpers import subprocess_env

from gambit_gym.bench import suites
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.units import plan

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "reproduce_study.py"
SUITES = ("one_d", "misspecification")
ARGS = ["--all", "--suites", ",".join(SUITES), "--replicates", "3", "--horizon", "15",
        "--chunk", "1", "--executor", "serial", "--no-progress"]


def _planned() -> set[str]:
    return {u.unit_id for name in SUITES
            for u in plan(suites.get(name).narrow(replicates=3, horizon=15), chunk=1)}


def _count(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(path, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_all_suites_resume_after_kill_9_without_losing_or_duplicating_units(tmp_path):
    planned = _planned()
    assert len(planned) > 20
    store = tmp_path / "study.db"
    cmd = [sys.executable, str(SCRIPT), *ARGS, "--store", str(store)]
    env = subprocess_env()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while _count(store) < 5 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    partial = _count(store)
    assert 5 <= partial < len(planned), f"not interrupted mid-way ({partial} units)"

    timings = tmp_path / "timings.json"
    done = subprocess.run([*cmd, "--timings", str(timings)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert f"{len(planned)} units, {partial} already in" in done.stdout
    ran = sum(int(line.split(": ")[1].split(" units run")[0])
              for line in done.stdout.splitlines() if line.startswith("["))
    assert ran == len(planned) - partial  # nothing stored twice, nothing run again
    stored = ResultStore(store, create=False)
    assert stored.unit_ids() == planned and len(stored) == len(planned)
    assert set(json.loads(timings.read_text())["suites"]) == set(SUITES)


def test_the_four_findings_page_reuses_the_suites_sweep_and_analysis(tmp_path):
    """Default mode: each finding is its bench.suites suite narrowed (no restated grid), run by
    the sweep into the store, scored by analysis; its rows equal bench.run's numbers with the
    library's one interval, and a second run only reads the store."""
    import numpy as np

    from gambit_gym.bench import run
    from gambit_gym.core.intervals import mean_interval

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import reproduce_study as rs
    finally:
        sys.path.remove(str(SCRIPT.parent))
    fig3 = rs.figure_suite("fig3")
    assert [s.env_id for s in fig3.settings] == list(suites.MISSPEC_ENVS.values())
    assert (fig3.replicates, fig3.horizon, fig3.seed) == (suites.STUDY_REPLICATES,
                                                         suites.STUDY_HORIZON, suites.STUDY_SEED)
    store = tmp_path / "s.db"
    args = rs.Args(replicates=3, horizon=12, blocks=["fig2", "fig4"], store=str(store),
                   chunk=2, executor="serial", out=str(tmp_path / "page.md"))
    rows = rs.run_blocks(args)
    assert [r["setting"] for r in rows if r["block"] == "fig4"] == [
        f"K={k}" for k in suites.STUDY_N_PROMPTS for _ in ("StdTS", "poGAMBITTS")]
    row = next(r for r in rows if r["setting"] == "K=5" and r["agent"] == "poGAMBITTS")
    direct = run("GambitIHS-v0", "poGAMBITTS", horizon=12, replicates=3, seed=args.seed,
                 env_kwargs={"n_prompts": 5}, progress=False)
    mean, half = mean_interval(direct.final_regret())
    np.testing.assert_allclose([row["mean"], row["half"]], [mean, half], rtol=1e-12)
    units = _count(store)
    assert units == 2 * len(rows)  # 3 replicates in chunks of 2
    assert rs.run_blocks(args) == rows  # read back from the store, nothing run again
    assert _count(store) == units
