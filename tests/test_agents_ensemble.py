"""Ensemble GAMBITTS agents: batched = single, exact propensities over members, CPU vs CUDA."""

import gymnasium as gym
import numpy as np
import pytest

import gambit_gym  # noqa: F401
from gambit_gym.agents import _ensemble_kernels as _kernels
from gambit_gym.agents import make

torch = pytest.importorskip("torch")

SMALL = {"n_members": 4, "hidden": 8, "batch_size": 8, "burn_in": 8, "buffer_size": 32,
         "dtype": "float64"}
FO_SMALL = {**SMALL, "n_embedding_draws": 12}


def _drive(agent, replicates, steps, seed, device="cpu"):
    env = gym.make_vec("GambitIHS-v0", num_envs=replicates,
                       vectorization_mode="vector_entry_point", noise_level=2)
    obs, _ = env.reset(seed=seed)
    agent.reset_batch(env.describe(), seed, replicates)
    actions = []
    for _ in range(steps):
        a = agent.act_batch(obs)
        nxt, r, _, _, info = env.step(a)
        agent.update_batch(obs, a, r, info)
        actions.append(a)
        obs = nxt
    return np.array(actions).T, obs


@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL),
                                          ("ens-foGAMBITTS", FO_SMALL),
                                          ("ens-poGAMBITTS", {**SMALL, "n_sim_draws": 7})])
def test_batched_equals_single_replicate(name, kwargs):
    batch, _ = _drive(make(name, device="cpu", **kwargs), 2, 18, seed=4)
    for r in range(2):
        single, _ = _drive(make(name, device="cpu", **kwargs), 1, 18, seed=4 + r)
        np.testing.assert_array_equal(batch[r], single[0])


@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL), ("ens-foGAMBITTS", FO_SMALL)])
def test_training_in_chunks_of_replicates_equals_one_pass(name, kwargs):
    kwargs = {**kwargs, "cpu_kernel": False}  # the torch path (CUDA's, and CPU without numba)
    whole = make(name, device="cpu", train_chunk=5, **kwargs)
    actions, _ = _drive(whole, 5, 30, seed=3)
    assert whole._train_chunk == 5 and whole.train_steps > 20
    for chunk in (1, 2):
        chunked = make(name, device="cpu", train_chunk=chunk, **kwargs)
        chunked_actions, _ = _drive(chunked, 5, 30, seed=3)
        np.testing.assert_array_equal(chunked_actions, actions)
        for key, value in whole.params.items():
            torch.testing.assert_close(chunked.params[key], value, rtol=0, atol=1e-12)
            # Adam's moments too: the chunks' gradients landed where one pass puts them
            torch.testing.assert_close(chunked.optimizer.state[chunked.params[key]]["exp_avg"],
                                       whole.optimizer.state[value]["exp_avg"], rtol=0,
                                       atol=1e-12)


@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL), ("ens-foGAMBITTS", FO_SMALL)])
def test_hand_written_gradients_equal_autograd(name, kwargs):
    agent = make(name, device="cpu", cpu_kernel=False, **kwargs)
    _drive(agent, 4, 20, seed=5)  # trained a while: weights away from their anchors
    rng = np.random.default_rng(0)
    m, b, d = agent.n_members, agent.batch_size, agent.d
    for reps in (slice(0, 4), slice(1, 3)):
        r = reps.stop - reps.start
        x = torch.as_tensor(rng.normal(size=(r, b, d)))
        target = torch.as_tensor(rng.normal(77.0, 10.0, size=(r, m, b)))
        got = agent._chunk_gradients(x, target, reps)
        # the objective written out independently: MLP by einsum, loss, anchored prior
        theta = {k: v.detach()[reps].clone().requires_grad_(True)
                 for k, v in agent.params.items()}
        hid = torch.relu(torch.einsum("rbd,rmhd->rmbh", x, theta["w1"])
                         + theta["b1"][:, :, None, :])
        pred = agent.output_offset + agent.output_scale * (
            torch.einsum("rmbh,rmh->rmb", hid, theta["w2"]) + theta["b2"][..., None])
        loss = ((target - pred) ** 2).mean(dim=2).sum() / agent.sigma_w ** 2
        for k, v in theta.items():
            loss = loss + agent.prior_prec[k] * ((v - agent.anchors[k][reps]) ** 2).sum() \
                / agent.n_seen
        want = dict(zip(theta, torch.autograd.grad(loss, list(theta.values()))))
        for k in theta:
            torch.testing.assert_close(got[k], want[k], rtol=1e-10, atol=1e-10)


def test_cpu_default_trains_in_chunks_at_the_study_sizes():
    agent = make("ens-poGAMBITTS", device="cpu", cpu_kernel=False)
    agent.reset_batch(gym.make("GambitIHS-v0").unwrapped.describe(), 0, 250)
    assert 1 < agent._train_chunk < 250


def test_one_persistent_optimiser_and_anchored_prior():
    agent = make("ens-poGAMBITTS", device="cpu", **SMALL)
    _drive(agent, 2, 25, seed=0)
    state = agent.optimizer.state[agent.params["w1"]]
    assert int(state["step"]) == agent.train_steps == 25 - SMALL["batch_size"] + 1
    # every member keeps its own anchor; members differ
    w1 = agent.params["w1"].detach()
    assert not torch.allclose(w1[0, 0], w1[0, 1])
    assert agent.anchors["w1"].shape == w1.shape


def test_propensities_are_exact_over_members_and_match_frequencies():
    agent = make("ens-poGAMBITTS", device="cpu", **SMALL)
    _, obs = _drive(agent, 1, 25, seed=1)
    p = agent.action_probabilities_batch(obs, target_rse=None)[0]  # every member scored
    assert p.sum() == pytest.approx(1.0)
    assert np.all(np.isclose(p * SMALL["n_members"], np.round(p * SMALL["n_members"])))
    acts = np.array([agent.act_batch(obs)[0] for _ in range(400)])
    freq = np.bincount(acts, minlength=len(p)) / len(acts)
    np.testing.assert_allclose(freq, p, atol=0.1)


def test_member_sampled_propensities_are_unbiased_and_never_below_one_member():
    agent = make("ens-poGAMBITTS", device="cpu", **{**SMALL, "n_members": 24})
    _, obs = _drive(agent, 6, 40, seed=2)
    exact = agent.action_probabilities_batch(obs, target_rse=None)
    chosen = agent._next_actions()
    reps = np.arange(6)
    estimates, sampled = [], []
    for _ in range(300):  # each call samples other members from the propensity generator
        p = agent.action_probabilities_batch(obs)
        np.testing.assert_allclose(p.sum(axis=1), 1.0)
        assert np.all(p[reps, chosen] >= 1 / 24 - 1e-12)  # the acting member's own vote
        estimates.append(p[reps, chosen])
        sampled.append(agent.propensity_draws < 24)  # answered from a sample of members
    estimates = np.array(estimates)
    assert np.any(sampled)
    se = estimates.std(axis=0) / np.sqrt(len(estimates)) + 1e-9
    assert np.all(np.abs(estimates.mean(axis=0) - exact[reps, chosen]) <= 4.5 * se)
    assert np.array_equal(agent.act_batch(obs), chosen)  # the kept action is the one taken


def test_uniform_during_burn_in():
    agent = make("ens-foGAMBITTS", device="cpu", **FO_SMALL)
    env = gym.make("GambitIHS-v0")
    agent.reset(env.unwrapped.describe(), seed=0)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(agent.action_probabilities(obs), 0.2)


@pytest.mark.parametrize("kwargs, match", [({"n_members": 0}, "n_members"),
                                           ({"lr": -1.0}, "lr must be"),
                                           ({"dtype": "float16"}, "dtype"),
                                           ({"n_sim_draws": 0}, "n_sim_draws"),
                                           ({"train_chunk": 0}, "train_chunk")])
def test_invalid_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make("ens-poGAMBITTS", **kwargs)


# ---------------------------------------------------------------- the fused CPU kernels
def _reference_loss(agent, theta, x, target):
    """The members' objective written out independently (einsum MLP, loss, anchored prior)."""
    hid = torch.relu(torch.einsum("rbd,rmhd->rmbh", x, theta["w1"]) + theta["b1"][:, :, None, :])
    pred = agent.output_offset + agent.output_scale * (
        torch.einsum("rmbh,rmh->rmb", hid, theta["w2"]) + theta["b2"][..., None])
    loss = ((target - pred) ** 2).mean(dim=2).sum() / agent.sigma_w ** 2
    for k, v in theta.items():
        loss = loss + agent.prior_prec[k] * ((v - agent.anchors[k]) ** 2).sum() / agent.n_seen
    return loss


needs_numba = pytest.mark.skipif(not _kernels.available(), reason="numba is not installed")


@needs_numba
@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL), ("ens-foGAMBITTS", FO_SMALL)])
def test_kernel_gradients_equal_autograd(name, kwargs):
    agent = make(name, device="cpu", cpu_kernel=True, **kwargs)
    _drive(agent, 3, 20, seed=5)  # trained a while by the kernels: weights off their anchors
    assert agent._kernel
    idx = np.random.default_rng(1).integers(0, agent.buffer_size // 2, (3, agent.batch_size))
    agent._kernel_gradients(idx)
    rows = torch.arange(3)[:, None]
    ii = torch.as_tensor(idx)
    x = agent.buf_x[rows, ii]
    target = agent.buf_y[rows, ii][:, None, :] + agent.buf_eps[rows, ii].permute(0, 2, 1)
    theta = {k: v.detach().clone().requires_grad_(True) for k, v in agent.params.items()}
    want = torch.autograd.grad(_reference_loss(agent, theta, x, target), list(theta.values()))
    for k, w in zip(theta, want):
        torch.testing.assert_close(agent.params[k].grad, w, rtol=1e-10, atol=1e-10)


@needs_numba
@pytest.mark.parametrize("d", [1, 2, 3, 4, 6])
def test_kernel_gradients_equal_autograd_for_every_input_dimension(d):
    """d = 3 and d <= 4 have written-out paths, d > 4 the general loop: all three checked."""
    rng = np.random.default_rng(d)
    r, m, h, b, n = 2, 3, 5, 7, 11
    buf_x, buf_y = rng.normal(size=(r, n, d)), rng.normal(77, 10, size=(r, n))
    buf_eps = rng.normal(size=(r, n, m))
    idx = rng.integers(0, n, size=(r, b))
    shapes = {"w1": (r, m, h, d), "b1": (r, m, h), "w2": (r, m, h), "b2": (r, m)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    anchors = {k: rng.normal(size=s) for k, s in shapes.items()}
    c = {"w1": 0.3, "b1": 0.2, "w2": 0.1, "b2": 0.05}
    sigma2, offset, scale = 2.0, 77.0, 10.0
    grads = {k: np.empty(s) for k, s in shapes.items()}
    _kernels.gradients(buf_x, buf_y, buf_eps, idx, *params.values(), *anchors.values(),
                       *c.values(), 2.0 / sigma2 * scale / b, offset, scale, *grads.values())
    theta = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    rows = np.arange(r)[:, None]
    x = torch.tensor(buf_x[rows, idx])
    target = torch.tensor(buf_y[rows, idx][:, None, :] + buf_eps[rows, idx].transpose(0, 2, 1))
    hid = torch.relu(torch.einsum("rbd,rmhd->rmbh", x, theta["w1"]) + theta["b1"][:, :, None])
    pred = offset + scale * (torch.einsum("rmbh,rmh->rmb", hid, theta["w2"])
                             + theta["b2"][..., None])
    loss = ((target - pred) ** 2).mean(dim=2).sum() / sigma2
    for k, v in theta.items():  # c = 2·prec/n: the prior term c/2·‖θ - θ₀‖²
        loss = loss + 0.5 * c[k] * ((v - torch.tensor(anchors[k])) ** 2).sum()
    want = torch.autograd.grad(loss, list(theta.values()))
    for k, w in zip(theta, want):
        np.testing.assert_allclose(grads[k], w.numpy(), rtol=1e-10, atol=1e-10)


@needs_numba
def test_kernel_adam_step_equals_torch_adam():
    agent = make("ens-poGAMBITTS", device="cpu", cpu_kernel=True, **SMALL)
    _drive(agent, 2, 15, seed=3)  # a few kernel steps: Adam's moments are not zero
    twin = {k: v.detach().clone().requires_grad_(True) for k, v in agent.params.items()}
    opt = torch.optim.Adam(list(twin.values()), lr=agent.lr)
    for k, v in twin.items():
        opt.state[v] = {key: val.clone() for key, val in agent.optimizer.state[
            agent.params[k]].items()}
        v.grad = torch.randn_like(v)
        agent.params[k].grad.copy_(v.grad)
    opt.step()
    agent._kernel_adam()
    for k, v in twin.items():
        torch.testing.assert_close(agent.params[k].detach(), v.detach(), rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(agent.optimizer.state[agent.params[k]]["exp_avg_sq"],
                                   opt.state[v]["exp_avg_sq"], rtol=1e-12, atol=1e-12)


@needs_numba
@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL), ("ens-foGAMBITTS", FO_SMALL),
                                          ("ens-poGAMBITTS", {**SMALL, "n_sim_draws": 7})])
def test_kernel_run_equals_torch_run(name, kwargs):
    fast = make(name, device="cpu", cpu_kernel=True, **kwargs)
    slow = make(name, device="cpu", cpu_kernel=False, **kwargs)
    a_fast, obs = _drive(fast, 3, 40, seed=7)
    a_slow, _ = _drive(slow, 3, 40, seed=7)
    np.testing.assert_array_equal(a_fast, a_slow)
    for k, v in slow.params.items():
        torch.testing.assert_close(fast.params[k], v, rtol=1e-9, atol=1e-9)
    members = np.array([[0, 2], [1, 3], [3, 0]])
    x, w = fast._arm_inputs(np.array([0, 5, 11]), 40, 999)
    got = fast._mean_scores(members, x, w)
    slow_x, slow_w = slow._arm_inputs(np.array([0, 5, 11]), 40, 999)
    np.testing.assert_allclose(got, slow._mean_scores(members, slow_x, slow_w).numpy(),
                               rtol=1e-12)
    np.testing.assert_allclose(fast.action_probabilities_batch(obs),
                               slow.action_probabilities_batch(obs))


def test_kernel_float32_run_stays_close_to_the_float64_run():
    """float32 (the default) and float64 follow the same trajectory on a short run."""
    if not _kernels.available():
        pytest.skip("numba is not installed")
    kw = {k: v for k, v in SMALL.items() if k != "dtype"}
    a32, _ = _drive(make("ens-poGAMBITTS", device="cpu", dtype="float32", **kw), 2, 30, seed=8)
    a64, _ = _drive(make("ens-poGAMBITTS", device="cpu", dtype="float64", **kw), 2, 30, seed=8)
    assert (a32 == a64).mean() > 0.9


@pytest.mark.cuda
@pytest.mark.parametrize("name, kwargs", [("ens-poGAMBITTS", SMALL), ("ens-foGAMBITTS", FO_SMALL)])
def test_cuda_and_cpu_ensembles_agree(name, kwargs):
    cpu_agent, gpu_agent = make(name, device="cpu", **kwargs), make(name, device="cuda", **kwargs)
    cpu, _ = _drive(cpu_agent, 4, 40, seed=2)
    gpu, _ = _drive(gpu_agent, 4, 40, seed=2)
    np.testing.assert_array_equal(cpu, gpu)
    for key, value in cpu_agent.params.items():
        np.testing.assert_allclose(value.detach().numpy(),
                                   gpu_agent.params[key].detach().cpu().numpy(), atol=1e-6)
