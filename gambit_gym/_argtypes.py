"""Argument types shared by the ``gambit-gym`` subcommands (one syntax for every list)."""

from __future__ import annotations

import argparse


def comma_list(text: str) -> list[str]:
    """The one list syntax of every option that takes several names: ``A,B,C``."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"give at least one name (comma-separated), got "
                                         f"{text!r}; leave the option out to run them all")
    return names
