"""The CLI's small courtesies: `agents`, one list syntax, defaults in --help, a quiet closed
pipe, the full `list` table, and a checker that says what it checked."""

import subprocess
import sys

import pytest
from bench_helpers import subprocess_env

from gambit_gym import agents
from gambit_gym.cli import main
from gambit_gym.envs.checks import check_gambit_env


def test_agents_command_lists_every_agent_with_family_and_a_line(capsys):
    assert main(["agents"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line for line in lines if line and not line.startswith("Any")}
    assert set(agents.names()) <= set(rows)
    assert "GAMBITTS" in rows["poGAMBITTS"] and "reference" in rows["Oracle"]
    assert all(len(line.split(None, 2)) == 3 for line in rows.values())
    assert main(["agents", "--format", "md"]) == 0
    assert "| `meTS-Lin` | mixed-effect |" in capsys.readouterr().out


def test_demo_takes_the_same_comma_list_as_bench(capsys):
    assert main(["demo", "--agents", "StdTS,Random", "--replicates", "2", "--horizon", "10",
                 "--messages", "1"]) == 0
    out = capsys.readouterr().out
    assert "StdTS" in out and "Random" in out
    with pytest.raises(SystemExit):  # spaces are not the syntax any more
        main(["demo", "--agents", "StdTS", "Random"])
    assert "unrecognized arguments: Random" in capsys.readouterr().err


@pytest.mark.parametrize("command, default", [
    ("demo", "(default: 300)"), ("demo", "(default: poGAMBITTS,StdTS)"),
    ("bench", "(default: local)"), ("bench", "(default: 1000)"), ("list", "(default: text)"),
    ("plot", "(default: ./figures)"),
])
def test_help_shows_defaults(capsys, command, default):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert default in " ".join(out.split())
    assert "(default: None)" not in out and "(default: False)" not in out


def test_a_closed_pipe_ends_quietly(tmp_path):
    cmd = f"{sys.executable} -m gambit_gym list --format md | head -n 2"
    proc = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("\n") == 2
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_list_shows_every_column_in_full(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "..." not in out
    assert "noise sd, levels 0-4:" in out
    assert "authenticity, detail, formality, optimism, complexity, clarity, personalization, " \
           "conciseness, politeness, encouragement" in out  # GambitIHS-10D-v0's dims, uncut
    assert main(["list", "--format", "md"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "noise sd, levels 0-4" in header


def test_check_gambit_env_returns_and_prints_its_checks(capsys):
    ran = check_gambit_env("GambitIHS-v0", n_prompts=3)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in ran] == [
        "spaces", "gymnasium", "step types and info", "determinism", "invalid actions",
        "pickle"]
    assert printed == ["ok    " + line for line in ran]
    assert check_gambit_env("GambitIHS-v0", n_prompts=3, verbose=False) == ran
    assert capsys.readouterr().out == ""
