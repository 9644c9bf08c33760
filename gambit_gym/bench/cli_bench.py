"""``gambit-gym bench``: run a suite into a results store (resumable)."""

from __future__ import annotations

import argparse
import json
import sys

from gambit_gym._argtypes import comma_list
from gambit_gym.agents._batched import PROPENSITY_RSE
from gambit_gym.bench import suites
from gambit_gym.bench.executors import EXECUTORS, make_executor, sweep
from gambit_gym.bench.store import ResultStore
from gambit_gym.bench.units import DEFAULT_CHUNK


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg}): {text!r}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object like '{{\"k\": 1}}', got "
                                         f"{text!r}")
    return value


def _shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N such as 1/2, got {text!r}") from None
    if not 1 <= i <= n:
        raise argparse.ArgumentTypeError(f"expected I/N with 1 <= I <= N, got {text!r}")
    return i, n


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("--suite", required=True, metavar="NAME",
                        help=f"suite to run: {', '.join(suites.names())}")
    parser.add_argument("--out", required=True, metavar="STORE",
                        help="results store file (SQLite; created if missing)")
    parser.add_argument("--resume", action="store_true",
                        help="skip units already in the store (after Ctrl-C or a kill)")
    parser.add_argument("--replicates", type=int, metavar="R",
                        help="replicates per setting (default: the suite's, 250 for the study)")
    parser.add_argument("--horizon", type=int, metavar="T", help="steps per replicate")
    parser.add_argument("--agents", type=comma_list, metavar="A,B",
                        help="only these of the suite's agents (comma-separated); Random and "
                             "Oracle run too, unless --no-reference")
    parser.add_argument("--no-reference", action="store_true",
                        help="do not run the reference agents Random and Oracle (the "
                             "leaderboard then has no normalised scores)")
    parser.add_argument("--envs", type=comma_list, metavar="ID,ID",
                        help="only these of the suite's env ids (comma-separated)")
    parser.add_argument("--seed", type=int, help="base seed (default: the suite's, 323)")
    parser.add_argument("--add-agent", metavar="AGENT",
                        help="also run your own agent, by registered name or 'module:Class', "
                             "on every env config of the suite")
    parser.add_argument("--add-agent-kwargs", type=_json_dict, default={}, metavar="JSON",
                        help="kwargs of --add-agent, as a JSON object")
    parser.add_argument("--env-kwargs", type=_json_dict, default={}, metavar="JSON",
                        help="kwargs merged into every env config, e.g. "
                             "'{\"bank\": \"b.parquet\"}'")
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, metavar="N",
                        help="replicates per unit of work")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: processes on this machine; serial: this process; "
                             "ray: a Ray cluster (pip install 'gambit-gym[ray]')")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="worker processes (local) or CPUs of a local Ray instance "
                             "(default: all cores)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="existing Ray cluster address (default: start one here)")
    parser.add_argument("--device", metavar="DEV", help="torch device for agents, e.g. cuda")
    parser.add_argument("--no-propensities", action="store_true",
                        help="do not record propensities (faster; the logs then cannot be "
                             "used off-policy)")
    parser.add_argument("--propensity-samples", type=int, default=1000, metavar="N",
                        help="the most Monte Carlo draws per decision for propensities")
    parser.add_argument("--propensity-rse", type=float, default=PROPENSITY_RSE, metavar="X",
                        help="draw until the logged propensity's relative standard error is "
                             "at most X; 0: always the most draws")
    parser.add_argument("--shard", type=_shard, metavar="I/N",
                        help="run only part I of N of the suite's units (1/2 on one machine, "
                             "2/2 on another), then combine the stores with gambit-gym merge")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_suite(args: argparse.Namespace) -> suites.Suite:
    """The suite the arguments describe."""
    suite = suites.get(args.suite).narrow(replicates=args.replicates, horizon=args.horizon,
                                          agents=args.agents, envs=args.envs, seed=args.seed,
                                          references=not args.no_reference)
    if args.add_agent:
        suite = suite.with_agent(args.add_agent, args.add_agent_kwargs)
    elif args.add_agent_kwargs:
        raise ValueError("--add-agent-kwargs needs --add-agent")
    return suite.with_env_kwargs(args.env_kwargs)


def run(args: argparse.Namespace) -> int:
    """Run the sweep; print what was done. Exit status 1 if some units failed."""
    suite = build_suite(args)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if not args.propensity_rse >= 0:  # also refuses NaN
        raise ValueError(f"--propensity-rse must be >= 0 (0: always --propensity-samples "
                         f"draws), got {args.propensity_rse}")
    executor = make_executor(args.executor, workers=args.workers,
                             ray_address=args.ray_address)
    store = ResultStore(args.out)
    try:
        report = sweep(suite, store, executor=executor, resume=args.resume, chunk=args.chunk,
                       device=args.device, propensities=not args.no_propensities,
                       propensity_samples=args.propensity_samples,
                       propensity_rse=args.propensity_rse or None,
                       progress=not args.no_progress, shard=args.shard)
    finally:
        shutdown = getattr(executor, "shutdown", None)
        if shutdown is not None:
            shutdown()
    print(f"{suite.name}: {report.ran} units run, {report.skipped} already stored, "
          f"{report.duplicates} stored by another writer, {len(report.failures)} failed, "
          f"{report.planned} planned; {report.wall_time_s:.1f} s -> {store.path}",
          file=sys.stderr)
    for failure in report.failures:
        print(f"gambit-gym bench: failed: {failure.describe()}", file=sys.stderr)
    return 1 if report.failures else 0
