"""Plain ``pytest`` (the console script) collects the suite as ``python -m pytest`` does.

``python -m pytest`` puts the working directory on ``sys.path``; the ``pytest`` script does not,
so an import such as ``from tests.text_servers import ...`` works under one and fails under the
other (``No module named 'tests'``). Collected here from another directory with ``tests``
made unimportable as a package (the repository itself may be on ``sys.path`` for
``gambit_gym``), as under the ``pytest`` script with an installed gambit-gym.
"""

import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_the_suite_collects_without_the_repository_on_sys_path(tmp_path):
    code = ("import sys, pytest; sys.modules['tests'] = None; "
            f"sys.exit(pytest.main(['--collect-only', '-q', '-p', 'no:cacheprovider', "
            f"'--rootdir', {str(TESTS.parent)!r}, {str(TESTS)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "error" not in proc.stdout.lower().split("\n")[-2], proc.stdout[-500:]
