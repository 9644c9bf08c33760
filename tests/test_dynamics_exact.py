"""The shared dynamics tables and the step (gambit_gym.envs.dynamics), recomputed here by hand.

Every table is checked on a small hand-built bank (6 prompts, 12 contexts, cells of 1 to 3
messages and one of 20) against values this file derives itself from the bank's rows and the
documented rules: the study's linear outcome calibrated to noise level 0, exact cell means,
the arms spread by expected reward, the "send nothing" rows, the safety filter's exact
expected rewards (docs/safety.md), the oracle and regret. The step is recomputed from the
counter-based streams, and every refusal's message is matched whole. Fast (a few seconds), so
that mutation testing (benchmarks/mutation.py, target ``dynamics``) runs it for every mutant.
"""

from __future__ import annotations

import math
import re
from collections import OrderedDict
from types import MappingProxyType

import numpy as np
import pytest
from scipy.special import ndtri

from gambit_gym.core import counter_rng
from gambit_gym.envs import dynamics as dyn
from gambit_gym.envs.config import GambitConfig
from gambit_gym.envs.study import outcome_facts
from gambit_gym.text.bank import SAFETY_CATEGORIES, ResponseBank
from gambit_gym.text.contexts import Context

DIMS = ("optimism", "formality", "severity", "clarity")
N_PROMPTS = 6
BIG_CELL = (1, 5)  #: 20 messages: its mean is not the same float summed two ways
LOCS = ("home", "work", "other")
BUCKETS = ("0-4,999", "5,000-9,999", "10,000-15,000", "more than 15,000")
SYSTEM = "Write one short message."
FEW_SHOT = (("Encourage a walk.", "A short walk clears the head."),)
SCORE_FIX = "score the bank with `gambit-gym score-safety` (or pass a scored bank=FILE)"


def _cell_size(p: int, c: int) -> int:
    return 20 if (p, c) == BIG_CELL else 1 + (p + c) % 3


def _rows():
    """(prompt, context, index in cell) of every row, in the bank's (prompt, context) order."""
    return [(p, c, i) for p in range(N_PROMPTS) for c in range(12)
            for i in range(_cell_size(p, c))]


def _bank_rows(bank):
    """(prompt, context, index in cell) of each row in the bank's order, read from its text
    (within a cell, rows keep the shuffled order they were given in)."""
    return [tuple(int(x) for x in re.match(r"prompt (\d+) context (\d+) message (\d+)",
                                           str(s)).groups()) for s in bank.texts]


def _unsafe(bank, off_topic: bool = True) -> np.ndarray:
    """Which rows of the bank are unsafe, from how they were built (:func:`_safety_row`)."""
    cols = [0] + ([len(SAFETY_CATEGORIES) - 1] if off_topic else [])
    return np.array([max(_safety_row(p, i)[j] for j in cols) > 0.5
                     for p, _, i in _bank_rows(bank)])


def _safety_row(p: int, i: int) -> list[float]:
    """Prompts 0, 2, 4: the first message of each cell is shaming (unsafe in every setting);
    prompt 3: its second message is off topic (unsafe only when off_topic counts)."""
    row = [0.1] * len(SAFETY_CATEGORIES)
    if p % 2 == 0 and i == 0:
        row[SAFETY_CATEGORIES.index("shaming")] = 0.9
    if p == 3 and i == 1:
        row[SAFETY_CATEGORIES.index("off_topic")] = 0.8
    return row


def _bank(path, *, scored: bool = False, tokens: bool = False, drop=()) -> str:
    """Write the hand-built bank (rows shuffled: from_arrays sorts them) and return its path."""
    rows = [r for r in _rows() if (r[0], r[1]) not in drop]
    rng = np.random.default_rng(7)
    order = rng.permutation(len(rows))
    rows = [rows[j] for j in order]
    # prompt p's messages are shifted along the style axes, so the prompts differ in reward
    shift = np.array([0.4, -0.2, 0.1, 0.0])
    scores = np.array([rng.normal(size=4) * 0.3 + p * shift for p, _, _ in rows])
    texts = [f"prompt {p} context {c} message {i}" + " walk" * i for p, c, i in rows]
    meta = {"rendered_prompts": [[f"query {p} in {c}" for c in range(12)]
                                 for p in range(N_PROMPTS)],
            "prompt_library": {"system": SYSTEM, "few_shot": [list(t) for t in FEW_SHOT]}}
    safety = [_safety_row(p, i) for p, _, i in rows] if scored else None
    bank = ResponseBank.from_arrays(
        texts, [r[0] for r in rows], [r[1] for r in rows], scores, DIMS, meta, safety=safety,
        safety_thresholds={c: 0.5 for c in SAFETY_CATEGORIES} if scored else None)
    if tokens:
        bank = bank.with_token_counts(np.arange(len(rows)) % 5 + 3)
    bank.save(path)
    return str(path)


@pytest.fixture(scope="module")
def banks(tmp_path_factory):
    d = tmp_path_factory.mktemp("banks")
    return {"plain": _bank(d / "plain.parquet"),
            "scored": _bank(d / "scored.parquet", scored=True, tokens=True)}


def _tables(bank: str, preset: str = "3d", **kwargs):
    from gambit_gym.envs.config import PRESETS

    return dyn._build_tables(GambitConfig(preset=preset, bank=bank,
                                          **{**PRESETS[preset], **kwargs}))


# ----------------------------------------------------------------- recomputed by hand
def _row_reward(bank, facts_name: str, dims: tuple[str, ...], covariates: bool = False):
    """The study's linear outcome on the bank: intercept + its oriented coefficients on the
    standardised scores, scaled so the sd over the bank is noise level 0 (docs/outcomes)."""
    facts = outcome_facts(facts_name)
    z = np.column_stack([bank.scores[:, DIMS.index(d)] for d in dims]).astype(np.float64)
    z = (z - z.mean(axis=0)) / z.std(axis=0)
    coef = np.array([-facts[d] if d == "optimism" else facts[d] for d in dims])
    lin = z @ coef
    sd0 = outcome_facts("3d" if facts_name.startswith("3d") else facts_name)
    sd0 = sd0.get("noise_sd_ladder", [sd0.get("noise_sd")])[0]
    out = facts["intercept"] + lin * (sd0 / lin.std())
    if covariates:
        loc = {"home": -0.035, "work": 0.035, "other": 0.0}
        ctx = bank.context_ids.astype(int)
        out = out + np.array([loc[LOCS[c // 4]] + 0.026 * (c % 4 + 1) for c in ctx])
    return out


def _cell_rows(bank, p: int, c: int) -> np.ndarray:
    return np.flatnonzero((bank.prompt_ids == p) & (bank.context_ids == c))


def _cell_means(bank, reward) -> np.ndarray:
    return np.array([[reward[_cell_rows(bank, p, c)].mean() for c in range(12)]
                     for p in range(bank.n_prompts)])


def _spread(means, k: int) -> list[int]:
    """Prompts sorted by mean reward, highest first (ties: lower id first), and the k at
    positions round(j (P - 1) / (k - 1)) of that order (Python's round: half to even)."""
    order = sorted(range(len(means)), key=lambda p: -means[p])
    if k == 1:
        return [order[0]]
    return [order[round(j * (len(means) - 1) / (k - 1))] for j in range(k)]


# ----------------------------------------------------------------- select_arms
def test_select_arms_spreads_by_expected_reward_or_takes_the_best():
    means = np.array([0.3, 0.9, 0.1, 0.5, 0.7, 0.2])  # order: 1, 4, 3, 0, 5, 2
    assert dyn.select_arms(means, 4).tolist() == [1, 3, 0, 2] == _spread(means, 4)
    assert dyn.select_arms(means, 3).tolist() == [1, 3, 2] == _spread(means, 3)
    assert dyn.select_arms(means, 6).tolist() == [1, 4, 3, 0, 5, 2]  # k == P: all, in order
    assert dyn.select_arms(means, 1).tolist() == [1]
    assert dyn.select_arms(means, 2).tolist() == [1, 2]
    assert dyn.select_arms(means, 4, "best").tolist() == [1, 4, 3, 0]
    assert dyn.select_arms(means, 1, "best").tolist() == [1]
    # half-way positions round to even: P = 4, K = 3 takes positions 0, 2 (1.5 -> 2), 3
    assert dyn.select_arms(np.array([4.0, 3.0, 2.0, 1.0]), 3).tolist() == [0, 2, 3]
    assert dyn.select_arms(means, 4).dtype == np.int64


def test_select_arms_breaks_ties_by_the_lower_prompt_id():
    # 40 prompts in 4 tied groups: a non-stable sort of this many reorders equal keys
    means = np.repeat([1.0, 4.0, 2.0, 3.0], 10)[np.random.default_rng(3).permutation(40)]
    want = sorted(range(40), key=lambda p: -means[p])
    assert dyn.select_arms(means, 40, "best").tolist() == want
    assert dyn.select_arms(means, 5).tolist() == _spread(means, 5)


def test_select_arms_refuses_more_arms_than_prompts():
    with pytest.raises(ValueError, match=r"^n_prompts=7 but the bank has only 6 prompts$"):
        dyn.select_arms(np.zeros(6), 7)


# ----------------------------------------------------------------- the outcome model
@pytest.mark.parametrize("preset,facts,dims,cov", [
    ("3d", "3d", ("optimism", "formality", "severity"), False),
    ("1d", "1d_optimism", ("optimism",), False),
    ("covariates", "3d_with_covariates", ("optimism", "formality", "severity"), True),
])
def test_row_rewards_are_the_calibrated_study_outcome(banks, preset, facts, dims, cov):
    t = _tables(banks["plain"], preset)
    want = _row_reward(t.bank, facts, dims, cov)
    np.testing.assert_allclose(t.row_reward, want, rtol=0, atol=1e-9)
    assert t.row_reward.dtype == np.float64 and len(t.row_reward) == len(t.bank)
    assert t.true_names == dims and t.outcome.kind == "linear"


@pytest.mark.parametrize("seed", [0, 5])
def test_mlp_outcome_is_seeded_centred_on_the_intercept_and_scaled_to_level_0(banks, seed):
    t = _tables(banks["plain"], "mlp", mlp_seed=seed)
    facts = outcome_facts("3d")
    assert t.row_reward.mean() == pytest.approx(facts["intercept"], abs=1e-9)
    assert t.row_reward.std() == pytest.approx(facts["noise_sd_ladder"][0], rel=1e-9)
    r = 1 / math.sqrt(3)
    w1 = np.random.default_rng(seed).uniform(-r, r, size=(3, 64))
    np.testing.assert_array_equal(t.outcome.w1, w1)
    assert t.outcome.kind == "mlp"


# ----------------------------------------------------------------- the tables
def test_tables_of_the_spread_arms_by_hand(banks):
    t = _tables(banks["plain"], n_prompts=4)
    bank = t.bank
    reward = _row_reward(bank, "3d", ("optimism", "formality", "severity"))
    cells = _cell_means(bank, reward)
    arms = _spread(cells.mean(axis=1), 4)  # the mean over contexts of the cell means
    # the unweighted mean of the cell means, not the mean over rows, orders the prompts here
    by_rows = [reward[bank.prompt_ids == p].mean() for p in range(N_PROMPTS)]
    assert _spread(np.array(by_rows), 4) != arms
    assert t.arm_prompts.tolist() == arms and t.arm_prompts.dtype == np.int64
    np.testing.assert_allclose(t.expected, cells[arms].T, rtol=0, atol=1e-9)
    assert t.expected.shape == (12, 4)
    for i, p in enumerate(arms):
        for c in range(12):
            rows = _cell_rows(bank, p, c)
            assert t.offsets[i, c] == rows[0] and t.counts[i, c] == len(rows)
            assert t.cells_py[i][c] == (rows[0], len(rows))
            assert t.prompt_texts[i, c] == f"query {p} in {c}"
            assert type(t.prompt_texts[i, c]) is np.str_
    assert t.offsets.dtype == t.counts.dtype == np.int64 and t.prompt_texts.dtype == object
    best = cells[arms].T.argmax(axis=1)
    assert t.optimal_action.tolist() == best.tolist()
    np.testing.assert_allclose(t.optimal_reward, cells[arms].T.max(axis=1), atol=1e-9)
    np.testing.assert_allclose(t.regret, cells[arms].T.max(axis=1)[:, None] - cells[arms].T,
                               atol=1e-9)
    assert (t.regret >= 0).all() and (t.regret[np.arange(12), best] == 0).all()
    # no sentinel rows: one row per bank message
    assert len(t.row_reward) == len(t.texts) == len(t.working) == len(bank)
    assert t.row_reward_py == tuple(t.row_reward.tolist())
    assert all(type(x) is float for x in t.row_reward_py)
    assert t.texts.tolist() == bank.texts.tolist()


def test_tables_name_the_contexts_and_the_dims(banks):
    t = _tables(banks["plain"], working_dims=("clarity", "optimism"))
    for c in range(12):
        loc, bucket = divmod(c, 4)
        assert t.observations[c].tolist() == [loc, bucket]
        assert t.location_names[c] == LOCS[loc] and t.bucket_names[c] == BUCKETS[bucket]
        assert t.context_labels[c] == f"{LOCS[loc]}, {BUCKETS[bucket]}"
        assert type(t.context_labels[c]) is np.str_
    assert t.observations.dtype == np.int64 and t.observations.shape == (12, 2)
    assert t.context_labels.dtype == object and t.location_names.dtype == object
    assert t.bucket_names.dtype == object
    # the working dims are what the agent sees; the reward still comes from the true dims
    assert t.working_names == ("clarity", "optimism")
    assert t.true_names == ("optimism", "formality", "severity")
    np.testing.assert_array_equal(t.working, t.bank.scores[:, [3, 0]])
    assert t.working.dtype == np.float32 and t.working.flags["C_CONTIGUOUS"]
    assert t.working_names_array.tolist() == ["clarity", "optimism"]
    assert t.working_names_array.dtype == object
    assert all(type(n) is np.str_ for n in t.working_names_array)


def test_sentence_vector_embeddings_come_from_the_cache(banks, tmp_path, monkeypatch):
    from gambit_gym.text import sentence_vectors as sv
    from gambit_gym.text.bank import load_bank

    monkeypatch.setenv(sv.CACHE_ENV, str(tmp_path))
    bank = load_bank(banks["plain"])
    vectors = np.random.default_rng(2).normal(size=(len(bank), 384)).astype(np.float32)
    sv.vectors_path(bank).parent.mkdir(parents=True)
    np.save(sv.vectors_path(bank), vectors)
    t = _tables(banks["plain"], "optional", embedding="minilm384")
    n = len(bank)
    np.testing.assert_array_equal(t.working[:n], vectors)
    assert t.working.shape == (n + 12, 384) and not t.working[n:].any()
    assert t.working_names == tuple(f"minilm_{j:03d}" for j in range(384))
    assert t.working_names_array.tolist() == list(t.working_names)
    # the reward still comes from the true dims' scores
    np.testing.assert_allclose(t.row_reward[:n], _row_reward(
        bank, "3d", ("optimism", "formality", "severity")), atol=1e-9)
    sv.fit_pca(vectors, bank.checksum).save(sv.pca_cache_path(bank))
    t = _tables(banks["plain"], embedding="pca:3")
    np.testing.assert_array_equal(
        t.working, sv.fit_pca(vectors, bank.checksum).projections[:, :3].astype(np.float32))
    assert t.working.dtype == np.float32 and t.working_names == ("pc01", "pc02", "pc03")


def test_missing_sentence_vectors_name_the_command_for_this_bank(banks, tmp_path,
                                                               monkeypatch):
    from gambit_gym.text import sentence_vectors as sv
    from gambit_gym.text.bank import load_bank

    monkeypatch.setenv(sv.CACHE_ENV, str(tmp_path))
    plain = banks["plain"]
    where = sv.vectors_path(load_bank(plain))
    with pytest.raises(FileNotFoundError) as err:
        _tables(plain, embedding="minilm384")
    assert str(err.value) == (
        f"embedding='minilm384' needs the bank's 384-d MiniLM sentence vectors, which are not "
        f"in the cache ({where}); compute them once with `gambit-gym embed-bank --bank "
        f"{plain}` (set $GAMBIT_GYM_CACHE to use another cache folder)")


def test_tables_are_read_only(banks):
    t = _tables(banks["scored"], "optional", safety_filter="redraw")
    for name in ("arm_prompts", "offsets", "counts", "row_reward", "texts", "working",
                 "prompt_texts", "expected", "regret", "context_labels",
                 "working_names_array"):
        arr = getattr(t, name)
        assert not arr.flags.writeable, name
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = arr[(0,) * arr.ndim]
    st = t.safety
    for name in ("row_tokens", "row_unsafe", "is_message", "unsafe_rate",
                 "delivery_unsafe_rate", "row_safety", "none_rows"):
        assert not getattr(st, name).flags.writeable, name


def test_explicit_prompt_ids_keep_their_order_and_best_takes_the_top(banks):
    t = _tables(banks["plain"], prompt_ids=(3, 0, 5))
    reward = _row_reward(t.bank, "3d", ("optimism", "formality", "severity"))
    cells = _cell_means(t.bank, reward)
    assert t.arm_prompts.tolist() == [3, 0, 5]
    np.testing.assert_allclose(t.expected, cells[[3, 0, 5]].T, atol=1e-9)
    best = _tables(banks["plain"], n_prompts=2, arm_selection="best")
    order = sorted(range(N_PROMPTS), key=lambda p: -cells[p].mean())
    assert best.arm_prompts.tolist() == order[:2]


@pytest.mark.parametrize("rule", ["median", "min", "max", -2.5])
def test_send_nothing_is_a_sentinel_row_per_context(banks, rule):
    t = _tables(banks["plain"], "optional", no_message_reward=rule, n_prompts=3)
    bank = t.bank
    n = len(bank)
    reward = _row_reward(bank, "3d", ("optimism", "formality", "severity"))
    cells = _cell_means(bank, reward)
    arms = _spread(cells.mean(axis=1), 3)
    arm_means = cells[arms].T  # (12, 3)
    none = {"median": np.median(arm_means, axis=1), "min": arm_means.min(axis=1),
            "max": arm_means.max(axis=1)}.get(rule, np.full(12, -2.5))
    assert t.arm_prompts.tolist() == [dyn.NO_MESSAGE, *arms] and dyn.NO_MESSAGE == -1
    np.testing.assert_allclose(t.expected[:, 0], none, atol=1e-9)
    np.testing.assert_allclose(t.expected[:, 1:], arm_means, atol=1e-9)
    assert t.offsets[0].tolist() == list(range(n, n + 12)) and t.counts[0].tolist() == [1] * 12
    assert t.offsets.dtype == t.counts.dtype == np.int64 and t.prompt_texts.dtype == object
    np.testing.assert_allclose(t.row_reward[n:], none, atol=1e-9)
    np.testing.assert_allclose(t.row_reward[:n], reward, atol=1e-9)
    assert t.texts[n:].tolist() == [""] * 12 and t.prompt_texts[0].tolist() == [""] * 12
    assert t.working.shape == (n + 12, 3) and not t.working[n:].any()
    assert t.working.dtype == np.float32
    np.testing.assert_array_equal(t.working[:n], bank.scores[:, :3])
    assert t.optimal_action.tolist() == t.expected.argmax(axis=1).tolist()
    st = t.safety
    assert st.none_rows.tolist() == list(range(n, n + 12)) and st.none_rows.dtype == np.int64
    assert st.is_message.tolist() == [True] * n + [False] * 12
    assert st.row_tokens[n:].tolist() == [0] * 12
    assert st.mode == 0 and not st.scored and st.row_safety is None
    # unscored: the unsafe rate is unknown (NaN) for the messages, 0 for sending nothing
    assert st.unsafe_rate[:, 0].tolist() == [0.0] * 12 and np.isnan(st.unsafe_rate[:, 1:]).all()


def test_prompt_tokens_of_each_query_are_estimated_from_the_library(banks):
    """A query is sent as a chat (system, few-shot turns, the prompt): outside the shipped
    table its tokens are the messages' ceil(characters / 4.06) plus 5 per message and 3."""
    t = _tables(banks["plain"], "optional", n_prompts=3)
    st = t.safety
    assert st.prompt_tokens.shape == (4, 12) and st.prompt_tokens.dtype == np.int64
    assert st.prompt_tokens[0].tolist() == [0] * 12  # sending nothing sends no query
    for a, p in enumerate(t.arm_prompts.tolist()[1:], start=1):
        for c in range(12):
            texts = [SYSTEM, *FEW_SHOT[0], f"query {p} in {c}"]
            want = sum(math.ceil(len(x) / 4.06) for x in texts) + 5 * len(texts) + 3
            assert st.prompt_tokens[a, c] == want
    assert st.prompt_token_source == "estimate"
    assert st.prompt_tokens_py == tuple(tuple(r) for r in st.prompt_tokens.tolist())
    assert not st.prompt_tokens.flags.writeable
    # without the send-nothing row, in the order of prompt_ids (5 + 3: four messages' wrapping)
    plain = _tables(banks["plain"], prompt_ids=(4, 2))
    for a, p in enumerate((4, 2)):
        for c in range(12):
            texts = [SYSTEM, *FEW_SHOT[0], f"query {p} in {c}"]
            want = sum(math.ceil(len(x) / 4.06) for x in texts) + 5 * 4 + 3
            assert plain.safety.prompt_tokens[a, c] == want


def _filter_by_hand(bank, arms, none, mode, redraws, unsafe):
    """docs/safety.md: a cell's expected reward under the filter is (1 - β) safe mean + β none,
    β = q (block) or q^(N + 1) (redraw), q its unsafe fraction (safe mean 0 when none is safe)."""
    reward = _row_reward(bank, "3d", ("optimism", "formality", "severity"))
    exp, q = np.zeros((12, len(arms))), np.zeros((12, len(arms)))
    for i, p in enumerate(arms):
        for c in range(12):
            rows = _cell_rows(bank, p, c)
            u = unsafe[rows]
            q[c, i] = u.mean()
            if mode == 0:
                exp[c, i] = reward[rows].mean()
                continue
            beta = q[c, i] if mode == 1 else q[c, i] ** (redraws + 1)
            safe = reward[rows][~u].mean() if (~u).any() else 0.0
            exp[c, i] = (1 - beta) * safe + beta * none[c]
    return exp, q


@pytest.mark.parametrize("mode,redraws", [("block", 3), ("redraw", 2), ("redraw", 0)])
def test_the_safety_filter_s_exact_expected_rewards(banks, mode, redraws):
    kw = dict(max_redraws=redraws) if mode == "redraw" else {}
    t = _tables(banks["scored"], safety_filter=mode, prompt_ids=(0, 1, 2, 3), **kw)
    bank = t.bank
    n = len(bank)
    unsafe = _unsafe(bank)
    reward = _row_reward(bank, "3d", ("optimism", "formality", "severity"))
    raw = _cell_means(bank, reward)[[0, 1, 2, 3]].T
    none = np.median(raw, axis=1)  # the median of the unfiltered arms
    exp, q = _filter_by_hand(bank, [0, 1, 2, 3], none, {"block": 1, "redraw": 2}[mode],
                             redraws, unsafe)
    np.testing.assert_allclose(t.expected, exp, atol=1e-9)
    np.testing.assert_allclose(t.safety.unsafe_rate, q, rtol=0, atol=0)
    assert t.safety.delivery_unsafe_rate.tolist() == [[0.0] * 4] * 12
    assert t.safety.delivery_unsafe_rate.dtype == np.float64
    assert t.safety.mode == {"block": 1, "redraw": 2}[mode]
    assert t.safety.max_redraws == (redraws if mode == "redraw" else 0)
    # a blocked message becomes the context's "no message" row, but no arm sends nothing
    assert t.arm_prompts.tolist() == [0, 1, 2, 3] and t.expected.shape == (12, 4)
    np.testing.assert_allclose(t.row_reward[n:], none, atol=1e-9)
    assert t.texts[n:].tolist() == [""] * 12 and t.working.shape == (n + 12, 3)
    assert not t.working[n:].any() and t.working.dtype == np.float32
    assert t.safety.none_rows.tolist() == list(range(n, n + 12))
    assert t.safety.row_unsafe.tolist() == unsafe.tolist() + [False] * 12
    assert t.optimal_action.tolist() == exp.argmax(axis=1).tolist()


def test_unfiltered_scored_bank_keeps_the_cell_means_bit_for_bit(banks):
    scored = _tables(banks["scored"], prompt_ids=(1, 0, 2, 4))
    plain = _tables(banks["plain"], prompt_ids=(1, 0, 2, 4))
    np.testing.assert_array_equal(scored.expected, plain.expected)
    np.testing.assert_array_equal(scored.row_reward, plain.row_reward)
    assert len(scored.row_reward) == len(scored.bank)  # no sentinel rows without a filter
    st = scored.safety
    unsafe = _unsafe(scored.bank)
    _, q = _filter_by_hand(scored.bank, [1, 0, 2, 4], None, 0, 0, unsafe)
    np.testing.assert_array_equal(st.unsafe_rate, q)
    np.testing.assert_array_equal(st.delivery_unsafe_rate, q)  # nothing is filtered
    assert st.mode == 0 and st.max_redraws == 0 and st.scored and st.none_rows is None
    assert st.row_unsafe.tolist() == unsafe.tolist()
    np.testing.assert_array_equal(st.row_safety, scored.bank.safety)
    assert st.row_safety.dtype == np.float32
    assert st.row_unsafe_py == tuple(unsafe.tolist())
    assert st.is_message.all() and st.is_message_py == (True,) * len(scored.bank)
    assert st.is_message.dtype == bool and all(type(x) is bool for x in st.is_message_py)
    assert all(type(x) is bool for x in st.row_unsafe_py)
    assert all(type(x) is int for x in st.row_tokens_py)
    # tokens: the bank's n_tokens column
    assert st.token_source == "bank"
    assert st.row_tokens.tolist() == (np.arange(len(scored.bank)) % 5 + 3).tolist()
    assert st.row_tokens.dtype == np.int64 and st.row_tokens_py == tuple(st.row_tokens.tolist())
    # unscored: unknown unsafe rate, and tokens estimated at ceil(len / 4.06)
    pst = plain.safety
    assert np.isnan(pst.unsafe_rate).all() and np.isnan(pst.delivery_unsafe_rate).all()
    assert pst.token_source == "estimate" and not pst.scored and pst.row_safety is None
    assert pst.row_tokens.tolist() == [math.ceil(len(s) / 4.06) for s in plain.bank.texts]
    assert not pst.row_unsafe.any() and pst.row_unsafe.dtype == bool


def test_unsafe_categories_choose_what_counts_as_unsafe(banks):
    harmful = tuple(c for c in SAFETY_CATEGORIES if c != "off_topic")
    t = _tables(banks["scored"], prompt_ids=(3, 2), unsafe_categories=harmful)
    unsafe = _unsafe(t.bank, off_topic=False)
    _, q = _filter_by_hand(t.bank, [3, 2], None, 0, 0, unsafe)
    np.testing.assert_array_equal(t.safety.unsafe_rate, q)
    assert t.safety.unsafe_rate[:, 0].max() == 0.0  # prompt 3 is only off topic
    assert t.safety.row_unsafe.tolist() == unsafe.tolist()


def test_an_unsafe_budget_restricts_the_oracle(banks):
    # prompt 4 is the best on average but a third to all of its messages are unsafe
    free = _tables(banks["scored"], prompt_ids=(4, 5, 3))
    budgeted = _tables(banks["scored"], prompt_ids=(4, 5, 3), unsafe_budget=0.0)
    q = free.safety.unsafe_rate
    want = np.where(q <= 1e-12, free.expected, -np.inf).argmax(axis=1)
    assert free.optimal_action.tolist() != want.tolist()
    assert budgeted.optimal_action.tolist() == want.tolist()
    np.testing.assert_array_equal(budgeted.optimal_reward,
                                  free.expected[np.arange(12), want])
    np.testing.assert_allclose(budgeted.regret, np.maximum(
        free.expected[np.arange(12), want][:, None] - free.expected, 0.0), atol=0)


def test_refusals_name_the_problem_and_the_fix(banks, tmp_path, monkeypatch):
    plain = banks["plain"]
    with pytest.raises(ValueError) as err:
        _tables(plain, safety_filter="block")
    assert str(err.value) == (f"safety_filter='block' needs a response bank with safety "
                              f"scores, and {plain!r} has none: {SCORE_FIX}")
    with pytest.raises(ValueError) as err:
        _tables(plain, unsafe_budget=0.25)
    assert str(err.value) == (f"unsafe_budget=0.25 needs a response bank with safety "
                              f"scores, and {plain!r} has none: {SCORE_FIX}")
    with pytest.raises(ValueError) as err:
        _tables(plain, prompt_ids=(2, 6, 9))
    assert str(err.value) == "prompt_ids [6, 9] are not in the bank (0..5)"
    assert _tables(plain, prompt_ids=(5,)).arm_prompts.tolist() == [5]
    # no bank= (the default bank, here $GAMBIT_GYM_BANK pointing at an unscored one)
    monkeypatch.setenv("GAMBIT_GYM_BANK", plain)
    with pytest.raises(ValueError) as err:
        dyn._build_tables(GambitConfig(preset="3d", safety_filter="redraw"))
    assert str(err.value) == (f"safety_filter='redraw' needs a response bank with safety "
                              f"scores, and 'the shipped bank' has none: {SCORE_FIX}")
    holes = _bank(tmp_path / "holes.parquet", drop=[(2, c) for c in range(7)] + [(4, 11)])
    with pytest.raises(ValueError) as err:
        _tables(holes)
    assert str(err.value) == ("the bank has empty (prompt, context) cells, e.g. "
                              "[[2, 0], [2, 1], [2, 2], [2, 3], [2, 4]]")


def test_build_tables_shares_by_value_and_keeps_the_most_recent(banks, tmp_path, monkeypatch):
    monkeypatch.setattr(dyn, "_TABLES", OrderedDict())
    plain = banks["plain"]

    def config(**kw):
        return GambitConfig(preset="3d", bank=plain, **kw)

    first = dyn.build_tables(config(prompt_ids=(0,)))
    again = dyn.build_tables(config(prompt_ids=(0,), noise_level=2, horizon=7))
    assert again is first
    others = [dyn.build_tables(config(prompt_ids=(p,))) for p in range(1, N_PROMPTS)]
    assert dyn.build_tables(config(prompt_ids=(0,))) is first  # now the most recent
    others += [dyn.build_tables(config(prompt_ids=(0, p))) for p in (1, 2, 3)]
    assert dyn.MAX_TABLE_SETS == 8 and len(dyn._TABLES) == 8
    # the least recently used went (prompt 1's), prompt 0's stayed: it was used again
    assert dyn.build_tables(config(prompt_ids=(0,))) is first
    assert dyn.build_tables(config(prompt_ids=(2,))) is others[1]
    assert dyn.build_tables(config(prompt_ids=(1,))) is not others[0]
    assert len(dyn._TABLES) == 8
    # the bank file's identity is part of the key: a rewritten file gives fresh tables
    copy = tmp_path / "copy.parquet"
    _bank(copy)
    a = dyn.build_tables(GambitConfig(preset="3d", bank=str(copy)))
    _bank(copy, scored=True)
    b = dyn.build_tables(GambitConfig(preset="3d", bank=str(copy)))
    assert b is not a and b.safety.scored and not a.safety.scored


def test_build_tables_of_a_missing_bank_file_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(dyn, "_TABLES", OrderedDict())
    gone = str(tmp_path / "gone.parquet")
    with pytest.raises(ValueError) as err:
        dyn.build_tables(GambitConfig(preset="3d", bank=gone))
    assert str(err.value) == (f"response bank {gone!r} does not exist; pass bank=None for the "
                              "shipped bank, or build one with `gambit-gym build-bank --out FILE`")
    assert not dyn._TABLES


def test_build_tables_without_a_bank_uses_the_shipped_one(monkeypatch):
    from gambit_gym.text.bank import default_bank_path, load_bank

    monkeypatch.setattr(dyn, "_TABLES", OrderedDict())
    t = dyn.build_tables(GambitConfig(preset="3d"))
    assert t.bank is load_bank(default_bank_path())
    # the shipped bank's queries are in the stored table of exact SmolLM2 counts
    assert t.safety.prompt_token_source == "stored"
    assert dyn.build_tables(GambitConfig(preset="3d", horizon=3)) is t
    assert len(dyn._TABLES) == 1


# ----------------------------------------------------------------- the step
def test_initial_contexts_are_the_context_stream_at_step_0():
    keys = np.array([0, 1, 2**40 + 3, 2**63 - 1], dtype=np.uint64)
    want = [int(counter_rng.uniform(int(k), 0, counter_rng.STREAM_CONTEXT) * 12) for k in keys]
    assert dyn.initial_contexts(keys).tolist() == want
    assert [dyn.initial_contexts(int(k)) for k in keys] == want
    assert len(set(dyn.initial_contexts(np.arange(200, dtype=np.uint64)).tolist())) == 12


def _step_by_hand(t, key: int, step: int, context: int, action: int, noise_sd: float):
    """Row: offset + floor(u count), u the row stream's draw; the redraw filter draws again
    from stream 64 + j while the message is unsafe; reward: the row's mean plus noise_sd times
    the noise stream's normal; next context: floor(12 u) of the context stream at step + 1."""
    st = t.safety
    off, cnt = int(t.offsets[action, context]), int(t.counts[action, context])
    row = off + math.floor(counter_rng.uniform(key, step, counter_rng.STREAM_ROW) * cnt)
    tokens, redraws = int(st.row_tokens[row]), 0
    while st.mode == 2 and st.row_unsafe[row] and redraws < st.max_redraws:
        redraws += 1
        row = off + math.floor(counter_rng.uniform(key, step, 64 + redraws) * cnt)
        tokens += int(st.row_tokens[row])
    delivered = int(st.none_rows[context]) if st.mode and st.row_unsafe[row] else row
    reward = float(t.row_reward[delivered])
    if noise_sd:
        u = counter_rng.uniform(key, step, counter_rng.STREAM_NOISE)
        reward += noise_sd * float(ndtri(u))
    nxt = math.floor(counter_rng.uniform(key, step + 1, counter_rng.STREAM_CONTEXT) * 12)
    return delivered, reward, nxt, row, redraws, tokens


@pytest.mark.parametrize("preset,kw", [("3d", {}), ("optional", dict(safety_filter="redraw")),
                                       ("3d", dict(safety_filter="block"))])
@pytest.mark.parametrize("noise_sd", [0.0, 2.5])
def test_step_outcome_by_hand_for_one_episode_and_a_batch(banks, preset, kw, noise_sd):
    t = _tables(banks["scored"], preset, n_prompts=4, **kw)
    k = len(t.arm_prompts)
    keys = np.array([3, 17, 2**62 + 5, 123456789, 99, 7, 2**33, 11], dtype=np.uint64)
    step = 5
    contexts = np.array([0, 5, 11, 3, 5, 7, 2, 9])
    actions = np.arange(8) % k
    want = [_step_by_hand(t, int(key), step, int(c), int(a), noise_sd)
            for key, c, a in zip(keys, contexts, actions)]
    got = dyn.step_outcome(t, keys, step, contexts, actions, noise_sd)
    for j in (0, 2, 3, 4, 5):
        assert [int(x) for x in got[j]] == [w[j] for w in want], j
    np.testing.assert_allclose(got[1], [w[1] for w in want], rtol=0, atol=1e-9)
    for key, c, a, w in zip(keys, contexts, actions, want):
        one = dyn.step_outcome(t, int(key), step, int(c), int(a), noise_sd)
        assert one[0] == w[0] and one[2:] == w[2:] and one[1] == pytest.approx(w[1], abs=1e-9)
        assert type(one[0]) is int and type(one[2]) is int
        assert dyn.step_dynamics(t, int(key), step, int(c), int(a), noise_sd) == one[:3]
    three = dyn.step_dynamics(t, keys, step, contexts, actions, noise_sd)
    assert len(three) == 3
    for x, y in zip(three, got[:3]):
        np.testing.assert_array_equal(x, y)
    assert got[0].dtype == got[2].dtype == np.int64
    if kw:  # the filter acted somewhere in this batch (else the case would test nothing)
        assert any(w[0] != w[3] for w in want) or any(w[4] for w in want)


def test_step_draws_depend_on_the_step_and_the_key(banks):
    t = _tables(banks["scored"], prompt_ids=(BIG_CELL[0], 0))
    key, c, a = 41, BIG_CELL[1], 0  # a cell of 20 messages
    rows = [dyn.step_outcome(t, key, s, c, a, 0.0)[0] for s in range(30)]
    assert len(set(rows)) > 8 and t.counts[a, c] == 20
    assert [dyn.step_outcome(t, k, 0, c, a, 0.0)[0] for k in range(30)] != rows[:1] * 30
    nexts = {dyn.step_outcome(t, key, s, c, a, 0.0)[2] for s in range(60)}
    assert len(nexts) == 12


# ----------------------------------------------------------------- the reward offset
def test_reward_offset_is_the_mean_expected_reward_or_zero(banks):
    t = _tables(banks["plain"], n_prompts=3)
    on = GambitConfig(preset="3d", bank=banks["plain"], n_prompts=3, center_rewards=True)
    off = GambitConfig(preset="3d", bank=banks["plain"], n_prompts=3)
    want = sum(float(x) for x in t.expected.ravel()) / t.expected.size
    assert dyn.reward_offset(on, t) == pytest.approx(want, rel=1e-14)
    assert type(dyn.reward_offset(on, t)) is float
    assert dyn.reward_offset(off, t) == 0.0 and type(dyn.reward_offset(off, t)) is float
    assert want > 50  # the study's rewards sit near 83


# ----------------------------------------------------------------- context ids
def test_context_id_of_every_accepted_form():
    for c in range(12):
        loc, bucket = divmod(c, 4)
        label = f"{LOCS[loc]}, {BUCKETS[bucket]}"
        assert dyn.context_id_of(label) == c
        assert dyn.context_id_of(np.str_(label)) == c
        assert dyn.context_id_of(c) == c and dyn.context_id_of(np.int64(c)) == c
        assert dyn.context_id_of(np.array(c, dtype=np.uint8)) == c
        assert dyn.context_id_of(np.array([loc, bucket])) == c
        assert dyn.context_id_of([loc, bucket]) == c
        assert dyn.context_id_of(Context(loc, bucket)) == c
        assert dyn.context_id_of({"location": LOCS[loc], "step_bucket": BUCKETS[bucket]}) == c
        assert dyn.context_id_of(MappingProxyType(
            {"location": LOCS[loc], "step_bucket": BUCKETS[bucket]})) == c
    assert type(dyn.context_id_of(np.int64(3))) is int
    assert type(dyn.context_id_of(np.array([1, 2]))) is int
    assert type(dyn.context_id_of(Context(1, 1))) is int


GENERIC = ("pass info['context'] (a label such as 'home, 0-4,999'), an id 0..11 (an integer), "
           "an observation [location 0..2, step_bucket 0..3] or a Context")


@pytest.mark.parametrize("bad", [12, -1, 1.0, 2.9, True, np.array([3, 0]), np.array([0, 4]),
                                 np.array([-1, 0]), np.array([0, -1]), [1, 2, 3],
                                 np.array([1.0, 2.0]), np.array([[1, 2]]), None])
def test_context_id_of_refuses_what_is_no_context(bad):
    with pytest.raises(ValueError) as err:
        dyn.context_id_of(bad)
    assert str(err.value) == f"cannot read a context from {bad!r}: {GENERIC}"


@pytest.mark.parametrize("bad", [{"location": "home"}, {"location": "gym", "step_bucket":
                                                        "0-4,999"},
                                 {"location": "home", "step_bucket": "lots"}])
def test_context_id_of_refuses_a_dict_naming_its_keys(bad):
    with pytest.raises(ValueError) as err:
        dyn.context_id_of(bad)
    assert str(err.value) == (
        f"cannot read a context from {bad!r}: a dict needs 'location' in ('home', 'work', "
        "'other') and 'step_bucket' in ('0-4,999', '5,000-9,999', '10,000-15,000', "
        "'more than 15,000')")
    assert err.value.__suppress_context__


def test_context_id_of_refuses_an_unknown_label():
    with pytest.raises(ValueError, match=re.escape("not a context label: 'gym, 0-4,999'")):
        dyn.context_id_of("gym, 0-4,999")


# ----------------------------------------------------------------- the simulator
def test_simulator_cells_means_and_draws_by_hand(banks):
    t = _tables(banks["scored"], "optional", n_prompts=3)
    sim = dyn.GambitSimulator(t)
    bank = t.bank
    assert sim.n_actions == 4 and sim.embedding_names == ("optimism", "formality", "severity")
    arms = t.arm_prompts.tolist()
    unsafe = _unsafe(bank)
    assert sim.mean_embedding_table.shape == (12, 4, 3)
    assert not sim.mean_embedding_table.flags.writeable
    for c in range(12):
        label = f"{LOCS[c // 4]}, {BUCKETS[c % 4]}"
        np.testing.assert_array_equal(sim.mean_embeddings(label), sim.mean_embedding_table[c])
        np.testing.assert_array_equal(sim.cell_embeddings(0, c), np.zeros((1, 3)))
        assert sim.cell_texts(0, c).tolist() == [""]
        assert sim.cell_unsafe(0, label).tolist() == [False]
        np.testing.assert_array_equal(sim.mean_embedding_table[c, 0], np.zeros(3))
        for a in range(1, 4):
            rows = _cell_rows(bank, arms[a], c)
            z = bank.scores[rows][:, :3]
            np.testing.assert_array_equal(sim.cell_embeddings(a, label), z)
            assert sim.cell_texts(a, c).tolist() == bank.texts[rows].tolist()
            assert sim.cell_unsafe(a, c).tolist() == unsafe[rows].tolist()
            np.testing.assert_allclose(sim.mean_embedding_table[c, a],
                                       z.astype(np.float64).sum(axis=0) / len(rows),
                                       rtol=1e-12, atol=1e-12)
    assert sim.mean_embedding_table.dtype == np.float64
    # simulate: n draws with replacement, offset + rng.integers(count)
    a = arms.index(BIG_CELL[0]) if BIG_CELL[0] in arms else 1
    c = BIG_CELL[1]
    start, count = int(t.offsets[a, c]), int(t.counts[a, c])
    draws = sim.simulate(a, c, 6, np.random.default_rng(11))
    rows = start + np.random.default_rng(11).integers(count, size=6)
    assert [d[0] for d in draws] == [str(bank.texts[r]) for r in rows]
    for (_, z), r in zip(draws, rows):
        np.testing.assert_array_equal(z, t.working[r])
    assert all(type(d[0]) is str for d in draws) and len(draws) == 6


def test_simulator_without_safety_scores_and_its_refusals(banks):
    sim = dyn.GambitSimulator(_tables(banks["plain"], n_prompts=2))
    assert sim.cell_unsafe(0, 0) is None and sim.n_actions == 2
    for call in (lambda: sim.cell_embeddings(2, 0), lambda: sim.cell_texts(2, 0),
                 lambda: sim.simulate(2, 0, 1, np.random.default_rng(0))):
        with pytest.raises(ValueError) as err:
            call()
        assert str(err.value) == "action must be an integer in 0..1, got 2"
    scored = dyn.GambitSimulator(_tables(banks["scored"], n_prompts=2))
    with pytest.raises(ValueError) as err:
        scored.cell_unsafe(5, 0)
    assert str(err.value) == "action must be an integer in 0..1, got 5"
    for n in (0, 1.5):
        with pytest.raises(ValueError) as err:
            sim.simulate(0, 0, n, np.random.default_rng(0))
        assert str(err.value) == f"n must be a positive integer, got {n!r}"
    with pytest.raises(ValueError, match="^cannot read a context from 12: "):
        sim.cell_texts(0, 12)
    with pytest.raises(ValueError, match="^cannot read a context from 13: "):
        sim.cell_embeddings(0, 13)
    with pytest.raises(ValueError, match="^cannot read a context from 14: "):
        sim.simulate(0, 14, 1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="^cannot read a context from 15: "):
        scored.cell_unsafe(0, 15)
