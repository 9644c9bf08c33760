"""The ``gambit-gym`` command.

Each subcommand lives in its own module with two functions, ``configure(parser)`` and
``run(args) -> int``; :data:`COMMANDS` maps the subcommand's name to that module, so adding a
command is one line here. User mistakes (a bad path, an unknown id) print one clear line and
exit with status 2, not a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

COMMANDS: dict[str, tuple[str, str]] = {
    # name: (module, one-line help)
    "list": ("gambit_gym.envs.listing", "print the registered environment ids and their setup"),
    "agents": ("gambit_gym.agents.listing",
               "print the registered agent names, their family and one line each"),
    "demo": ("gambit_gym.demo", "a short demo: messages, embeddings and two agents' regret"),
    "build-bank": ("gambit_gym.text.builder",
                   "generate, embed and save a response bank (resumable)"),
    "score-safety": ("gambit_gym.text.score_safety",
                     "add safety scores (six categories) to every message of a bank"),
    "safety-eval": ("gambit_gym.text.safety_labels",
                    "precision and recall of the safety classifier on the labelled hold-out"),
    "embed-bank": ("gambit_gym.text.sentence_vectors",
                   "a bank's 384-d MiniLM sentence vectors into the cache (embedding='minilm384')"
                   ", and its PCA"),
    "bank-report": ("gambit_gym.text.report",
                    "how the prompts move the style scores of a bank (markdown)"),
    "bench": ("gambit_gym.bench.cli_bench", "run an experiment suite into a results store"),
    "leaderboard": ("gambit_gym.bench.cli_leaderboard",
                    "agents x envs leaderboard of a results store (md, csv, json, html)"),
    "plot": ("gambit_gym.bench.cli_plot", "cumulative-regret figures of a results store"),
    "report": ("gambit_gym.bench.cli_report", "a static HTML report of a results store"),
    "merge": ("gambit_gym.bench.cli_merge",
              "merge results stores from several machines (refuses conflicting units)"),
    "validate": ("gambit_gym.bench.cli_validate",
                 "re-run a sample of a store's units and check they reproduce bit for bit"),
    "export-obp": ("gambit_gym.bench.cli_export",
                   "export a run's logged decisions in Open Bandit Pipeline's layout"),
}

USER_ERRORS = (ValueError, KeyError, ImportError, IndexError, OSError)


def _one_line(exc: BaseException) -> str:
    """The message of a user error.

    An ``OSError`` raised by the system carries ``(errno, strerror)`` as its args and the file
    as ``filename``; print those (``No such file or directory: missing/x.md``), never the bare
    errno.
    """
    if isinstance(exc, OSError) and exc.strerror:
        where = f": {exc.filename}" if exc.filename is not None else ""
        return f"{exc.strerror}{where}"
    return str(exc.args[0]) if exc.args else str(exc)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in ``--help`` where it has a meaningful one.

    Not for defaults of None, False or empty (nothing to say), nor where the help text already
    names the default.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("%(default)" in text or "default" in text.lower() or default is argparse.SUPPRESS
                or default is None or default is False or default in ([], {}, ())
                or not action.option_strings):
            return text
        return text + " (default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand configured."""
    parser = argparse.ArgumentParser(
        prog="gambit-gym",
        description="Generator-mediated bandit environments, agents and benchmarks.",
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    formatter_class=HelpFormatter)
        module.configure(sub_parser)
        sub_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gambit-gym`` console script."""
    from gymnasium import error as gym_error  # an unknown env id: NameNotFound, one line

    args = build_parser().parse_args(argv)
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler below
        return code
    except BrokenPipeError:  # e.g. `gambit-gym list | head`: the reader has had enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141  # 128 + SIGPIPE, what a command killed by the closed pipe would return
    except KeyboardInterrupt:
        print("gambit-gym: interrupted", file=sys.stderr)
        return 130
    except (*USER_ERRORS, gym_error.Error) as exc:
        message = _one_line(exc)
        print(f"gambit-gym {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
