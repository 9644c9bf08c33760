"""The allocator setting of batched runs: applied on glibc, observable, and opt-out-able."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the allocator setting applies to glibc only")

# Allocates a 1 MiB numpy array and reports how many bytes malloc holds in mmapped blocks
# meanwhile (glibc's mallinfo2().hblkhd): above the default 128 KiB threshold the block is
# mmapped (and unmapped again on free, so the next allocation faults its pages back in).
_PROBE = r"""
import ctypes, json, sys
import numpy as np

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
                                                "usmblks", "fsmblks", "uordblks", "fordblks",
                                                "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
from gambit_gym.bench import allocator
applied = None
if sys.argv[1] == "apply":
    applied = allocator.keep_freed_memory()
elif sys.argv[1] == "run":  # no allocation measured: a run's frees move glibc's own threshold
    from gambit_gym.bench import run
    run("GambitIHS-v0", "StdTS", horizon=3, replicates=2, seed=0, progress=False)
    print(json.dumps({"applied": allocator._applied}))
    sys.exit()
before = libc.mallinfo2().hblkhd
block = np.ones(1 << 17)  # 1 MiB
during = libc.mallinfo2().hblkhd
print(json.dumps({"applied": applied, "mmapped": during - before}))
"""


def _probe(mode: str, **env: str) -> dict:
    full = {k: v for k, v in os.environ.items()
            if k not in ("GAMBIT_GYM_MALLOC", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], env=full, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_large_blocks_stay_on_the_heap_once_applied():
    assert _probe("plain")["mmapped"] >= 1 << 20  # glibc's default: the block is mmapped
    assert _probe("apply") == {"applied": True, "mmapped": 0}


def test_run_applies_it():
    assert _probe("run") == {"applied": True}


def test_the_setting_can_be_refused():
    refused = _probe("apply", GAMBIT_GYM_MALLOC="system")
    assert refused["applied"] is False and refused["mmapped"] >= 1 << 20
    assert _probe("run", GAMBIT_GYM_MALLOC="system") == {"applied": False}
    assert _probe("apply", MALLOC_TRIM_THRESHOLD_="1000000")["applied"] is False
