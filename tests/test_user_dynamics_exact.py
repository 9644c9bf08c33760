"""Exact values of gambit_gym.envs.user_dynamics on hand-built tables (fast; mutation target).

Every expected number is recomputed here from the model stated in docs/user_dynamics.md (and
the module docstring): ``x`` standardised over the bank, ``x̂ = x/‖x‖``, ``b_c`` the mean
reward of the bank's messages in context ``c``, mean reward ``b_c + f·(s·(r - b_c) + δ·x)``
with ``f = exp(-η max(0, x̂·m))``, memory ``m ← λ m + x̂``, burden ``B ← β B + 1[message]``,
disengagement with probability ``1 - exp(-κ B)``, missing with probability ``p``, delay ``k``,
drift ``δ ← δ + σ ε``. The random numbers are the documented counter-based streams, drawn here
with :func:`gambit_gym.core.counter_rng.uniform` one (step, stream) at a time.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import norm

from gambit_gym.core import counter_rng
from gambit_gym.envs import user_dynamics as ud
from gambit_gym.envs.user_dynamics import (
    DYNAMICS_KWARGS,
    UserDynamics,
    UserState,
    dynamics_from,
    dynamics_tables,
    expected_rewards,
    initial_state,
    step_user,
)

K, C = 2, 12
COUNTS = np.ones((K, C), dtype=np.int64)
COUNTS[0, 0] = 2
COUNTS[1, 5] = 3
OFFSETS = (np.cumsum(COUNTS.ravel()) - COUNTS.ravel()).reshape(K, C)
N_BANK = int(COUNTS.sum())  # 27 messages
N = N_BANK + 1  # one "send nothing" row after the bank
CTX = np.concatenate([[c] * int(COUNTS[a, c]) for a in range(K) for c in range(C)])
_RNG = np.random.default_rng(11)
SCORES = np.column_stack([_RNG.normal(0, 2, N_BANK), _RNG.normal(5, 1, N_BANK),
                          _RNG.normal(-1, 3, N_BANK)]).astype(np.float32)
DIMS = ("a", "b", "c")
TRUE = ("c", "a")  # order matters: x's first column is "c"
REWARD = np.concatenate([_RNG.normal(0, 1, N_BANK), [0.3]])


class _Bank:
    """The parts of a MessageBank that dynamics_tables reads."""

    dimensions = DIMS
    scores = SCORES
    context_ids = CTX

    def __len__(self) -> int:
        return N_BANK

    def dimension_index(self, names):
        return np.array([DIMS.index(n) for n in names], dtype=np.int64)


def _tables(safety=None):
    """A GambitTables stand-in: the attributes user_dynamics reads, built by hand."""
    if safety is None:
        safety = SimpleNamespace(mode=0, max_redraws=0, row_unsafe=np.zeros(N, dtype=bool),
                                 row_tokens=np.arange(N, dtype=np.int64) + 10,
                                 none_rows=np.full(C, N_BANK))
    expected = np.arange(C * K, dtype=np.float64).reshape(C, K) / 7.0
    return SimpleNamespace(bank=_Bank(), row_reward=REWARD.copy(), true_names=TRUE,
                           counts=COUNTS, offsets=OFFSETS, derived={}, safety=safety,
                           expected=expected)


def _model():
    """x, x̂, base, effect from the stated formulas."""
    true = SCORES[:, [2, 0]].astype(np.float64)
    x = np.zeros((N, 2))
    x[:N_BANK] = (true - true.mean(axis=0)) / true.std(axis=0)
    x_hat = np.zeros_like(x)
    for i in range(N_BANK):
        x_hat[i] = x[i] / np.sqrt(x[i] @ x[i])
    b_c = np.array([REWARD[:N_BANK][CTX == c].mean() for c in range(C)])
    base = REWARD.copy()
    base[:N_BANK] = b_c[CTX]
    return x, x_hat, base, REWARD - base


def _mean(dyn, state, r, row, t):
    """A message's mean reward for replicate ``r`` at step ``t`` (module docstring)."""
    x, x_hat, base, effect = _model()
    s = -1.0 if dyn.change_point is not None and t >= dyn.change_point else 1.0
    f = np.exp(-dyn.habituation * max(0.0, x_hat[row] @ state.memory[r]))
    drift = state.drift[r] @ x[row] if dyn.drift_sd else 0.0  # δ stays 0 with drift off
    return base[row] + f * (s * effect[row] + drift)


def _state(r=3, **kw):
    rng = np.random.default_rng(5)
    values = dict(memory=rng.normal(0, 1, (r, 2)), burden=np.zeros(r),
                  disengaged=np.zeros(r, dtype=bool), drift=rng.normal(0, 0.5, (r, 2)),
                  pending=np.zeros((r, 0)), pending_observed=np.zeros((r, 0), dtype=bool))
    values.update(kw)
    return UserState(**values)


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize("kwargs, message", [
    ({"habituation": -0.5}, "habituation must be a finite number >= 0, got -0.5"),
    ({"disengagement": -1.0}, "disengagement must be a finite number >= 0, got -1.0"),
    ({"drift_sd": -0.1}, "drift_sd must be a finite number >= 0, got -0.1"),
    ({"habituation_memory": 1.0}, "habituation_memory must be in [0, 1), got 1.0"),
    ({"burden_memory": 1.5}, "burden_memory must be in [0, 1), got 1.5"),
    ({"missing_rate": 1.0}, "missing_rate must be in [0, 1), got 1.0"),
    ({"missing_rate": -0.1}, "missing_rate must be a finite number >= 0, got -0.1"),
    ({"disengage_mode": "quit"},
     "disengage_mode must be one of ('silence', 'terminate'), got 'quit'"),
    ({"reward_delay": -1}, "reward_delay must be a non-negative integer (steps), got -1"),
    ({"reward_delay": 1.0}, "reward_delay must be a non-negative integer (steps), got 1.0"),
    ({"reward_delay": True}, "reward_delay must be a non-negative integer (steps), got True"),
    ({"change_point": -2}, "change_point must be a non-negative integer (steps), got -2"),
    ({"change_point": "3"}, "change_point must be a non-negative integer (steps), got '3'"),
])
def test_bad_options_are_refused_with_the_whole_message(kwargs, message):
    with pytest.raises(ValueError) as err:
        UserDynamics(**kwargs)
    assert str(err.value) == message


def test_boundary_options_are_accepted_and_integers_normalised():
    dyn = UserDynamics(habituation=0.0, habituation_memory=0.0, burden_memory=0.0,
                       missing_rate=0.0, reward_delay=np.int64(0), change_point=np.int32(0),
                       disengage_mode="terminate")
    assert type(dyn.reward_delay) is int and dyn.reward_delay == 0
    assert type(dyn.change_point) is int and dyn.change_point == 0
    assert UserDynamics(missing_rate=0.999, habituation_memory=0.999).missing_rate == 0.999
    assert UserDynamics().change_point is None
    defaults = UserDynamics()
    assert (defaults.habituation, defaults.habituation_memory, defaults.disengagement,
            defaults.burden_memory, defaults.disengage_mode, defaults.missing_rate,
            defaults.reward_delay, defaults.drift_sd) == (0.0, 0.8, 0.0, 0.9, "silence", 0.0,
                                                          0, 0.0)


@pytest.mark.parametrize("kwargs, active, stateful, reports", [
    ({}, False, False, False),
    ({"habituation": 0.5}, True, True, False),
    ({"habituation_memory": 0.3, "burden_memory": 0.2}, False, False, False),
    ({"disengagement": 0.5}, True, False, True),
    ({"missing_rate": 0.2}, True, False, True),
    ({"reward_delay": 1}, True, False, True),
    ({"drift_sd": 0.1}, True, True, False),
    ({"change_point": 0}, True, True, False),
    ({"change_point": 4}, True, True, False),
])
def test_which_options_are_on(kwargs, active, stateful, reports):
    dyn = UserDynamics(**kwargs)
    assert (dyn.active, dyn.stateful_mean, dyn.reports_observation) == (active, stateful,
                                                                        reports)


def test_dynamics_from_takes_the_known_fields_and_validates_them():
    assert DYNAMICS_KWARGS == ("habituation", "habituation_memory", "disengagement",
                               "burden_memory", "disengage_mode", "missing_rate",
                               "reward_delay", "drift_sd", "change_point")
    dyn = dynamics_from({"habituation": 2.0, "reward_delay": 3, "noise_sd": 9.0})
    assert dyn == UserDynamics(habituation=2.0, reward_delay=3)
    assert dynamics_from({}) == UserDynamics()
    with pytest.raises(ValueError, match=r"^missing_rate must be in \[0, 1\), got 2\.0$"):
        dynamics_from({"missing_rate": 2.0})


# ----------------------------------------------------------------------------- tables


def test_dynamics_tables_are_the_stated_per_row_arrays_cached_and_read_only():
    tables = _tables()
    dt = dynamics_tables(tables)
    x, x_hat, base, effect = _model()
    np.testing.assert_allclose(dt.x, x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dt.x_hat, x_hat, rtol=1e-12, atol=1e-12)
    assert np.all(dt.x_hat[N_BANK] == 0) and np.all(dt.x[N_BANK] == 0)
    np.testing.assert_allclose(dt.base, base, rtol=1e-12, atol=1e-12)
    assert dt.base[N_BANK] == 0.3 and dt.effect[N_BANK] == 0.0
    np.testing.assert_allclose(dt.effect, effect, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(dt.is_message, np.arange(N) < N_BANK)
    assert dt.is_message.dtype == bool
    # cells padded to the widest (3): a cell's own rows with weight 1/count, padding weight 0
    assert dt.cell_rows.shape == dt.cell_weights.shape == (K, C, 3)
    for a in range(K):
        for c in range(C):
            n, o = int(COUNTS[a, c]), int(OFFSETS[a, c])
            rows = [o + min(i, n - 1) for i in range(3)]
            np.testing.assert_array_equal(dt.cell_rows[a, c], rows)
            np.testing.assert_array_equal(dt.cell_weights[a, c],
                                          [1.0 / n if i < n else 0.0 for i in range(3)])
    for arr in (dt.x, dt.x_hat, dt.base, dt.effect, dt.is_message, dt.cell_rows,
                dt.cell_weights):
        assert not arr.flags.writeable
    assert tables.derived["user_dynamics"] is dt
    assert dynamics_tables(tables) is dt


@pytest.mark.parametrize("mode, max_redraws", [(1, 0), (2, 2)])
def test_filtered_cells_weigh_safe_rows_and_the_blocked_probability(mode, max_redraws):
    unsafe = np.zeros(N, dtype=bool)
    unsafe[OFFSETS[1, 5]] = True  # one of three unsafe
    unsafe[OFFSETS[0, 0] + 1] = True  # one of two unsafe
    unsafe[OFFSETS[1, 3]] = True  # the cell's only row: always blocked
    none_rows = np.arange(C) + 100
    st = SimpleNamespace(mode=mode, max_redraws=max_redraws, row_unsafe=unsafe,
                         row_tokens=np.zeros(N, dtype=np.int64), none_rows=none_rows)
    dt = dynamics_tables(_tables(st))
    assert dt.cell_rows.shape == dt.cell_weights.shape == (K, C, 4)

    def beta(q):
        return q if mode == 1 else q ** (max_redraws + 1)

    o = int(OFFSETS[1, 5])
    np.testing.assert_array_equal(dt.cell_rows[1, 5], [o + 1, o + 2, o, 105])
    np.testing.assert_allclose(dt.cell_weights[1, 5],
                               [(1 - beta(1 / 3)) / 2, (1 - beta(1 / 3)) / 2, 0, beta(1 / 3)],
                               rtol=1e-12)
    o = int(OFFSETS[0, 0])
    np.testing.assert_array_equal(dt.cell_rows[0, 0], [o, o, o, 100])
    np.testing.assert_allclose(dt.cell_weights[0, 0], [1 - beta(0.5), 0, 0, beta(0.5)],
                               rtol=1e-12)
    o = int(OFFSETS[1, 3])
    np.testing.assert_array_equal(dt.cell_rows[1, 3], [o, o, o, 103])
    np.testing.assert_array_equal(dt.cell_weights[1, 3], [0, 0, 0, 1.0])
    o = int(OFFSETS[1, 7])  # a safe cell: its row, weight 1, no "no message" row
    np.testing.assert_array_equal(dt.cell_rows[1, 7], [o, o, o, o])
    np.testing.assert_array_equal(dt.cell_weights[1, 7], [1.0, 0, 0, 0])


def test_initial_state_is_a_fresh_user():
    dt = dynamics_tables(_tables())
    s = initial_state(UserDynamics(reward_delay=2), dt, 4)
    assert s.memory.shape == s.drift.shape == (4, 2)
    assert s.burden.shape == s.disengaged.shape == (4,)
    assert s.pending.shape == s.pending_observed.shape == (4, 2)
    assert s.disengaged.dtype == bool and s.pending_observed.dtype == bool
    for arr in (s.memory, s.burden, s.disengaged, s.drift, s.pending, s.pending_observed):
        assert not arr.any()


# ----------------------------------------------------------------------------- means


DYNS = [UserDynamics(habituation=0.7), UserDynamics(drift_sd=0.2),
        UserDynamics(change_point=3), UserDynamics(habituation=1.3, drift_sd=0.1, change_point=3),
        UserDynamics(habituation=0.4, change_point=0)]


@pytest.mark.parametrize("dyn", DYNS)
@pytest.mark.parametrize("t", [2, 3])
def test_row_means_follow_the_stated_mean(dyn, t):
    dt = dynamics_tables(_tables())
    state = _state()
    rows = np.array([[0, 5, N_BANK], [1, 20, 26], [3, 14, 9]])
    got = ud._row_means(dyn, dt, state, t, rows)
    want = np.array([[_mean(dyn, state, r, row, t) for row in rows[r]] for r in range(3)])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert got[0, 2] == 0.3  # "send nothing" never changes
    one = ud._row_means(dyn, dt, state, t, rows[:, :1])
    np.testing.assert_allclose(one[:, 0], want[:, 0], rtol=1e-12, atol=1e-12)


def test_habituation_clips_negative_similarity_and_shrinks_positive():
    dyn = UserDynamics(habituation=2.0)
    dt = dynamics_tables(_tables())
    x, x_hat, base, effect = _model()
    row = 4
    state = _state(r=2, memory=np.stack([-x_hat[row], 0.5 * x_hat[row]]),
                   drift=np.zeros((2, 2)))
    got = ud._row_means(dyn, dt, state, 0, np.array([[row], [row]]))[:, 0]
    np.testing.assert_allclose(got, [REWARD[row], base[row] + np.exp(-1.0) * effect[row]],
                               rtol=1e-12)


@pytest.mark.parametrize("dyn", DYNS + [UserDynamics(missing_rate=0.3)])
@pytest.mark.parametrize("t", [2, 3])
def test_expected_rewards_average_the_cell_exactly(dyn, t):
    tables = _tables()
    dt = dynamics_tables(tables)
    state = _state(r=4)
    contexts = np.array([5, 0, 5, 11])
    got = expected_rewards(dyn, tables, dt, state, t, contexts)
    assert got.shape == (4, K)
    if not dyn.stateful_mean:
        np.testing.assert_array_equal(got, tables.expected[contexts])
        return
    for r, c in enumerate(contexts):
        for a in range(K):
            o, n = int(OFFSETS[a, c]), int(COUNTS[a, c])
            want = np.mean([_mean(dyn, state, r, row, t) for row in range(o, o + n)])
            assert got[r, a] == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_dot_is_the_row_by_vector_product():
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    v = np.random.default_rng(1).normal(size=(5, 4))
    np.testing.assert_allclose(ud._dot(x, v), np.einsum("kmd,nd->nkm", x, v), rtol=1e-12)


# ----------------------------------------------------------------------------- steps


KEYS = np.arange(1, 65, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def _u(t, stream):
    return counter_rng.uniform(KEYS, t, stream)


def _step(dyn, state, t, contexts, actions, noise_sd=0.5, offset=0.0, tables=None):
    return step_user(dyn, tables or _tables(), state, KEYS, t, contexts, actions, noise_sd,
                     offset)


def _inputs(t):
    rng = np.random.default_rng(100 + t)
    return rng.integers(0, C, len(KEYS)), rng.integers(0, K, len(KEYS))


@pytest.mark.parametrize("dyn", [UserDynamics(missing_rate=0.3),
                                 UserDynamics(habituation=0.9, drift_sd=0.3, change_point=2)])
@pytest.mark.parametrize("t", [1, 2])
def test_step_draws_rows_noise_contexts_and_reports_rewards(dyn, t):
    tables = _tables()
    dt = dynamics_tables(tables)
    state = initial_state(dyn, dt, len(KEYS))
    state = UserState(memory=np.tile([0.3, -0.8], (64, 1)), burden=state.burden,
                      disengaged=np.arange(64) % 9 == 0, drift=np.tile([0.1, 0.2], (64, 1)),
                      pending=state.pending, pending_observed=state.pending_observed)
    contexts, actions = _inputs(t)
    out = _step(dyn, state, t, contexts, actions, noise_sd=0.5, offset=0.25, tables=tables)
    rows = OFFSETS[actions, contexts] + np.floor(_u(t, 2) * COUNTS[actions, contexts])
    np.testing.assert_array_equal(out.rows, rows.astype(np.int64))
    np.testing.assert_array_equal(out.drawn, out.rows)
    np.testing.assert_array_equal(out.redraws, 0)
    np.testing.assert_array_equal(out.tokens, out.rows + 10)
    np.testing.assert_array_equal(out.next_contexts, np.floor(_u(t + 1, 1) * C).astype(int))
    observed = ~state.disengaged & (_u(t, 5) >= dyn.missing_rate)
    assert observed.any() and not observed.all()
    np.testing.assert_array_equal(out.observed, observed)
    mean = np.array([_mean(dyn, state, r, row, t) for r, row in enumerate(out.rows)])
    reward = mean + 0.5 * norm.ppf(_u(t, 3)) - 0.25
    np.testing.assert_allclose(out.reward, np.where(observed, reward, 0.0), rtol=1e-9,
                               atol=1e-12)
    np.testing.assert_array_equal(out.reward_step, t)
    np.testing.assert_allclose(out.expected,
                               expected_rewards(dyn, tables, dt, state, t, contexts))
    assert out.terminated.dtype == bool and not out.terminated.any()  # a flag, not a number
    x, x_hat, _, _ = _model()
    if dyn.habituation:
        np.testing.assert_allclose(out.state.memory,
                                   0.8 * state.memory + x_hat[out.rows], rtol=1e-12)
    else:
        assert out.state.memory is state.memory
    if dyn.drift_sd:
        eps = norm.ppf(np.stack([_u(t, 8), _u(t, 9)], axis=1))
        np.testing.assert_allclose(out.state.drift, state.drift + 0.3 * eps, rtol=1e-9)
    else:
        assert out.state.drift is state.drift
    np.testing.assert_array_equal(out.state.disengaged, state.disengaged)
    np.testing.assert_array_equal(out.state.burden, 0)


def test_noise_free_step_reports_the_mean():
    dyn = UserDynamics(missing_rate=0.1)
    tables = _tables()
    state = initial_state(dyn, dynamics_tables(tables), len(KEYS))
    contexts, actions = _inputs(0)
    out = step_user(dyn, tables, state, KEYS, 0, contexts, actions, 0.0)  # no offset given
    np.testing.assert_array_equal(out.reward, np.where(out.observed, REWARD[out.rows], 0.0))
    assert out.reward.dtype == np.float64


def test_rewards_arrive_k_steps_late_with_their_step_and_observation():
    dyn = UserDynamics(reward_delay=2, missing_rate=0.4)
    tables = _tables()
    state = initial_state(dyn, dynamics_tables(tables), len(KEYS))
    now = []
    for t in range(5):
        contexts, actions = _inputs(t)
        out = _step(dyn, state, t, contexts, actions, noise_sd=0.5, tables=tables)
        reward = REWARD[OFFSETS[actions, contexts] + np.floor(
            _u(t, 2) * COUNTS[actions, contexts]).astype(int)] + 0.5 * norm.ppf(_u(t, 3))
        now.append((reward, _u(t, 5) >= 0.4))
        if t < 2:
            np.testing.assert_array_equal(out.reward_step, -1)
            assert not out.observed.any() and not out.reward.any()
        else:
            r, seen = now[t - 2]
            np.testing.assert_array_equal(out.reward_step, t - 2)
            np.testing.assert_array_equal(out.observed, seen)
            np.testing.assert_allclose(out.reward, np.where(seen, r, 0.0), rtol=1e-9,
                                       atol=1e-12)
        np.testing.assert_allclose(out.state.pending,
                                   np.stack([now[j][0] for j in (t - 1, t)], axis=1)
                                   if t else np.stack([np.zeros(64), now[0][0]], axis=1),
                                   rtol=1e-9, atol=1e-12)
        state = out.state


@pytest.mark.parametrize("mode", ["silence", "terminate"])
def test_disengagement_follows_the_burden_hazard(mode):
    dyn = UserDynamics(disengagement=0.4, burden_memory=0.6, disengage_mode=mode)
    tables = _tables()
    state = initial_state(dyn, dynamics_tables(tables), len(KEYS))
    burden = np.arange(64) / 16.0
    gone = np.arange(64) % 7 == 0
    state = UserState(memory=state.memory, burden=burden, disengaged=gone, drift=state.drift,
                      pending=state.pending, pending_observed=state.pending_observed)
    t = 3
    contexts, actions = _inputs(t)
    out = _step(dyn, state, t, contexts, actions, tables=tables)
    new_burden = 0.6 * burden + 1.0
    np.testing.assert_allclose(out.state.burden, new_burden, rtol=1e-12)
    leaves = ~gone & (_u(t, 6) < 1 - np.exp(-0.4 * new_burden))
    assert leaves.any() and (~gone & ~leaves).any()
    np.testing.assert_array_equal(out.state.disengaged, gone | leaves)
    np.testing.assert_array_equal(out.terminated, leaves if mode == "terminate" else False)
    assert out.terminated.dtype == bool
    np.testing.assert_array_equal(out.observed, ~gone)  # leaving silences the next step on
    assert not out.reward[gone].any()


def test_no_message_rows_add_no_burden_and_no_memory():
    dyn = UserDynamics(disengagement=0.4, burden_memory=0.5, habituation=1.0,
                       habituation_memory=0.5)
    unsafe = np.zeros(N, dtype=bool)
    unsafe[:N_BANK] = True  # every message blocked: the user gets the "no message" row
    st = SimpleNamespace(mode=1, max_redraws=0, row_unsafe=unsafe,
                         row_tokens=np.ones(N, dtype=np.int64), none_rows=np.full(C, N_BANK))
    tables = _tables(st)
    state = initial_state(dyn, dynamics_tables(tables), len(KEYS))
    state = UserState(memory=np.ones((64, 2)), burden=np.full(64, 2.0),
                      disengaged=state.disengaged, drift=state.drift, pending=state.pending,
                      pending_observed=state.pending_observed)
    contexts, actions = _inputs(0)
    out = _step(dyn, state, 0, contexts, actions, tables=tables)
    np.testing.assert_array_equal(out.rows, N_BANK)
    np.testing.assert_allclose(out.state.burden, 1.0)
    np.testing.assert_allclose(out.state.memory, 0.5)
    leaves = _u(0, 6) < 1 - np.exp(-0.4 * 1.0)
    np.testing.assert_array_equal(out.state.disengaged, leaves)
    np.testing.assert_allclose(out.expected, 0.3)
