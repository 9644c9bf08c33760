"""``gambit-gym leaderboard``: agents × envs from a results store."""

from __future__ import annotations

import argparse

from gambit_gym._paths import output_file
from gambit_gym.bench.aggregates import DEFAULT_REPS, DEFAULT_SEED
from gambit_gym.bench.leaderboard import FORMATS, Leaderboard
from gambit_gym.bench.store import ResultStore


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("store", metavar="STORE", help="results store written by bench")
    parser.add_argument("--format", choices=FORMATS, default="md",
                        help="md (README table), csv (long), json or html")
    parser.add_argument("--suite", metavar="NAME", help="only this suite's results")
    parser.add_argument("--output", "-o", metavar="FILE", help="write here instead of stdout")
    parser.add_argument("--reps", type=int, default=DEFAULT_REPS, metavar="N",
                        help=f"bootstrap resamples per interval (default {DEFAULT_REPS})")
    parser.add_argument("--view", choices=("scores", "safety"), default="scores",
                        help="scores (default: ranks, normalised scores, aggregates) or safety "
                             "(two objectives: regret and the unsafe-delivery rate, with the "
                             "budget, violation and cost per agent; md or json)")
    parser.add_argument("--plot", metavar="PNG",
                        help="with --view safety: also draw regret against the unsafe rate")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED,
                        help=f"seed of the bootstrap (default {DEFAULT_SEED}; same store and "
                             "seed, same intervals)")


def run(args: argparse.Namespace) -> int:
    """Print or write the leaderboard."""
    if args.view == "safety":
        text = _safety_view(args)
        if args.output:
            output_file(args.output, what="--output").write_text(text, encoding="utf-8")
        else:
            print(text, end="")
        return 0
    board = Leaderboard.from_store(ResultStore(args.store, create=False), suite=args.suite,
                                   reps=args.reps, seed=args.seed)
    text = board.render(args.format)
    if args.output:
        output_file(args.output, what="--output").write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def _safety_view(args: argparse.Namespace) -> str:
    from gambit_gym.bench.analysis import summarise
    from gambit_gym.bench.objectives import objective_rows, plot_tradeoff, render

    if args.format not in ("md", "json"):
        raise SystemExit(f"gambit-gym leaderboard: --view safety is written as md or json, not "
                         f"{args.format}")
    store = ResultStore(args.store, create=False)
    rows = objective_rows(summarise(store.records(suite=args.suite), by_suite=False))
    if args.plot:
        plot_tradeoff(rows, output_file(args.plot, what="--plot"))
    return render(rows, args.format)
