"""Harness benchmarks, run by hand; they print ratios.

1. ``study``: the study's experiment blocks through the harness (default: every block, R=250,
   T as in the study, all the block's agents, propensities off as in the study), one fresh store
   per block; prints the wall time per block beside the study's 50-70 minutes per block on 16
   cores. ``--device cuda`` puts the ensemble agents on a GPU.
2. ``resume``: a sweep killed (SIGKILL) once half of its units are stored, then resumed; the
   resumed run's time must be at most 55% of an uninterrupted sweep's (it pays its own start-up
   and re-runs the units in flight when killed).

Examples::

    python benchmarks/bench_harness.py study --blocks scale_arms --workers 2
    python benchmarks/bench_harness.py study --replicates 20 --horizon 200   # a quick look
    python benchmarks/bench_harness.py resume --suite scale_arms --replicates 40 --horizon 300
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gambit_gym.bench import suites  # noqa: E402
from gambit_gym.bench.executors import make_executor, sweep  # noqa: E402
from gambit_gym.bench.store import ResultStore  # noqa: E402
from gambit_gym.bench.units import plan  # noqa: E402

STUDY_MINUTES = (50, 70)


@dataclass
class Args:
    """Command-line arguments (one dataclass at the script's edge)."""

    what: str
    blocks: list[str]
    suite: str
    replicates: int | None
    horizon: int | None
    agents: list[str] | None
    workers: int | None
    executor: str
    device: str | None
    chunk: int
    propensities: bool
    out: str | None


def parse() -> Args:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=("study", "resume"))
    p.add_argument("--blocks", default=",".join(suites.STUDY_BLOCKS))
    p.add_argument("--suite", default="scale_arms", help="suite of the resume benchmark")
    p.add_argument("--replicates", type=int)
    p.add_argument("--horizon", type=int)
    p.add_argument("--agents", help="comma-separated subset of each block's agents")
    p.add_argument("--workers", type=int)
    p.add_argument("--executor", default="local")
    p.add_argument("--device")
    p.add_argument("--chunk", type=int, default=50)
    p.add_argument("--propensities", action="store_true")
    p.add_argument("--out", help="directory for the stores (default: a temporary one)")
    a = p.parse_args()
    return Args(what=a.what, blocks=[b for b in a.blocks.split(",") if b], suite=a.suite,
                replicates=a.replicates, horizon=a.horizon,
                agents=a.agents.split(",") if a.agents else None, workers=a.workers,
                executor=a.executor, device=a.device, chunk=a.chunk,
                propensities=a.propensities, out=a.out)


def study(args: Args, out: Path) -> None:
    rows = []
    for block in args.blocks:
        suite = suites.get(block)
        agents = [a for a in (args.agents or suite.agents) if a in suite.agents]
        suite = suite.narrow(replicates=args.replicates, horizon=args.horizon, agents=agents)
        store = ResultStore(out / f"{block}.sqlite")
        executor = make_executor(args.executor, workers=args.workers)
        report = sweep(suite, store, executor=executor, chunk=args.chunk, device=args.device,
                       propensities=args.propensities, resume=True, progress=True)
        rows.append((block, len(suite.settings), suite.replicates, suite.horizon,
                     report.ran, report.wall_time_s))
        print(f"{block:22s} {report.wall_time_s:9.1f} s  ({report.ran} units)", flush=True)
    print()
    print(f"{'block':22s} {'settings':>8s} {'R':>5s} {'T':>6s} {'wall s':>9s} "
          f"{'study min / ours':>17s}")
    for block, n, r, t, _, wall in rows:
        lo, hi = (m * 60 / max(wall, 1e-9) for m in STUDY_MINUTES)
        print(f"{block:22s} {n:8d} {r:5d} {t:6d} {wall:9.1f} {lo:8.1f}-{hi:<8.1f}")
    total = sum(r[-1] for r in rows)
    print(f"{'all blocks':22s} {'':8s} {'':5s} {'':6s} {total:9.1f}  "
          f"(study: {STUDY_MINUTES[0] * len(rows)}-{STUDY_MINUTES[1] * len(rows)} min on 16 "
          f"cores; cores here: {os.cpu_count()}, device: {args.device or 'cpu'})")


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=30) as con:
            return con.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    except sqlite3.Error:
        return 0


def resume(args: Args, out: Path) -> None:
    cmd = [sys.executable, "-m", "gambit_gym", "bench", "--suite", args.suite, "--no-progress",
           "--chunk", str(args.chunk), "--executor", args.executor]
    for flag, value in (("--replicates", args.replicates), ("--horizon", args.horizon),
                        ("--workers", args.workers), ("--device", args.device)):
        if value is not None:
            cmd += [flag, str(value)]
    if args.agents:
        cmd += ["--agents", ",".join(args.agents)]
    if not args.propensities:
        cmd += ["--no-propensities"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    suite = suites.get(args.suite).narrow(replicates=args.replicates, horizon=args.horizon,
                                          agents=args.agents)
    total = len(plan(suite, chunk=args.chunk))

    full = out / "full.sqlite"
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--out", str(full)], env=env, check=True)
    full_s = time.perf_counter() - t0

    killed = out / "killed.sqlite"
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd + ["--out", str(killed)], env=env)
    while _count(killed) < total // 2 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first_s = time.perf_counter() - t0
    stored = _count(killed)
    t0 = time.perf_counter()
    subprocess.run(cmd + ["--out", str(killed), "--resume"], env=env, check=True)
    second_s = time.perf_counter() - t0
    same = _count(killed) == _count(full) == total
    print(json.dumps({"suite": args.suite, "units": total, "stored_when_killed": stored,
                      "full_s": round(full_s, 2), "until_kill_s": round(first_s, 2),
                      "resumed_s": round(second_s, 2),
                      "resumed_over_full": round(second_s / full_s, 3),
                      "limit": 0.55, "same_units": same}, indent=2))


def main() -> None:
    args = parse()
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
    else:
        out = Path(tempfile.mkdtemp(prefix="gambit-bench-"))
    (study if args.what == "study" else resume)(args, out)


if __name__ == "__main__":
    main()
