"""Where the package writes files: output folders, and names from outside turned into paths.

Results stores come from other people (leaderboard submissions), so a suite name read from one
may hold ``../`` or be an absolute path. Every writer that turns such a name into a file name
goes through :func:`safe_filename`, and every path it writes is checked by :func:`inside` to lie
in the output folder the user chose; :func:`output_dir` makes that folder or says in one line
why it cannot.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_STEM = 80


def safe_filename(name: str, *, what: str = "name") -> str:
    """``name`` as a file name with no folder part: letters, digits, ``.``, ``_`` and ``-``.

    A name that is already safe is returned unchanged (so ordinary suite names keep their file
    names); any other gets its unsafe characters replaced by ``_`` and an 8-character hash of
    the original appended, so that two different names never share a file.

    Raises:
        ValueError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} must be a non-empty string to name a file, got {name!r}")
    cleaned = _UNSAFE.sub("_", name).lstrip(".")[:_MAX_STEM]
    if cleaned == name:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{cleaned or 'unnamed'}-{digest}"


def inside(root: str | Path, path: str | Path) -> Path:
    """``path`` (relative to ``root`` unless absolute), checked to lie inside ``root``.

    Symbolic links are resolved, so a link that points out of the folder is refused too.

    Raises:
        ValueError: the path resolves outside ``root``.
    """
    root_resolved = Path(root).resolve()
    full = (Path(root) / path).resolve()
    if full != root_resolved and root_resolved not in full.parents:
        raise ValueError(f"refusing to write {full}: it lies outside the output folder "
                         f"{root_resolved}")
    return full


def output_dir(path: str | Path, *, what: str = "--out") -> Path:
    """Create the output folder ``path`` (and its parents) and check that it can be written.

    Raises:
        ValueError: ``path`` is an existing file, or the folder cannot be created or written.
    """
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{what} {out} is an existing file; give a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"cannot create the folder {what} {out}: "
                         f"{exc.strerror or exc}") from None
    probe = out / f".gambit-gym-write-test-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"the folder {what} {out} is not writable: "
                         f"{exc.strerror or exc}") from None
    return out


def output_file(path: str | Path, *, what: str = "--out") -> Path:
    """Check that the file ``path`` can be written: its folder exists and it is not a folder.

    Raises:
        ValueError: the folder is missing, or ``path`` is a folder.
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(f"{what} {out} is a folder; give a file name")
    if not out.parent.is_dir():
        raise ValueError(f"cannot write {what} {out}: the folder {out.parent} does not exist")
    return out
