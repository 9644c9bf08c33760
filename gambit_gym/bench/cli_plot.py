"""``gambit-gym plot``: cumulative-regret figures (PNG and SVG), one per suite."""

from __future__ import annotations

import argparse

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
                        help="also draw the Random and Oracle agents")


def run(args: argparse.Namespace) -> int:
    """Write the figures and list them."""
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    for path in plot_store(ResultStore(args.store, create=False), args.out, suite=args.suite,
                           formats=formats, with_reference=args.with_reference):
        print(path)
    return 0
