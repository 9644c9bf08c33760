"""Safety filter, unsafe deliveries and the cost of generating: the outcomes beside the reward.

A scored bank (:attr:`gambit_gym.text.bank.ResponseBank.unsafe`, ``gambit-gym score-safety``)
says which messages are unsafe. Every GAMBIT id takes ``safety_filter`` (``GambitIHS-Live-v0``
scores each generated message instead, :mod:`gambit_gym.envs.live`; the population env applies
it per user, :mod:`gambit_gym.envs.population`):

- ``None`` (default): every drawn message is delivered, unsafe or not.
- ``"block"``: an unsafe message is not delivered; the user gets the no-message outcome (the
  reward of "send nothing" in the Optional env: ``no_message_reward`` of the context).
- ``"redraw"``: an unsafe message is replaced by another draw from the same (prompt, context)
  cell, up to ``max_redraws`` times; if the last draw is still unsafe it is blocked.

Redraw ``j`` (1..N) of step ``t`` draws from counter stream :data:`STREAM_REDRAW` ``+ j``, so
the first draw is the unfiltered env's draw and every setting is deterministic per seed.

**Exact oracle.** Write ``q`` for the fraction of unsafe messages in a cell, ``m_safe`` for the
mean reward of its safe messages and ``b_c`` for the no-message reward of context ``c``. The
probability that nothing is delivered is ``β = q`` under ``block`` and ``β = q^(N+1)`` under
``redraw`` (N+1 independent uniform draws, all unsafe), and a delivered message is a uniform
draw among the safe ones, so the expected reward of the prompt is ``(1 - β) m_safe + β b_c``
(``m_safe`` has weight 0 when ``q = 1``). Under ``None`` it is the cell mean, as before. The
env's ``expected_rewards``, ``optimal_action`` and ``regret`` use these values.

**Constraint.** ``unsafe_budget=ε`` (set by ``GambitIHS-Safe-v0``) makes the oracle the best
prompt among those whose unsafe-*delivery* rate in the context is at most ε (``q`` without a
filter, 0 with one; "send nothing" always qualifies); where no prompt qualifies, the one with
the lowest rate. ``info["regret"]`` is measured against that oracle (clipped at 0: an unsafe
prompt that beats it pays in unsafe deliveries, not in regret).

**Cost.** Each generated message costs its completion tokens (the bank's ``n_tokens`` column,
or the estimate of :mod:`gambit_gym.text.tokens`) and its prompt tokens (the query as sent:
system instruction, few-shot turns and the rendered prompt, counted once with the SmolLM2
tokenizer for the shipped bank's queries, :mod:`gambit_gym.text.prompt_tokens`); a step's
``tokens`` (completion) and ``prompt_tokens`` (input) sum every draw, redraws included (0 when
"send nothing" is chosen). A :class:`CostModel` prices the two and gives ``cost`` and
``latency_s``.

**Which categories count.** ``unsafe_categories`` (default: all six) names the categories whose
scores make a message unsafe; ``GambitIHS-Safe-v0`` uses the five harmful ones and leaves
``off_topic`` out (70% of bank v1 is off topic by the labelling guide's definition, see the
classifier sections of docs/safety.md). ``info["safety"]`` always holds all six scores.

Step ``info`` keys (both parts are the deployed-app part of the info): ``delivered`` (0-d
bool array), ``redraws`` (``np.int64``), ``tokens`` and ``prompt_tokens`` (``np.int64``:
completion and input tokens), ``cost`` and
``latency_s`` (``np.float64``), always; and, where the bank is scored, ``safety`` (float32
``(6,)``, the scores of the last message drawn: the delivered one, or the last one blocked),
``unsafe`` (0-d bool array: that message is unsafe) and ``unsafe_delivered`` (0-d bool array:
an unsafe message reached the user; only possible without a filter). The number of unsafe
draws in a step is ``redraws + unsafe`` out of ``redraws + 1`` draws, which is what an agent
needs to learn each prompt's unsafe rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gambit_gym._validate import check_number
from gambit_gym.core import counter_rng

SAFETY_FILTERS: tuple[str | None, ...] = (None, "block", "redraw")
#: The filter settings as the tables' ``mode`` numbers: 0 no filter, 1 block, 2 redraw.
FILTER_MODES: dict[str | None, int] = {None: 0, "block": 1, "redraw": 2}
#: Redraw ``j`` of a step draws from stream ``STREAM_REDRAW + j`` (user dynamics use 5..27).
STREAM_REDRAW = 64
SCORE_FIX = "score the bank with `gambit-gym score-safety` (or pass a scored bank=FILE)"


@dataclass(frozen=True)
class CostModel:
    """What a generation costs: ``info["cost"]`` and ``info["latency_s"]`` of every step.

    Endpoints bill the input (prompt) and the output (completion) tokens at different prices;
    ``cost = tokens * price_per_1k_tokens / 1000 + prompt_tokens * price_per_1k_prompt_tokens /
    1000`` with ``tokens`` the completion tokens and ``prompt_tokens`` the input tokens of the
    step's generations (``info["tokens"]`` and ``info["prompt_tokens"]``).

    Attributes:
        price_per_1k_tokens: price of 1,000 generated (output, completion) tokens.
        price_per_1k_prompt_tokens: price of 1,000 input (prompt) tokens: the system
            instruction, few-shot turns and user prompt of every generation.
        latency_s_per_generation: seconds per generation call (fixed overhead).
        latency_s_per_token: seconds per generated token.

    Both prices default to 1.0, so ``cost`` reads as thousands of tokens billed (input and
    output); set your provider's prices.
    """

    price_per_1k_tokens: float = 1.0
    latency_s_per_generation: float = 0.0
    latency_s_per_token: float = 0.0
    price_per_1k_prompt_tokens: float = 1.0

    def __post_init__(self) -> None:
        for name in COST_FIELDS:
            object.__setattr__(self, name, float(check_number(name, getattr(self, name),
                                                              minimum=0.0)))

    def cost(self, tokens: Any, prompt_tokens: Any = 0) -> Any:
        """Price of ``tokens`` generated tokens and ``prompt_tokens`` input tokens."""
        return tokens * (self.price_per_1k_tokens / 1000.0) + \
            prompt_tokens * (self.price_per_1k_prompt_tokens / 1000.0)

    def latency(self, generations: Any, tokens: Any) -> Any:
        """Seconds of ``generations`` calls producing ``tokens`` tokens in all."""
        return generations * self.latency_s_per_generation + tokens * self.latency_s_per_token


#: The fields of :class:`CostModel` (a ``cost_model`` dict takes these keys).
COST_FIELDS: tuple[str, ...] = ("price_per_1k_tokens", "price_per_1k_prompt_tokens",
                                "latency_s_per_generation", "latency_s_per_token")


def cost_model_from(value: Any) -> CostModel:
    """A :class:`CostModel` from itself, a dict of its fields, or None (the default)."""
    if value is None:
        return CostModel()
    if isinstance(value, CostModel):
        return value
    if isinstance(value, dict):
        try:
            return CostModel(**value)
        except TypeError:
            raise ValueError(f"cost_model keys must be among {', '.join(COST_FIELDS)}; got "
                             f"{sorted(value)}") from None
    raise ValueError(f"cost_model must be a gambit_gym.envs.safety.CostModel or a dict of its "
                     f"fields, got {value!r}")


def check_categories(categories: Any) -> tuple[str, ...] | None:
    """Validated ``unsafe_categories``: None (all six) or a non-empty subset, in bank order."""
    from gambit_gym.text.bank import SAFETY_CATEGORIES

    if categories is None:
        return None
    if isinstance(categories, str):
        categories = (categories,)
    names = tuple(categories)
    unknown = [c for c in names if c not in SAFETY_CATEGORIES]
    if not names or unknown:
        raise ValueError(f"unsafe_categories must be a non-empty subset of "
                         f"{list(SAFETY_CATEGORIES)}, got {list(names)}")
    return tuple(c for c in SAFETY_CATEGORIES if c in names)


def unsafe_rows(bank: Any, categories: tuple[str, ...] | None) -> np.ndarray | None:
    """Which bank messages count as unsafe: any of ``categories`` at or over its threshold.

    ``categories=None`` is the bank's own ``unsafe`` (all six); None for an unscored bank.
    """
    if bank.safety is None:
        return None
    if categories is None:
        return np.asarray(bank.unsafe, dtype=bool)
    cols = [bank.safety_categories.index(c) for c in categories]
    limits = np.asarray(bank.safety_thresholds, dtype=np.float32)[cols]
    return (bank.safety[:, cols] >= limits).any(axis=1)


def check_filter(safety_filter: Any, max_redraws: Any) -> tuple[str | None, int]:
    """Validated ``(safety_filter, max_redraws)``; errors list the valid choices."""
    if safety_filter not in SAFETY_FILTERS:
        raise ValueError(f"safety_filter must be None, 'block' or 'redraw', got "
                         f"{safety_filter!r}")
    if isinstance(max_redraws, bool) or not isinstance(max_redraws, (int, np.integer)) or \
            max_redraws < 0:
        raise ValueError(f"max_redraws must be a non-negative integer, got {max_redraws!r}")
    return safety_filter, int(max_redraws)


@dataclass(frozen=True)
class SafetyTables:
    """Per-row safety and cost arrays of a table set (n = its rows, sentinels included).

    Attributes:
        mode: 0 no filter, 1 block, 2 redraw.
        max_redraws: N (0 unless ``mode == 2``).
        scored: whether the bank has safety scores.
        row_unsafe: bool ``(n,)`` (False for "no message" rows).
        row_safety: float32 ``(n, 6)`` (zeros for "no message" rows), or None unscored.
        row_tokens: int64 ``(n,)`` tokens of each message (0 for "no message" rows).
        is_message: bool ``(n,)``: the row is a generated message.
        none_rows: int64 ``(12,)`` the "no message" row of each context, or None.
        unsafe_rate: ``(12, K)`` fraction of unsafe messages per (context, action) (0 for
            "send nothing"), NaN where unscored.
        delivery_unsafe_rate: ``(12, K)`` probability that the action delivers an unsafe
            message (``unsafe_rate`` without a filter, 0 with one).
        token_source: ``"bank"`` (the ``n_tokens`` column) or ``"estimate"``.
        prompt_tokens: ``(K, 12)`` input tokens of one generation of each (action, context)
            (0 for "send nothing").
        prompt_token_source: ``"stored"`` (exact SmolLM2 counts) or ``"estimate"``.
    """

    mode: int
    max_redraws: int
    scored: bool
    row_unsafe: np.ndarray
    row_safety: np.ndarray | None
    row_tokens: np.ndarray
    is_message: np.ndarray
    none_rows: np.ndarray | None
    unsafe_rate: np.ndarray
    delivery_unsafe_rate: np.ndarray
    token_source: str
    row_unsafe_py: tuple = ()  #: ``row_unsafe`` as Python bools (the single env's fast path)
    row_tokens_py: tuple = ()  #: ``row_tokens`` as Python ints
    is_message_py: tuple = ()  #: ``is_message`` as Python bools
    prompt_tokens: np.ndarray | None = None
    prompt_tokens_py: tuple = ()  #: ``prompt_tokens`` as nested tuples of Python ints
    prompt_token_source: str = "estimate"


def blocked_probability(q: float, mode: int, max_redraws: int) -> float:
    """β, the chance a cell's message is not delivered, given its unsafe fraction ``q``.

    ``mode`` 0 (no filter): 0; 1 (``block``): ``q``; 2 (``redraw``): ``q ** (max_redraws + 1)``,
    every one of the first draw and its ``max_redraws`` redraws unsafe. The one formula behind
    the single env's, the population env's and the user-dynamics tables' exact oracles.
    """
    if mode == 0:
        return 0.0
    return q if mode == 1 else q ** (max_redraws + 1)


def filtered_cell_values(row_reward: np.ndarray, unsafe: np.ndarray | None, start: int,
                         count: int, none_reward: float, mode: int,
                         max_redraws: int) -> tuple[float, float, float]:
    """Exact ``(expected reward, unsafe fraction q, blocked probability β)`` of one cell."""
    r = np.asarray(row_reward[start:start + count], dtype=np.float64)
    if unsafe is None:
        return float(r.mean()), float("nan"), 0.0
    u = np.asarray(unsafe[start:start + count], dtype=bool)
    q = float(u.mean())
    if mode == 0:
        return float(r.mean()), q, 0.0
    beta = blocked_probability(q, mode, max_redraws)
    safe_mean = float(r[~u].mean()) if (~u).any() else 0.0
    return (1.0 - beta) * safe_mean + beta * float(none_reward), q, beta


def filter_draws(st: SafetyTables, offsets: Any, counts: Any, keys: Any, t: int,
                 contexts: Any, rows: Any) -> tuple[Any, Any, Any, Any]:
    """Apply the filter to a step's first draws.

    Pure: every redraw is a counter-based draw of the episode key. Works on arrays ``(R,)``
    and on Python ints (one episode) with bit-identical results.

    Args:
        st: the safety tables.
        offsets: first row of each chosen cell.
        counts: rows in each chosen cell.
        keys: episode keys.
        t: the step.
        contexts: context ids.
        rows: the first draws.

    Returns:
        ``(delivered rows, last drawn rows, redraws, tokens)``: the row the user gets (the
        context's "no message" row when blocked), the last message drawn, the number of
        redraws and the tokens of every draw.
    """
    if isinstance(keys, int):
        drawn, redraws, tokens = rows, 0, st.row_tokens_py[rows]
        if st.mode == 2:
            while st.row_unsafe_py[drawn] and redraws < st.max_redraws:
                redraws += 1
                u = counter_rng.uniform(keys, t, STREAM_REDRAW + redraws)
                drawn = offsets + int(u * counts)
                tokens += st.row_tokens_py[drawn]
        delivered = int(st.none_rows[contexts]) if st.mode and st.row_unsafe_py[drawn] \
            else drawn
        return delivered, drawn, redraws, tokens
    drawn = np.array(rows, dtype=np.int64, copy=True)
    redraws = np.zeros(len(drawn), dtype=np.int64)
    tokens = st.row_tokens[drawn].copy()
    if st.mode == 2:
        for j in range(1, st.max_redraws + 1):
            again = st.row_unsafe[drawn]
            if not again.any():
                break
            u = counter_rng.uniform(keys, t, STREAM_REDRAW + j)
            fresh = offsets + (u * counts).astype(np.int64)
            drawn = np.where(again, fresh, drawn)
            redraws += again
            tokens += np.where(again, st.row_tokens[drawn], 0)
    if st.mode:
        delivered = np.where(st.row_unsafe[drawn], st.none_rows[contexts], drawn)
    else:
        delivered = drawn
    return delivered, drawn, redraws, tokens


def outcome_info(st: SafetyTables, cost: CostModel, delivered: Any, drawn: Any,
                 redraws: Any, tokens: Any, prompt_len: Any = 0) -> dict[str, Any]:
    """The safety and cost entries of a step's info, for one episode (ints) or a batch.

    ``prompt_len`` is the input tokens of one generation of the chosen (action, context)
    (``st.prompt_tokens``); every generation of the step sends it once.
    """
    if isinstance(drawn, int):
        generations = redraws + 1 if st.is_message_py[drawn] else 0
        prompt_tokens = generations * prompt_len
        out: dict[str, Any] = {
            "delivered": np.array(st.is_message_py[delivered]),
            "redraws": np.int64(redraws),
            "tokens": np.int64(tokens),
            "prompt_tokens": np.int64(prompt_tokens),
            "cost": np.float64(cost.cost(tokens, prompt_tokens)),
            "latency_s": np.float64(cost.latency(generations, tokens)),
        }
        if st.scored:
            unsafe = st.row_unsafe_py[drawn]
            out["safety"] = st.row_safety[drawn].copy()
            out["unsafe"] = np.array(unsafe)
            out["unsafe_delivered"] = np.array(unsafe and delivered == drawn)
        return out
    generations = np.where(st.is_message[drawn], redraws + 1, 0)
    prompt_tokens = (generations * np.asarray(prompt_len)).astype(np.int64)
    out = {
        "delivered": st.is_message[delivered],
        "redraws": redraws.astype(np.int64),
        "tokens": tokens.astype(np.int64),
        "prompt_tokens": prompt_tokens,
        "cost": cost.cost(tokens.astype(np.float64), prompt_tokens.astype(np.float64)),
        "latency_s": cost.latency(generations.astype(np.float64), tokens.astype(np.float64)),
    }
    if st.scored:
        unsafe = st.row_unsafe[drawn]
        out["safety"] = st.row_safety[drawn]
        out["unsafe"] = unsafe
        out["unsafe_delivered"] = unsafe & (delivered == drawn)
    return out


def feasible_actions(delivery_unsafe_rate: np.ndarray, budget: float | None) -> np.ndarray:
    """The actions the constrained oracle chooses among, ``(12, K)`` bool.

    Those whose unsafe-delivery rate is at most the budget; where none is, the least unsafe.
    All actions without a budget.
    """
    rate = np.nan_to_num(delivery_unsafe_rate, nan=0.0)
    if budget is None:
        return np.ones(rate.shape, dtype=bool)
    ok = rate <= budget + 1e-12
    none = ~ok.any(axis=1)
    ok[none] = rate[none] <= rate[none].min(axis=1, keepdims=True)
    return ok


def feasible_optimum(expected: np.ndarray, delivery_unsafe_rate: np.ndarray,
                     budget: float | None) -> np.ndarray:
    """The oracle action per context, ``(12,)``: the best, or the best within the budget."""
    if budget is None:
        return expected.argmax(axis=1)
    return np.where(feasible_actions(delivery_unsafe_rate, budget), expected,
                    -np.inf).argmax(axis=1)
