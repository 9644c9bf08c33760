"""examples/ppo_vs_bandits.py prints PPO's cumulative regret next to poGAMBITTS's and StdTS's."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "ppo_vs_bandits.py"


def test_ppo_vs_bandits_prints_one_regret_per_agent(tmp_path):
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "GAMBIT_GYM_EXAMPLE_SMALL": "1", "PYTHONPATH": path}
    proc = subprocess.run([sys.executable, str(SCRIPT), "--horizon", "32", "--replicates", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    for agent in ("poGAMBITTS", "StdTS", "PPO"):
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(agent + " ")), None)
        assert line is not None, proc.stdout
        regret = float(re.split(r"\s+", line.strip())[1])
        assert 0.0 <= regret < 32 * 5, line
