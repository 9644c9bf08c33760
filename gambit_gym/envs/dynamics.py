"""The GAMBIT dynamics, precomputed once per (bank, configuration) and shared.

:func:`build_tables` turns a bank and a config into flat arrays: the mean reward of every bank
message (``row_reward``), each arm's cell of rows per context, the exact expected reward of
every (context, arm) and the oracle. :func:`step_dynamics` is the one pure step function used by
both the single env and the native vector env, so there is one copy of the dynamics.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import ndtri

from gambit_gym._validate import check_index, check_positive_int
from gambit_gym.core import counter_rng
from gambit_gym.envs.config import GambitConfig
from gambit_gym.envs.outcomes import (
    ContextTerms,
    LinearOutcome,
    MLPOutcome,
    calibrate_linear,
    calibrate_mlp,
    oriented_study_coefficients,
)
from gambit_gym.envs.safety import (
    FILTER_MODES,
    SCORE_FIX,
    SafetyTables,
    feasible_optimum,
    filter_draws,
    filtered_cell_values,
    unsafe_rows,
)
from gambit_gym.envs.study import outcome_facts
from gambit_gym.text.bank import ResponseBank, load_bank
from gambit_gym.text.contexts import (
    ALL_CONTEXTS,
    LOCATIONS,
    N_CONTEXTS,
    STEP_BUCKETS,
    Context,
)

NO_MESSAGE = -1  #: ``prompt_id`` reported when the optional-message env sends nothing.


@dataclass(frozen=True)
class GambitTables:
    """Everything a step needs, as flat read-only arrays (n = bank rows + 12 sentinel rows).

    Attributes:
        bank: the response bank.
        outcome: the calibrated outcome model.
        arm_prompts: prompt id of each action, ``(K,)`` (``NO_MESSAGE`` for "send nothing").
        offsets: first row of each (action, context) cell, ``(K, 12)``.
        counts: rows in each (action, context) cell, ``(K, 12)``.
        row_reward: mean reward of each row, ``(n,)`` float64.
        texts: message of each row, ``(n,)`` object.
        working: working-dim scores of each row, ``(n, d_w)`` float32.
        prompt_texts: rendered query per (action, context), ``(K, 12)`` object.
        expected: exact expected reward per (context, action), ``(12, K)``.
        optimal_action: oracle action per context, ``(12,)``.
        optimal_reward: oracle expected reward per context, ``(12,)``.
        observations: observation of each context id, ``(12, 2)`` int64.
    """

    bank: ResponseBank
    outcome: LinearOutcome | MLPOutcome
    working_names: tuple[str, ...]
    true_names: tuple[str, ...]
    arm_prompts: np.ndarray
    offsets: np.ndarray
    counts: np.ndarray
    row_reward: np.ndarray
    texts: np.ndarray
    working: np.ndarray
    prompt_texts: np.ndarray
    expected: np.ndarray
    optimal_action: np.ndarray
    optimal_reward: np.ndarray
    observations: np.ndarray
    location_names: np.ndarray
    bucket_names: np.ndarray
    cells_py: tuple = ()  #: ``(offset, count)`` per (action, context) as Python ints
    row_reward_py: tuple = ()  #: ``row_reward`` as Python floats (the single env's fast path)
    #: objects derived from these tables, built on first use and kept with them (the simulator,
    #: the user-dynamics tables), so they live and go exactly as long as the tables
    derived: dict = field(default_factory=dict, repr=False, compare=False)
    #: ``info["context"]`` of each context id, ``(12,)`` object array of ``np.str_``
    context_labels: np.ndarray | None = None
    #: ``max(optimal_reward[c] - expected[c, a], 0)`` per (context, action), ``(12, K)``
    regret: np.ndarray | None = None
    #: ``info["embedding_names"]``: the working dims, a ``(d_w,)`` object array of ``np.str_``
    #: (object, not a fixed-width str dtype, which Gymnasium's checkers compare with allclose)
    working_names_array: np.ndarray | None = None
    #: the safety filter's and the cost's per-row arrays (:mod:`gambit_gym.envs.safety`)
    safety: SafetyTables | None = None


def build_outcome(config: GambitConfig, bank: ResponseBank) -> LinearOutcome | MLPOutcome:
    """The calibrated outcome model of a config on a bank (see :mod:`.outcomes`)."""
    true_scores = bank.scores[:, bank.dimension_index(config.true_dims)]
    facts = outcome_facts(config.outcome_facts if config.outcome == "linear" else "3d")
    terms = ContextTerms()
    if config.covariates:
        loc = facts["curr_loc"]
        terms = ContextTerms(tuple(float(loc.get(name, 0.0)) for name in LOCATIONS),
                             float(facts["prev_steps_per_bucket"]))
    if config.outcome == "mlp":
        return calibrate_mlp(true_scores, facts["intercept"], config.calibration_sd,
                             seed=config.mlp_seed, context_terms=terms)
    coef = oriented_study_coefficients(facts, config.true_dims)
    return calibrate_linear(true_scores, coef, facts["intercept"], config.calibration_sd, terms)


def select_arms(prompt_means: np.ndarray, k: int, rule: str = "spread") -> np.ndarray:
    """K prompts evenly spread by true expected outcome (K=3: highest, median, lowest).

    Args:
        prompt_means: each prompt's expected reward averaged over contexts, ``(P,)``.
        k: how many to pick (at most P).
        rule: ``"spread"`` (as above) or ``"best"`` (the K highest).

    Returns:
        prompt ids ordered from the highest expected reward down, ``(k,)``.
    """
    p = len(prompt_means)
    if k > p:
        raise ValueError(f"n_prompts={k} but the bank has only {p} prompts")
    order = np.argsort(-prompt_means, kind="stable")
    if rule == "best":
        return order[:k]
    return order[np.round(np.linspace(0, p - 1, k)).astype(np.int64)]


#: Table sets by configuration and bank file, most recently used last; at most
#: :data:`MAX_TABLE_SETS` are kept (each holds a copy of the bank's arrays).
_TABLES: OrderedDict[tuple, GambitTables] = OrderedDict()
MAX_TABLE_SETS = 8


def build_tables(config: GambitConfig) -> GambitTables:
    """The shared dynamics tables of a config, built once and kept while recently used.

    The cache key is :meth:`GambitConfig.table_key` (noise and horizon do not change the
    tables) plus the bank file's identity, so every env instance on the same bank and
    configuration shares one set of arrays.
    """
    from gambit_gym.text.bank import default_bank_path

    path = Path(config.bank) if config.bank is not None else default_bank_path()
    stat = path.stat() if path.exists() else None
    key = (config.table_key(), str(path.resolve()),
           (stat.st_mtime_ns, stat.st_size) if stat else None)
    tables = _TABLES.get(key)
    if tables is None:
        tables = _TABLES[key] = _build_tables(config)
        while len(_TABLES) > MAX_TABLE_SETS:
            _TABLES.popitem(last=False)
    _TABLES.move_to_end(key)
    return tables


def _build_tables(config: GambitConfig) -> GambitTables:
    bank = load_bank(config.bank)
    mode = FILTER_MODES[config.safety_filter]
    if (mode or config.unsafe_budget is not None) and bank.safety is None:
        what = (f"safety_filter={config.safety_filter!r}" if mode
                else f"unsafe_budget={config.unsafe_budget!r}")
        raise ValueError(f"{what} needs a response bank with safety scores, and "
                         f"{config.bank or 'the shipped bank'!r} has none: {SCORE_FIX}")
    outcome = build_outcome(config, bank)
    n_rows = len(bank)
    true_idx = bank.dimension_index(config.true_dims)
    row_reward = outcome.mean_reward(bank.scores[:, true_idx], bank.context_ids)
    if np.any(bank.counts == 0):
        missing = np.argwhere(bank.counts == 0)[:5].tolist()
        raise ValueError(f"the bank has empty (prompt, context) cells, e.g. {missing}")
    # Mean reward per (prompt, context), exact over the bank.
    cell_sum = np.zeros(bank.n_prompts * N_CONTEXTS)
    np.add.at(cell_sum, bank.prompt_ids.astype(np.int64) * N_CONTEXTS + bank.context_ids,
              row_reward)
    cell_mean = cell_sum.reshape(bank.n_prompts, N_CONTEXTS) / bank.counts
    if config.prompt_ids is not None:
        bad = [p for p in config.prompt_ids if p >= bank.n_prompts]
        if bad:
            raise ValueError(f"prompt_ids {bad} are not in the bank (0..{bank.n_prompts - 1})")
        arms = np.array(config.prompt_ids, dtype=np.int64)
    else:
        arms = select_arms(cell_mean.mean(axis=1), config.n_prompts, config.arm_selection)
    expected = cell_mean[arms].T.copy()  # (12, K)
    offsets = bank.offsets[arms].astype(np.int64)
    counts = bank.counts[arms].astype(np.int64)
    prompt_texts = np.array([[bank.prompt_text(int(p), c) for c in range(N_CONTEXTS)]
                             for p in arms], dtype=object)
    working_names = tuple(config.working_dims)
    if config.embedding == "scores":
        working = bank.scores[:, bank.dimension_index(config.working_dims)]
    else:  # the message's sentence vector or its PCA: gambit_gym.text.sentence_vectors
        from gambit_gym.text.sentence_vectors import working_embedding

        working, working_names = working_embedding(bank, config.embedding, config.bank)
    texts = bank.texts
    none_reward = none_rows = None
    if config.optional or mode:
        if isinstance(config.no_message_reward, str):
            none_reward = {"median": np.median, "min": np.min, "max": np.max}[
                config.no_message_reward](expected, axis=1)
        else:
            none_reward = np.full(N_CONTEXTS, float(config.no_message_reward))
        none_rows = n_rows + np.arange(N_CONTEXTS)
    unsafe_rate = np.full(expected.shape, np.nan)
    unsafe = unsafe_rows(bank, config.unsafe_categories)
    if unsafe is not None:  # the exact filtered value of each (context, prompt)
        for i in range(len(arms)):
            for c in range(N_CONTEXTS):
                e, q, _ = filtered_cell_values(
                    row_reward, unsafe, int(offsets[i, c]), int(counts[i, c]),
                    none_reward[c] if none_reward is not None else 0.0, mode,
                    config.max_redraws if mode == 2 else 0)
                unsafe_rate[c, i] = q
                if mode:  # unfiltered: keep the cell means above, bit for bit
                    expected[c, i] = e
    if config.optional:
        # 12 sentinel rows (one per context) stand for "no message": empty text, zero
        # embedding, and the configured expected reward.
        row_reward = np.concatenate([row_reward, none_reward])
        texts = np.concatenate([texts, np.array([""] * N_CONTEXTS, dtype=object)])
        working = np.concatenate([working, np.zeros((N_CONTEXTS, working.shape[1]),
                                                    dtype=np.float32)])
        arms = np.concatenate([[NO_MESSAGE], arms])
        offsets = np.vstack([n_rows + np.arange(N_CONTEXTS), offsets])
        counts = np.vstack([np.ones(N_CONTEXTS, dtype=np.int64), counts])
        prompt_texts = np.vstack([np.array([""] * N_CONTEXTS, dtype=object), prompt_texts])
        expected = np.hstack([none_reward[:, None], expected])
        unsafe_rate = np.hstack([np.zeros((N_CONTEXTS, 1)), unsafe_rate])
    elif mode:  # blocked messages: 12 "no message" rows, as the Optional env's
        row_reward = np.concatenate([row_reward, none_reward])
        texts = np.concatenate([texts, np.array([""] * N_CONTEXTS, dtype=object)])
        working = np.concatenate([working, np.zeros((N_CONTEXTS, working.shape[1]),
                                                    dtype=np.float32)])
    safety = _safety_tables(config, bank, unsafe, len(row_reward), none_rows, unsafe_rate,
                            mode, arms, prompt_texts)
    optimal_action = feasible_optimum(expected, safety.delivery_unsafe_rate,
                                      config.unsafe_budget)
    optimal_reward = expected[np.arange(N_CONTEXTS), optimal_action]
    working = np.ascontiguousarray(working, dtype=np.float32)
    arms = arms.astype(np.int64, copy=False)
    # np.str_ elements: what info["prompt"] hands out as is (a str with a numpy dtype)
    prompt_texts = np.array([[np.str_(q) for q in row] for row in prompt_texts], dtype=object)
    arrays = [arms, offsets, counts, row_reward, texts, working, prompt_texts, expected]
    for arr in arrays:
        arr.setflags(write=False)
    observations = np.stack([c.as_observation() for c in ALL_CONTEXTS])
    return GambitTables(
        bank=bank, outcome=outcome, working_names=working_names,
        true_names=tuple(config.true_dims),
        arm_prompts=arms, offsets=offsets, counts=counts, row_reward=row_reward, texts=texts,
        working=working, prompt_texts=prompt_texts, expected=expected,
        optimal_action=optimal_action, optimal_reward=optimal_reward,
        observations=observations,
        location_names=np.array([c.location_name for c in ALL_CONTEXTS], dtype=object),
        bucket_names=np.array([c.step_bucket_name for c in ALL_CONTEXTS], dtype=object),
        cells_py=tuple(tuple(zip(o, n)) for o, n in zip(offsets.tolist(), counts.tolist())),
        row_reward_py=tuple(row_reward.tolist()),
        regret=_read_only(np.maximum(optimal_reward[:, None] - expected, 0.0)),
        context_labels=_read_only(np.array([np.str_(c.label) for c in ALL_CONTEXTS],
                                           dtype=object)),
        working_names_array=_read_only(np.array([np.str_(n) for n in working_names],
                                                dtype=object)),
        safety=safety,
    )


def _safety_tables(config: GambitConfig, bank: ResponseBank, unsafe: np.ndarray | None, n: int,
                   none_rows: np.ndarray | None, unsafe_rate: np.ndarray,
                   mode: int, arms: np.ndarray, prompt_texts: np.ndarray) -> SafetyTables:
    """The per-row safety and token arrays of a table set of ``n`` rows (sentinels last).

    Also the prompt tokens of each (action, context) query (0 for "send nothing").
    """
    from gambit_gym.text.prompt_tokens import library_of
    from gambit_gym.text.prompt_tokens import prompt_tokens as count_queries
    from gambit_gym.text.tokens import bank_token_counts

    n_bank = len(bank)
    tokens, source = bank_token_counts(bank)
    row_tokens = np.zeros(n, dtype=np.int64)
    row_tokens[:n_bank] = tokens
    row_unsafe = np.zeros(n, dtype=bool)
    row_safety = None
    if bank.safety is not None:
        row_unsafe[:n_bank] = unsafe
        row_safety = np.zeros((n, bank.safety.shape[1]), dtype=np.float32)
        row_safety[:n_bank] = bank.safety
    is_message = np.zeros(n, dtype=bool)
    is_message[:n_bank] = True
    delivery = unsafe_rate.copy() if mode == 0 else np.where(np.isnan(unsafe_rate), np.nan,
                                                             0.0)
    system, few_shot = library_of(bank)
    cell_prompt_tokens = np.zeros(prompt_texts.shape, dtype=np.int64)
    sends = np.asarray(arms) != NO_MESSAGE
    counts, prompt_source = count_queries(system, few_shot,
                                          [str(q) for q in prompt_texts[sends].ravel()])
    cell_prompt_tokens[sends] = counts.reshape(-1, prompt_texts.shape[1])
    arrays = [row_tokens, row_unsafe, is_message, unsafe_rate, delivery, cell_prompt_tokens]
    if row_safety is not None:
        arrays.append(row_safety)
    if none_rows is not None:
        none_rows = none_rows.astype(np.int64)
        arrays.append(none_rows)
    for arr in arrays:
        arr.setflags(write=False)
    return SafetyTables(
        mode=mode, max_redraws=config.max_redraws if mode == 2 else 0,
        scored=bank.safety is not None, row_unsafe=row_unsafe, row_safety=row_safety,
        row_tokens=row_tokens, is_message=is_message, none_rows=none_rows,
        unsafe_rate=unsafe_rate, delivery_unsafe_rate=delivery, token_source=source,
        row_unsafe_py=tuple(row_unsafe.tolist()), row_tokens_py=tuple(row_tokens.tolist()),
        is_message_py=tuple(is_message.tolist()), prompt_tokens=cell_prompt_tokens,
        prompt_tokens_py=tuple(map(tuple, cell_prompt_tokens.tolist())),
        prompt_token_source=prompt_source)


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def initial_contexts(keys: np.ndarray | int) -> np.ndarray | int:
    """Context ids of the first decision of episodes with these keys."""
    return counter_rng.floor_index(
        counter_rng.uniform(keys, 0, counter_rng.STREAM_CONTEXT) * N_CONTEXTS)


def step_dynamics(
    tables: GambitTables, keys: np.ndarray | int, t: int, contexts: np.ndarray | int,
    actions: np.ndarray | int, noise_sd: float,
) -> tuple[np.ndarray | int, np.ndarray | float, np.ndarray | int]:
    """``(rows, rewards, next_contexts)`` of :func:`step_outcome` (the row each user got)."""
    return step_outcome(tables, keys, t, contexts, actions, noise_sd)[:3]


def step_outcome(
    tables: GambitTables, keys: np.ndarray | int, t: int, contexts: np.ndarray | int,
    actions: np.ndarray | int, noise_sd: float,
) -> tuple[Any, ...]:
    """One step for a batch of episodes, or for one episode given as Python ints.

    The same code serves the vector env (arrays) and the single env (ints, which avoids
    numpy's per-call overhead); :mod:`.counter_rng` makes both paths bit-identical.

    Args:
        tables: the config's tables.
        keys: episode keys, uint64 ``(R,)`` or an int.
        t: the step index within the episode (0-based), the same for the whole batch.
        contexts: context ids of this decision, ``(R,)`` or an int.
        actions: actions in range, ``(R,)`` int64 or an int.
        noise_sd: reward noise sd.

    Returns:
        ``(rows, rewards, next_contexts, drawn, redraws, tokens)``: the row each user received
        (a "no message" row where the safety filter blocked), the rewards, the next decision's
        context ids, the last message drawn, the redraws and the tokens generated (arrays
        ``(R,)``, or scalars; see :func:`gambit_gym.envs.safety.filter_draws`).
    """
    st = tables.safety
    if isinstance(keys, int):  # one episode: Python scalars avoid numpy's per-call overhead
        offsets, counts = tables.cells_py[actions][contexts]
        u = counter_rng.uniform(keys, t, counter_rng.STREAM_ROW)
        rows = offsets + int(u * counts)
        rows, drawn, redraws, tokens = filter_draws(st, offsets, counts, keys, t, contexts,
                                                    rows)
        rewards = tables.row_reward_py[rows]
        if noise_sd:
            rewards = rewards + noise_sd * counter_rng.normal(keys, t, counter_rng.STREAM_NOISE)
        u_next = counter_rng.uniform(keys, t + 1, counter_rng.STREAM_CONTEXT)
        return rows, rewards, int(u_next * N_CONTEXTS), drawn, redraws, tokens
    draws = ((t, counter_rng.STREAM_ROW), (t + 1, counter_rng.STREAM_CONTEXT))
    if noise_sd:
        draws += ((t, counter_rng.STREAM_NOISE),)
    u = counter_rng.uniforms(keys, draws)  # the same numbers as one call per draw
    offsets, counts = tables.offsets[actions, contexts], tables.counts[actions, contexts]
    rows = offsets + (u[0] * counts).astype(np.int64)
    rows, drawn, redraws, tokens = filter_draws(st, offsets, counts, keys, t, contexts, rows)
    rewards = tables.row_reward[rows]
    if noise_sd:
        rewards = rewards + noise_sd * ndtri(u[2])
    return rows, rewards, (u[1] * N_CONTEXTS).astype(np.int64), drawn, redraws, tokens


def reward_offset(config: GambitConfig, tables: GambitTables) -> float:
    """What ``center_rewards=True`` subtracts from rewards: the mean of ``tables.expected``.

    The mean expected reward over the 12 contexts and the K actions, one constant per
    configuration, so regret and the order of the arms in every context are unchanged. 0.0
    when the config does not centre.
    """
    return float(np.asarray(tables.expected, dtype=np.float64).mean()) \
        if config.center_rewards else 0.0


def context_id_of(context: object) -> int:
    """A context id from what a user holds: an info's context, an id, an observation, a Context.

    Accepted: ``info["context"]`` (a label such as ``"home, 0-4,999"``, see
    :attr:`~gambit_gym.text.contexts.Context.label`), or one element of a vector env's
    ``info["context"]``; an id ``0..11``; an observation ``[location, step_bucket]``; a
    :class:`~gambit_gym.text.contexts.Context`; or a dict ``{"location", "step_bucket"}``.
    """
    if hasattr(context, "id"):
        return int(context.id)  # type: ignore[attr-defined]
    if isinstance(context, str):
        return Context.from_label(context).id
    if isinstance(context, Mapping):
        try:
            loc, bucket = context["location"], context["step_bucket"]
            return LOCATIONS.index(str(loc)) * len(STEP_BUCKETS) + STEP_BUCKETS.index(str(bucket))
        except (KeyError, ValueError):
            raise ValueError(
                f"cannot read a context from {dict(context)!r}: a dict needs 'location' in "
                f"{LOCATIONS} and 'step_bucket' in {STEP_BUCKETS}") from None
    arr = np.asarray(context)
    if arr.dtype.kind in "iu":  # integers only: 1.9 is no context, True is no id
        if arr.shape == (2,) and 0 <= arr[0] < len(LOCATIONS) and \
                0 <= arr[1] < len(STEP_BUCKETS):
            return int(arr[0]) * len(STEP_BUCKETS) + int(arr[1])
        if arr.ndim == 0 and 0 <= int(arr) < N_CONTEXTS:
            return int(arr)
    raise ValueError(f"cannot read a context from {context!r}: pass info['context'] (a label "
                     f"such as 'home, 0-4,999'), an id 0..{N_CONTEXTS - 1} (an integer), an "
                     f"observation [location 0..{len(LOCATIONS) - 1}, step_bucket "
                     f"0..{len(STEP_BUCKETS) - 1}] or a Context")


class GambitSimulator:
    """Simulator access for agents: draws no user sees, and each arm's cell of the bank.

    This is what poGAMBITTS uses at action time; it never reveals rewards.
    """

    def __init__(self, tables: GambitTables) -> None:
        self._tables = tables
        k = len(tables.arm_prompts)
        d = tables.working.shape[1]
        means = np.zeros((N_CONTEXTS, k, d))
        for a in range(k):
            for c in range(N_CONTEXTS):
                means[c, a] = self.cell_embeddings(a, c).astype(np.float64).mean(axis=0)
        means.setflags(write=False)
        self.mean_embedding_table = means  #: ``(12, K, d_w)`` exact mean working embeddings.
        self.embedding_names = tables.working_names

    @property
    def n_actions(self) -> int:
        """K."""
        return len(self._tables.arm_prompts)

    def cell_embeddings(self, action: int, context: object) -> np.ndarray:
        """Working embeddings of every bank message of (action, context), ``(n, d_w)``."""
        c = context_id_of(context)
        action = check_index("action", action, self.n_actions)
        start, count = self._tables.offsets[action, c], self._tables.counts[action, c]
        return self._tables.working[start:start + count]

    def cell_texts(self, action: int, context: object) -> np.ndarray:
        """Every bank message of (action, context), ``(n,)``."""
        c = context_id_of(context)
        action = check_index("action", action, self.n_actions)
        start, count = self._tables.offsets[action, c], self._tables.counts[action, c]
        return self._tables.texts[start:start + count]

    def cell_unsafe(self, action: int, context: object) -> np.ndarray | None:
        """Whether each bank message of (action, context) is unsafe, ``(n,)`` bool.

        What an app learns by running its safety classifier on simulator draws no user sees.
        None where the bank has no safety scores; all False for "send nothing".
        """
        st = self._tables.safety
        if st is None or not st.scored:
            return None
        c = context_id_of(context)
        action = check_index("action", action, self.n_actions)
        start, count = self._tables.offsets[action, c], self._tables.counts[action, c]
        return st.row_unsafe[start:start + count]

    def mean_embeddings(self, context: object) -> np.ndarray:
        """Mean working embedding of each arm in a context, ``(K, d_w)``."""
        return self.mean_embedding_table[context_id_of(context)]

    def simulate(self, action: int, context: object, n: int,
                 rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
        """``n`` (text, working embedding) draws for (action, context), with replacement."""
        c = context_id_of(context)
        action = check_index("action", action, self.n_actions)
        n = check_positive_int("n", n)
        start, count = self._tables.offsets[action, c], self._tables.counts[action, c]
        rows = start + rng.integers(count, size=n)
        return [(str(self._tables.texts[r]), self._tables.working[r]) for r in rows]
