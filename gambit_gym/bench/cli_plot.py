"""``gambit-gym plot``: cumulative-regret figures (PNG and SVG), one per suite."""

from __future__ import annotations

import argparse
import sys

from gambit_gym.bench.plots import FIGURE_FORMATS, plot_store
from gambit_gym.bench.store import ResultStore


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the command's arguments."""
    parser.add_argument("store", metavar="STORE", help="results store written by bench")
    parser.add_argument("--out", default="figures", metavar="DIR",
                        help="directory for the figures (default: ./figures)")
    parser.add_argument("--suite", metavar="NAME", help="only this suite")
    parser.add_argument("--formats", default=",".join(FIGURE_FORMATS), metavar="png,svg",
                        help="figure formats (comma-separated)")
    parser.add_argument("--with-reference", action="store_true",
                        help="also draw the Random and Oracle agents (grey, dashed)")


def run(args: argparse.Namespace) -> int:
    """Write the figures and list them."""
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    store = ResultStore(args.store, create=False)
    if args.with_reference:
        for name in [args.suite] if args.suite else list(store.suites()):
            agents = {r.unit.setting.agent for r in store.records(suite=name)}
            if agents and not agents & {"Random", "Oracle"}:
                print(f"notice: suite {name} has no Random or Oracle runs to draw (it was "
                      "run with --no-reference)", file=sys.stderr)
    for path in plot_store(store, args.out, suite=args.suite,
                           formats=formats, with_reference=args.with_reference):
        print(path)
    return 0
