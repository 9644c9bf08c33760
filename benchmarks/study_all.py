"""Every figure suite of the study (Figs. 2-9) into one resumable store, timed per suite.

``python benchmarks/reproduce_study.py --all`` calls :func:`main`. Each suite runs through
``gambit-gym bench``'s own sweep (the same units, ids and store), so a killed run resumes
where it stopped: a unit is stored in one transaction once it has finished, and the next run
skips the stored ones. A progress bar per suite shows its units with an ETA; after each suite
a line gives its wall time and the whole run's elapsed time and ETA (by the units left at the
mean time per unit so far: the ensemble suites' units are the slow ones, so the ETA firms up
as they run). Propensities are off by default: the figures read regret only
(``--propensities`` records them, for off-policy evaluation of the logs).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gambit_gym.bench import suites
from gambit_gym.bench.executors import make_executor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.units import DEFAULT_CHUNK, plan

#: The study's figure suites, Figs. 2-9, in figure order.
FIGURE_SUITES: tuple[str, ...] = ("one_d", "misspecification", "scale_arms",
                                  "var_decomp_linear", "var_decomp_nonlinear", "db_access",
                                  "scale_dimensions", "fogambitts_arms")


def build_parser(p: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The ``--all`` options (shared with reproduce_study.py's parser)."""
    p = p or argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--suites", default=",".join(FIGURE_SUITES),
                   help="comma-separated suites (default: the eight figure suites)")
    p.add_argument("--store", default="study.db", help="the result store (SQLite)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help="replicates per unit")
    p.add_argument("--executor", choices=("local", "serial"), default="local")
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--device", default=None, help="torch device for the ensemble agents")
    p.add_argument("--propensities", action="store_true",
                   help="record propensities (off-policy evaluation; costs time)")
    p.add_argument("--timings", default=None,
                   help="write the per-suite wall times as JSON here")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(args: argparse.Namespace) -> dict[str, float]:
    """Run the suites into one store; returns the wall seconds per suite (this run's)."""
    names = [s for s in args.suites.split(",") if s]
    chosen = []
    for name in names:
        suite = suites.get(name)
        if args.replicates is not None or args.horizon is not None:
            suite = suite.narrow(replicates=args.replicates, horizon=args.horizon)
        chosen.append(suite)
    executor = make_executor(args.executor, workers=args.workers)
    store = ResultStore(args.store)
    total_units = sum(len(plan(s, chunk=args.chunk)) for s in chosen)
    done = store.unit_ids()
    already = sum(u.unit_id in done for s in chosen for u in plan(s, chunk=args.chunk))
    print(f"{len(chosen)} suites, {total_units} units, {already} already in {args.store}",
          flush=True)
    times: dict[str, float] = {}
    start = time.perf_counter()
    ran = 0
    try:
        for i, suite in enumerate(chosen, 1):
            report = sweep(suite, store, executor=executor, resume=True, chunk=args.chunk,
                           device=args.device, propensities=args.propensities,
                           progress=not args.no_progress)
            times[suite.name] = report.wall_time_s
            ran += report.ran
            already += report.skipped
            elapsed = time.perf_counter() - start
            left = total_units - already - ran
            eta = elapsed / ran * left if ran else 0.0
            failed = f", {len(report.failures)} FAILED" if report.failures else ""
            print(f"[{i}/{len(chosen)}] {suite.name}: {report.ran} units run, "
                  f"{report.skipped} resumed past{failed}, {report.wall_time_s:.1f} s; "
                  f"elapsed {elapsed:.0f} s, ETA {eta:.0f} s", flush=True)
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
    total = time.perf_counter() - start
    print(f"all suites: {total:.1f} s wall this run", flush=True)
    if args.timings:
        Path(args.timings).write_text(json.dumps({"suites": times, "total_s": total},
                                                 indent=1))
    return times
