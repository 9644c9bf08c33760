"""A pilot-size bank build with the v2 design (real SmolLM2 and MiniLM), checked by the bank
report: the quality filter's counts in the metadata, every message on topic, no placeholder."""

import json

import pytest

from gambit_gym.text.bank import ResponseBank, load_bank
from gambit_gym.text.builder import build_bank, chunk_dir_for
from gambit_gym.text.generators import SamplingConfig
from gambit_gym.text.generators.quality import QUALITY_REASONS
from gambit_gym.text.prompts import load_prompt_library
from gambit_gym.text.report import bank_statistics

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

pytestmark = pytest.mark.slow


def test_v2_library_is_named_and_v1_stays_loadable():
    v1, v2 = load_prompt_library("v1"), load_prompt_library("v2")
    assert v1 == load_prompt_library() and not v1.few_shot and v1.quality_filter is None
    assert v2.version.startswith("2") and len(v2.few_shot) == 3
    assert v2.quality_filter == "quality v1" and [p.style for p in v2.prompts] == \
        [p.style for p in v1.prompts]
    assert "quality_filter" not in v1.to_dict()  # v1's recorded data is what it was
    assert len(load_bank("v1")) == 48000


def test_pilot_size_v2_build_passes_the_reports_checks(tmp_path, smollm2, minilm):
    gen = smollm2(sampling=SamplingConfig(max_new_tokens=40), batch_size=16)
    gen.spare = 3.0  # 4 drafts per message in one pass: redraws are rarely needed
    out = tmp_path / "bank_build" / "pilot.parquet"
    kw = dict(prompt_ids=[0, 1], context_ids=[3], per_pair=2, seed=0, batch_size=16,
              device="cpu", progress=False, keep_chunks=True, reps_per_chunk=1)
    bank = build_bank(gen, minilm, load_prompt_library("v2"), out=out, **kw)
    assert isinstance(bank, ResponseBank) and len(bank) == 4
    meta = ResponseBank.load(out).metadata
    assert meta["generator"]["quality"]["version"] == "quality v1"
    assert meta["generator"]["sampling"]["max_attempts"] == 8
    reasons = meta["rejection_reasons"]
    assert set(reasons) <= set(QUALITY_REASONS) | {"empty", "degenerate"}
    assert sum(reasons.values()) == meta["rejections"]
    assert meta["unresolved"] == 0
    assert gen.quality.reasons(list(bank.texts)) == [None] * 4
    stats = bank_statistics(bank)
    assert stats["on_topic_share"] == 1.0 and stats["placeholder_share"] == 0.0
    assert stats["rejection_reasons"] == reasons
    # the chunks are small files in the chunk folder beside the output, and a rerun resumes
    chunks = sorted(chunk_dir_for(out).glob("chunk_*.json"))
    assert len(chunks) == 2 and all(c.stat().st_size < 50_000 for c in chunks)
    rec = json.loads(chunks[0].read_text())
    assert sum(rec["rejection_reasons"].values()) == rec["rejections"]
    resumed = smollm2(sampling=SamplingConfig(max_new_tokens=40), batch_size=16)
    resumed.spare = 3.0
    again = build_bank(resumed, minilm, load_prompt_library("v2"), out=out, **kw)
    assert list(again.texts) == list(bank.texts)
