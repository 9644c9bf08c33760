"""The bank report: its statistics on the shipped bank, and the checked-in page is current."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from gambit_gym.text.bank import ResponseBank, load_bank
from gambit_gym.text.report import KEEP_MARKER, bank_statistics

ROOT = Path(__file__).resolve().parents[1]


def test_shipped_bank_has_at_least_15_dimensions_whose_high_prompt_scores_higher():
    stats = bank_statistics(load_bank())
    assert len(stats["dimensions"]) == 20
    assert stats["n_pass"] >= 15
    for row in stats["dimensions"]:
        assert 0.0 <= row["between_share"] <= 1.0
        assert 0.0 <= row["p_high_gt_low"] <= 1.0
        assert row["passes"] == (row["mean_diff"] > 0)
    corr = np.asarray(stats["correlation"])
    assert corr.shape == (5, 5) and np.allclose(corr, corr.T) and np.allclose(np.diag(corr), 1)


def test_reversed_scores_reverse_the_verdicts():
    bank = load_bank()
    flipped = ResponseBank(bank.texts, bank.prompt_ids, bank.context_ids, -bank.scores,
                           bank.dimensions, bank.metadata)
    ours, theirs = bank_statistics(bank), bank_statistics(flipped)
    for a, b in zip(ours["dimensions"], theirs["dimensions"]):
        assert np.isclose(a["mean_diff"], -b["mean_diff"], atol=1e-5)
        assert np.isclose(a["p_high_gt_low"], 1.0 - b["p_high_gt_low"], atol=1e-9)
        assert np.isclose(a["between_share"], b["between_share"], atol=1e-6)
    assert theirs["n_pass"] == 20 - ours["n_pass"]


def test_checked_in_report_is_what_the_command_writes_for_the_shipped_bank(tmp_path):
    out = tmp_path / "bank_report.md"
    subprocess.run([sys.executable, "-m", "gambit_gym", "bank-report", "--out", str(out)],
                   check=True, capture_output=True, text=True, cwd=tmp_path)
    text = out.read_text(encoding="utf-8")
    assert "this bank's were batch size" in text and "## Sample messages" in text
    checked_in = (ROOT / "docs" / "bank_report.md").read_text(encoding="utf-8")
    generated = checked_in.split(KEEP_MARKER)[0].rstrip("\n") + "\n" * text.endswith("\n")
    assert text.rstrip("\n") == generated.rstrip("\n"), (
        "docs/bank_report.md is stale: run `gambit-gym bank-report` and commit it")
    # the hand-kept section (the bank-v2 pilot table) survives a regeneration in place
    if KEEP_MARKER in checked_in:
        copy = tmp_path / "copy.md"
        copy.write_text(checked_in, encoding="utf-8")
        subprocess.run([sys.executable, "-m", "gambit_gym", "bank-report", "--out", str(copy)],
                       check=True, capture_output=True, text=True, cwd=tmp_path)
        assert copy.read_text(encoding="utf-8") == checked_in
