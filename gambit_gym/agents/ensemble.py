"""Ensemble-sampling GAMBITTS agents with MLP reward models: ens-poGAMBITTS and ens-foGAMBITTS.

Each replicate keeps M MLPs (one hidden ReLU layer) from the embedding of the message to the
reward. Ensemble sampling (Lu and Van Roy, 2017), done as the method intends (see
``algorithms.md`` C):

- member ``m`` minimises ``σ_w⁻²·mean_batch (ỹ_m - f_m(z))² + ‖θ_m - θ_{0,m}‖²_{Σ₀⁻¹} / n``, where
  ``ỹ_m = y + ε_m`` with ``ε_m ~ N(0, σ_w²)`` drawn once per datum and stored (``σ_w``: the
  env's noise sd, as in the study) and ``θ_{0,m}`` its own initial weights (the anchor; the
  prior variance of each weight is that of PyTorch's default initialisation);
- one Adam optimiser per member, kept across steps (a single elementwise Adam over the stacked
  parameters is exactly that), one step per decision on a minibatch drawn with replacement from a
  FIFO replay buffer once it holds ``batch_size`` items; uniform actions during burn-in;
- to act, draw a member uniformly and score each prompt by the member's *mean* prediction over
  the prompt's cell: ens-poGAMBITTS averages exactly over all bank rows of the cell (default), or
  over ``n_sim_draws`` draws with common random numbers across prompts; ens-foGAMBITTS draws each
  arm's embedding distribution from its Normal-Inverse-Wishart posterior (as foGAMBITTS) and
  averages over ``n_embedding_draws`` embeddings with common normals across prompts.

On a CPU with numba installed (the ``fast`` extra) the members train and score through fused
kernels (:mod:`gambit_gym.agents._ensemble_kernels`): each member's minibatch goes forward and
backward with its hidden layer in cache and Adam is applied in one pass, about 9 times less
CPU time than the batched torch program. Otherwise (CUDA, or no numba) all members of all
replicates train as one batched torch program (batched matmuls, with the one-hidden-layer
MLP's gradients written out), on a CPU a few replicates at a time rather than allocating an
``R·M·B·H`` activation tensor at every step. Tests check both paths' gradients against
autograd and a run of one against the other. Random numbers come from the counter-based
streams in numpy, so a replicate makes the same draws alone or in a batch, on either path, on
CPU or CUDA; results then agree up to floating-point error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from gambit_gym._validate import check_positive_int
from gambit_gym.agents import _ensemble_kernels as _kernels
from gambit_gym.agents._batched import (
    GAMBIT_ENVS,
    STREAM_ACT,
    STREAM_PERTURB,
    STREAM_RESET,
    STREAM_TRAIN,
    STREAM_TREAT,
    BatchedAgent,
    check_positive,
    gambit_contexts,
    require_contexts,
    require_simulator,
)
from gambit_gym.agents.gambitts import received_embeddings
from gambit_gym.agents.niw_treatment import NIWTreatment, niw_prior
from gambit_gym.core.description import EnvDescription

#: Members (besides the one about to act) scored first for a propensity (see _probabilities).
PILOT_MEMBERS = 15
_CHUNK_ELEMENTS = 1 << 24  # bound on hidden activations materialised at once when scoring
_CPU_TRAIN_ELEMENTS = 1 << 21  # hidden activations per training chunk on a CPU (see _train_step)


def _numpy(array: Any) -> np.ndarray:
    """A numpy array of a tensor (on any device) or of an array."""
    return array.cpu().numpy() if hasattr(array, "cpu") else np.asarray(array)


def _torch() -> Any:
    import torch

    return torch


@dataclass(eq=False)
class _Ensemble(BatchedAgent):
    """Shared MLP-ensemble machinery (see the module docstring)."""

    supported_envs = GAMBIT_ENVS
    n_members: int = 60
    hidden: int = 64
    lr: float = 0.01
    batch_size: int = 100
    buffer_size: int = 1024
    burn_in: int = 100
    perturbation_sd: float | None = None
    prior_scale: float = 1.0
    output_offset: float = 77.0
    output_scale: float = 10.0
    device: str | None = None
    dtype: str = "float32"
    train_chunk: int | None = None
    cpu_kernel: bool | None = None

    def __post_init__(self) -> None:
        for name in ("n_members", "hidden", "batch_size", "buffer_size"):
            check_positive_int(name, getattr(self, name))
        check_positive_int("burn_in", self.burn_in, minimum=0)
        check_positive("lr", self.lr)
        check_positive("prior_scale", self.prior_scale)
        check_positive("output_scale", self.output_scale)
        if self.perturbation_sd is not None:
            check_positive("perturbation_sd", self.perturbation_sd, allow_zero=True)
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        check_positive_int("train_chunk", self.train_chunk, allow_none=True)
        if self.cpu_kernel and not _kernels.available():
            raise ValueError("cpu_kernel=True needs numba: pip install 'gambit-gym[fast]'")

    # ------------------------------------------------------------------ setup
    def _setup_ensemble(self, spec: EnvDescription, z_mean: np.ndarray,
                        z_sd: np.ndarray) -> None:
        torch = _torch()
        require_contexts(spec, type(self).__name__)
        d = len(spec.embedding_names)
        if d == 0:
            raise ValueError(f"{type(self).__name__} needs an env with a working embedding")
        self.d = d
        dev = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.torch_device = torch.device(dev)
        self.torch_dtype = getattr(torch, self.dtype)
        sd = self.perturbation_sd if self.perturbation_sd is not None else spec.noise_sd
        if sd is None:
            raise ValueError(f"{type(self).__name__}: the env publishes no noise sd; pass "
                             "perturbation_sd=")
        self.sigma_w = float(sd)
        self._loss_scale = 1.0 / max(self.sigma_w, 1e-3) ** 2
        self.z_mean, self.z_sd = z_mean.astype(np.float64), np.maximum(z_sd, 1e-8)
        r, m, h = self.replicates, self.n_members, self.hidden
        # PyTorch's default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), drawn from the streams
        shapes = {"w1": ((m, h, d), d), "b1": ((m, h), d), "w2": ((m, h), h), "b2": ((m,), h)}
        self.params, self.anchors, self.prior_prec = {}, {}, {}
        for i, (name, (shape, fan_in)) in enumerate(shapes.items()):
            bound = 1.0 / np.sqrt(fan_in)
            u = self.streams.uniform(i, STREAM_RESET, shape)
            init = self._tensor((2.0 * u - 1.0) * bound)
            self.anchors[name] = init.clone()
            self.params[name] = init.clone().requires_grad_(True)
            # prior variance of a weight: that of its initial distribution, times prior_scale²
            self.prior_prec[name] = 1.0 / (self.prior_scale ** 2 * bound ** 2 / 3.0)
        self.optimizer = torch.optim.Adam(list(self.params.values()), lr=self.lr)
        cap = self.buffer_size
        self.buf_x = torch.zeros((r, cap, d), dtype=self.torch_dtype, device=self.torch_device)
        self.buf_y = torch.zeros((r, cap), dtype=self.torch_dtype, device=self.torch_device)
        self.buf_eps = torch.zeros((r, cap, m), dtype=self.torch_dtype,
                                   device=self.torch_device)
        self.n_seen = 0
        self.train_steps = 0
        if self.train_chunk is not None:
            self._train_chunk = min(r, self.train_chunk)
        elif self.torch_device.type == "cpu":
            per_replicate = m * self.batch_size * h  # hidden activations of one replicate
            self._train_chunk = max(1, min(r, _CPU_TRAIN_ELEMENTS // per_replicate))
        else:
            self._train_chunk = r
        use = _kernels.available() if self.cpu_kernel is None else self.cpu_kernel
        self._kernel = bool(use) and self.torch_device.type == "cpu"
        if self._kernel:  # Adam's state kept where torch keeps it, updated by the kernel
            for param in self.params.values():
                param.grad = torch.zeros_like(param)
                self.optimizer.state[param] = {
                    "step": torch.tensor(0.0), "exp_avg": torch.zeros_like(param),
                    "exp_avg_sq": torch.zeros_like(param)}

    def _tensor(self, array: np.ndarray) -> Any:
        torch = _torch()
        return torch.as_tensor(np.ascontiguousarray(array), dtype=self.torch_dtype,
                               device=self.torch_device)

    def _input(self, array: np.ndarray) -> Any:
        """Network inputs: a numpy array for the CPU kernels, else a tensor."""
        if self._kernel:
            return np.ascontiguousarray(array, dtype=self.dtype)
        return self._tensor(array)

    def _normalise(self, z: np.ndarray) -> np.ndarray:
        return (z - self.z_mean) / self.z_sd

    # ------------------------------------------------------------------ the networks
    def _mlp(self, x: Any, w1: Any, b1: Any, w2: Any, b2: Any) -> Any:
        """Batched MLP on the reward scale: ``x (G, N, d)`` -> ``(G, N)``.

        Weights: ``w1 (G, H, d)``, ``b1 (G, 1, H)``, ``w2 (G, H, 1)``, ``b2 (G, 1, 1)``.
        """
        torch = _torch()
        hid = torch.relu(torch.baddbmm(b1, x, w1.transpose(1, 2)))
        return self.output_offset + self.output_scale * torch.baddbmm(b2, hid, w2)[..., 0]

    def _mean_scores(self, members: np.ndarray, x: Any, weights: Any,
                     rows: np.ndarray | None = None) -> Any:
        """Weighted mean prediction of chosen members over each arm's inputs.

        Args:
            members: ``(R', J)`` member indices per replicate.
            x: inputs ``(R', K, N, d)`` (normalised embeddings).
            weights: ``(R', K, N)`` averaging weights (rows sum to 1).
            rows: the replicates (``R'`` of them) these are for; None: all.

        Returns:
            ``(R', J, K)`` scores.
        """
        torch = _torch()
        r, k, n, d = x.shape
        j = members.shape[1]
        h = self.hidden
        if self._kernel:
            p = {k: v.detach().numpy() for k, v in self.params.items()}
            if rows is not None:
                p = {k: v[rows] for k, v in p.items()}
            out = np.empty((r, j, k), dtype=p["w1"].dtype)
            _kernels.member_scores(x, weights, p["w1"], p["b1"], p["w2"],
                                   p["b2"], np.ascontiguousarray(members, dtype=np.int64),
                                   np.dtype(self.dtype).type(self.output_offset),
                                   np.dtype(self.dtype).type(self.output_scale), out)
            return out
        rows = torch.as_tensor(np.arange(r) if rows is None else np.asarray(rows),
                               device=self.torch_device)[:, None]
        mem = torch.as_tensor(np.array(members, dtype=np.int64), device=self.torch_device)
        with torch.no_grad():
            w1 = self.params["w1"][rows, mem].reshape(r * j, h, d)
            b1 = self.params["b1"][rows, mem].reshape(r * j, 1, h)
            w2 = self.params["w2"][rows, mem].reshape(r * j, h, 1)
            b2 = self.params["b2"][rows, mem].reshape(r * j, 1, 1)
            per_arm = max(1, _CHUNK_ELEMENTS // max(1, r * j * n * h))
            out = []
            for a0 in range(0, k, per_arm):
                xa = x[:, a0:a0 + per_arm]
                ka = xa.shape[1]
                flat = xa.reshape(r, 1, ka * n, d).expand(r, j, ka * n, d).reshape(
                    r * j, ka * n, d)
                pred = self._mlp(flat, w1, b1, w2, b2).reshape(r, j, ka, n)
                out.append(torch.einsum("rjkn,rkn->rjk", pred,
                                        weights[:, a0:a0 + per_arm]))
            return torch.cat(out, dim=2)

    # ------------------------------------------------------------------ learning
    def _update(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
                info: dict[str, Any]) -> None:
        z = received_embeddings(self, info, self.d)
        contexts = gambit_contexts(obs)
        self._update_treatment(contexts, actions, z)
        slot = self.n_seen % self.buffer_size
        eps = self.sigma_w * self.streams.normal(self.n_seen, STREAM_PERTURB, (self.n_members,))
        self.buf_x[:, slot] = self._tensor(self._normalise(z))
        self.buf_y[:, slot] = self._tensor(rewards)
        self.buf_eps[:, slot] = self._tensor(eps)
        self.n_seen += 1
        if self.n_seen >= self.batch_size:
            self._train_step()

    def _update_treatment(self, contexts: np.ndarray, actions: np.ndarray,
                          z: np.ndarray) -> None:
        """Hook for ens-foGAMBITTS."""

    def _train_step(self) -> None:
        """One Adam step of every member on a minibatch drawn from its replicate's buffer.

        The members' objectives are independent, so the gradient of their sum is built
        chunk by chunk of replicates (``_train_chunk`` replicates at a time): on a CPU a chunk's
        few-MB activations are reused from the allocator and the caches instead of allocating
        (and page-faulting) ``R·M·B·H`` tensors at every step; on CUDA one chunk holds every
        replicate.
        """
        torch = _torch()
        size = min(self.n_seen, self.buffer_size)
        idx = self.streams.integers(self.train_steps, STREAM_TRAIN, size, (self.batch_size,))
        if self._kernel:
            self._kernel_gradients(idx)
            self._kernel_adam()
            self.train_steps += 1
            return
        idx_t = torch.as_tensor(idx, device=self.torch_device)
        rows = torch.arange(self.replicates, device=self.torch_device)[:, None]
        x = self.buf_x[rows, idx_t]  # (R, B, d)
        y = self.buf_y[rows, idx_t]  # (R, B)
        eps = self.buf_eps[rows, idx_t]  # (R, B, M)
        for param in self.params.values():
            if param.grad is None:
                param.grad = torch.zeros_like(param)
        for r0 in range(0, self.replicates, self._train_chunk):
            reps = slice(r0, r0 + self._train_chunk)
            target = y[reps][:, None, :] + eps[reps].permute(0, 2, 1)  # (r, M, B)
            grads = self._chunk_gradients(x[reps], target, reps)
            for name, param in self.params.items():
                param.grad[reps] = grads[name]
        self.optimizer.step()
        self.train_steps += 1

    def _kernel_gradients(self, idx: np.ndarray) -> None:
        """Every member's gradient by the fused CPU kernel, written into ``param.grad``."""
        # numpy views of the torch tensors (taken here, not kept: a copy of the agent must
        # not write into its original's tensors)
        torch = _torch()
        for param in self.params.values():
            if param.grad is None:  # torch does not pickle .grad: an unpickled agent has none
                param.grad = torch.zeros_like(param)
        p = {k: v.detach().numpy() for k, v in self.params.items()}
        g = {k: v.grad.numpy() for k, v in self.params.items()}
        a = {k: v.numpy() for k, v in self.anchors.items()}
        cast = np.dtype(self.dtype).type  # scalars in the parameters' dtype
        c = {k: cast(2.0 * self.prior_prec[k] / self.n_seen) for k in p}
        _kernels.gradients(self.buf_x.numpy(), self.buf_y.numpy(), self.buf_eps.numpy(),
                           np.ascontiguousarray(idx), p["w1"], p["b1"], p["w2"], p["b2"],
                           a["w1"], a["b1"], a["w2"], a["b2"], c["w1"], c["b1"], c["w2"],
                           c["b2"],
                           cast(2.0 * self._loss_scale * self.output_scale / self.batch_size),
                           cast(self.output_offset), cast(self.output_scale), g["w1"], g["b1"],
                           g["w2"], g["b2"])

    def _kernel_adam(self) -> None:
        """One Adam step of every parameter (torch's update rule, fused in one pass each)."""
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        for param in self.params.values():
            state = self.optimizer.state[param]
            state["step"] += 1.0
            step = float(state["step"])
            _kernels.adam(param.detach().numpy().reshape(-1), param.grad.numpy().reshape(-1),
                          state["exp_avg"].numpy().reshape(-1),
                          state["exp_avg_sq"].numpy().reshape(-1), group["lr"], beta1, beta2,
                          group["eps"], 1.0 - beta1 ** step, 1.0 - beta2 ** step)

    def _chunk_gradients(self, x: Any, target: Any, reps: slice) -> dict[str, Any]:
        """Gradients of the members' objectives (module docstring) for replicates ``reps``.

        Written out for the one-hidden-layer MLP rather than taken by autograd: no graph and
        no saved tensors, the ReLU and the loss gradient in place, the hidden layer's gradient
        masked by the ReLU output in one op. On the 2-core CPU that took a training step from
        0.42 s to 0.29 s (250 replicates, chunks of 5). A test checks it against
        ``torch.autograd`` on the same loss.

        Args:
            x: ``(r, B, d)`` normalised embeddings of the minibatch.
            target: ``(r, M, B)`` perturbed rewards ``ỹ_m``.
            reps: the replicates.

        Returns:
            ``{w1, b1, w2, b2}`` shaped like ``params[name][reps]``.
        """
        torch = _torch()
        p = {name: param.detach()[reps] for name, param in self.params.items()}
        r, m, b = target.shape
        h, d, g = self.hidden, self.d, r * m
        w1, b1 = p["w1"].reshape(g, h, d), p["b1"].reshape(g, 1, h)
        w2, b2 = p["w2"].reshape(g, h, 1), p["b2"].reshape(g, 1, 1)
        xg = x[:, None].expand(r, m, b, d).reshape(g, b, d)
        hid = torch.baddbmm(b1, xg, w1.transpose(1, 2)).clamp_min_(0.0)  # (G, B, H)
        out = torch.baddbmm(b2, hid, w2)[..., 0]  # (G, B); prediction = offset + scale·out
        pred = self.output_offset + self.output_scale * out
        # d/d out of loss_scale · mean_b (target - pred)²
        g_out = (pred - target.reshape(g, b)).mul_(
            2.0 * self._loss_scale * self.output_scale / b)
        g_w2 = torch.bmm(hid.transpose(1, 2), g_out[..., None])  # (G, H, 1)
        g_pre = torch.ops.aten.threshold_backward(g_out[..., None] * w2.transpose(1, 2), hid,
                                                  0.0)  # (G, B, H), zero where ReLU was off
        grads = {"w1": torch.bmm(g_pre.transpose(1, 2), xg), "b1": g_pre.sum(dim=1),
                 "w2": g_w2, "b2": g_out.sum(dim=1)}
        out_grads = {}
        for name, grad in grads.items():
            # the anchored prior ‖θ - θ₀‖²·prec / n
            prior = (p[name] - self.anchors[name][reps]) * (2.0 * self.prior_prec[name]
                                                            / self.n_seen)
            out_grads[name] = grad.reshape(p[name].shape) + prior
        return out_grads

    # ------------------------------------------------------------------ acting
    def _arm_inputs(self, contexts: np.ndarray, counter: int, stream: int) -> tuple[Any, Any]:
        """``(x (R, K, N, d), weights (R, K, N))`` over which each arm is scored."""
        raise NotImplementedError

    def _act(self, obs: np.ndarray, counter: int) -> np.ndarray:
        if self.t < self.burn_in or self.n_seen < self.batch_size:
            return self.streams.integers(counter, STREAM_ACT, self.n_actions)
        members = self.streams.integers(counter, STREAM_ACT, self.n_members)[:, None]
        x, w = self._arm_inputs(gambit_contexts(obs), counter, STREAM_TREAT)
        scores = self._mean_scores(members, x, w)[:, 0]
        return _numpy(scores).argmax(axis=-1)

    def _probabilities(self, obs: np.ndarray, counter: int, n_samples: int) -> np.ndarray:
        """``π(a) = (1/M) Σ_m 1[a = argmax under m]``: exact, or from a sample of members.

        Scoring all M members costs M times a decision. The member :meth:`_act` is about to
        use votes for the action it takes, so ``π(chosen) = (1 + V)/M`` with ``V`` the votes
        of the other ``M - 1`` members for it; ``V`` is estimated from a uniform sample of
        :data:`PILOT_MEMBERS` of them without replacement (unbiased, never below ``1/M``).
        Which replicates are sampled and which are scored exactly is decided before this
        step's draws, from the previous call (a replicate whose chosen action's estimate had
        a relative standard error above the target, or that has no previous call, is exact):
        deciding from the sample itself would keep the high estimates and bias them.
        ``target_rse=None``: always exact.
        """
        k, m_count, r = self.n_actions, self.n_members, self.replicates
        if self.t < self.burn_in or self.n_seen < self.batch_size:
            return np.full((r, k), 1.0 / k)
        x, w = self._arm_inputs(gambit_contexts(obs), counter, STREAM_TREAT)
        probs = np.zeros((r, k))
        j = min(PILOT_MEMBERS, m_count - 2)
        target = self._target_rse
        use_sample = getattr(self, "_member_sample_ok", None)
        if target is None or j < 2 or use_sample is None:
            use_sample = np.zeros(r, dtype=bool)
        fpc = (m_count - 1 - j) / max(m_count - 2, 1)
        chosen = self._next_actions() if target is not None else None
        sampled = np.flatnonzero(use_sample)
        if len(sampled):
            own = self.streams.integers(counter, STREAM_ACT, m_count)  # the member _act uses
            keys = self._propensity_generator().random((r, m_count))[sampled]
            keys[np.arange(len(sampled)), own[sampled]] = 2.0  # never sampled: vote known
            others = np.argsort(keys, axis=1)[:, :j]
            xs, ws = self._rows_of(x, w, sampled)
            picks = _numpy(self._mean_scores(others, xs, ws, rows=sampled)).argmax(axis=-1)
            votes = np.zeros((len(sampled), k))
            np.add.at(votes, (np.repeat(np.arange(len(sampled)), j), picks.ravel()), 1.0)
            scale = (m_count - 1) / (j * m_count)
            est = votes * scale
            est[np.arange(len(sampled)), chosen[sampled]] += 1.0 / m_count
            q = (votes + 1.0) / (j + 2.0)  # smoothed: a unanimous sample is not certainty
            se = (m_count - 1) / m_count * np.sqrt(q * (1.0 - q) / j * fpc)
            probs[sampled] = est
            self.propensity_se[sampled] = se
            self.propensity_draws[sampled] = j + 1
        exact = np.flatnonzero(~use_sample)
        if len(exact):
            members = np.broadcast_to(np.arange(m_count), (len(exact), m_count))
            xs, ws = self._rows_of(x, w, exact)
            picks = _numpy(self._mean_scores(np.ascontiguousarray(members), xs, ws,
                                             rows=exact)).argmax(axis=-1)
            full = np.zeros((len(exact), k))
            np.add.at(full, (np.repeat(np.arange(len(exact)), m_count), picks.ravel()),
                      1.0 / m_count)
            probs[exact] = full
            self.propensity_draws[exact] = m_count
        if target is not None:  # for the next call: would a sample of j have been precise?
            p_chosen = probs[np.arange(r), chosen]
            share = np.clip((p_chosen * m_count - 1.0) / (m_count - 1), 0.0, 1.0)
            smooth = (share * j + 1.0) / (j + 2.0)
            se_next = (m_count - 1) / m_count * np.sqrt(smooth * (1 - smooth) / j * fpc)
            self._member_sample_ok = se_next / p_chosen <= target
        return probs

    def _rows_of(self, x: Any, w: Any, rows: np.ndarray) -> tuple[Any, Any]:
        """The inputs and weights of some replicates (numpy or torch, as ``x`` is)."""
        if self._kernel:
            return x[rows], w[rows]
        index = _torch().as_tensor(rows, device=self.torch_device)
        return x[index], w[index]


@dataclass(eq=False)
class EnsPOGambitTS(_Ensemble):
    """ens-poGAMBITTS: ensemble sampling with MLP reward models and simulator access.

    Args:
        n_members: M (study: 60).
        hidden: hidden ReLU units (study: 64).
        lr: Adam learning rate (one persistent optimiser per member).
        batch_size: minibatch size (study: 100); training starts once the buffer holds one.
        buffer_size: FIFO replay capacity (study: 1024).
        burn_in: uniformly random decisions at the start (study: 100).
        perturbation_sd: sd of the reward perturbations (default: the env's noise sd, as in
            the study).
        prior_scale: prior sd of the anchored regulariser, in units of the init sd.
        output_offset: prediction = ``output_offset + output_scale · MLP(z)`` (the study's prior
            reward mean, 77; its prior sd, 10).
        output_scale: see ``output_offset``.
        n_sim_draws: None (default) scores each prompt by the exact mean over its bank cell;
            an int uses that many draws per prompt with common random numbers across prompts.
        device: torch device (default: CUDA when available, else CPU).
        dtype: ``"float32"`` or ``"float64"``.
        train_chunk: torch path: replicates whose members train together in one
            forward/backward pass (default: all of them on CUDA; on a CPU as many as keep about
            2M hidden activations). The gradients, hence the decisions, do not depend on it
            beyond float error.
        cpu_kernel: on a CPU, train and score with the fused numba kernels (None: when numba
            is installed; False: the batched torch path).
    """

    n_sim_draws: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_sim_draws", self.n_sim_draws, allow_none=True)

    def _setup(self, spec: EnvDescription) -> None:
        sim = require_simulator(spec, "ens-poGAMBITTS")
        n_ctx, k = spec.n_contexts, spec.n_actions
        cells = [[np.asarray(sim.cell_embeddings(a, c), dtype=np.float64) for a in range(k)]
                 for c in range(n_ctx)]
        allz = np.concatenate([cell for row in cells for cell in row])
        self._setup_ensemble(spec, allz.mean(axis=0), allz.std(axis=0))
        self._counts = np.array([[len(cell) for cell in row] for row in cells])  # (12, K)
        n_max = int(self._counts.max())
        padded = np.zeros((n_ctx, k, n_max, self.d))
        weights = np.zeros((n_ctx, k, n_max))
        for c in range(n_ctx):
            for a in range(k):
                n = self._counts[c, a]
                padded[c, a, :n] = self._normalise(cells[c][a])
                weights[c, a, :n] = 1.0 / n
        self._cells_np = padded
        self._cells = self._input(padded)
        self._weights = self._input(weights)

    def _arm_inputs(self, contexts: np.ndarray, counter: int, stream: int) -> tuple[Any, Any]:
        torch = _torch()
        if self.n_sim_draws is None:
            if self._kernel:
                return self._cells[contexts], self._weights[contexts]
            ctx = torch.as_tensor(contexts, device=self.torch_device)
            return self._cells[ctx], self._weights[ctx]
        n = int(self.n_sim_draws)
        u = self.streams.uniform(counter, stream, (n,))  # common to every prompt
        counts = self._counts[contexts]  # (R, K)
        rows = np.minimum((u[:, None, :] * counts[:, :, None]).astype(np.int64),
                          counts[:, :, None] - 1)
        x = self._cells_np[contexts[:, None, None], np.arange(self.n_actions)[None, :, None],
                           rows]
        w = np.full(rows.shape, 1.0 / n)
        return self._input(x), self._input(w)


@dataclass(eq=False)
class EnsFOGambitTS(_Ensemble):
    """ens-foGAMBITTS: ensemble sampling with MLP reward models, treatment learned online.

    Each (context, prompt) cell has foGAMBITTS's Normal-Inverse-Wishart posterior; at action
    time each arm's embedding distribution ``N(m̃, Σ̃)`` is drawn from it and the member's mean
    prediction is estimated from ``n_embedding_draws`` embeddings ``m̃ + Σ̃^½ ε`` with the same
    normals ``ε`` for every prompt. No simulator is used (inputs are not normalised).

    Args:
        n_embedding_draws: embeddings per arm when scoring (study's MC size: 100).
        treatment_mean, treatment_kappa, treatment_nu, treatment_var: the NIW prior, as in
            :class:`gambit_gym.agents.gambitts.FOGambitTS`.
        n_members, hidden, lr, batch_size, buffer_size, burn_in, perturbation_sd, prior_scale,
            output_offset, output_scale, device, dtype, train_chunk, cpu_kernel: as in
            :class:`EnsPOGambitTS`.
    """

    n_embedding_draws: int = 100
    treatment_mean: float = 0.0
    treatment_kappa: float = 1.0
    treatment_nu: float | None = None
    treatment_var: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive_int("n_embedding_draws", self.n_embedding_draws)
        check_positive("treatment_kappa", self.treatment_kappa)
        check_positive("treatment_var", self.treatment_var)

    def _setup(self, spec: EnvDescription) -> None:
        d = len(spec.embedding_names)
        self._setup_ensemble(spec, np.zeros(d), np.ones(d))
        nu0, psi0 = niw_prior(d, self.treatment_nu, self.treatment_var)
        #: the treatment model this agent owns, as foGAMBITTS does (Ψ_n computed when sampled)
        self.treatment = NIWTreatment((self.replicates, spec.n_contexts, self.n_actions), d,
                                      self.treatment_mean, self.treatment_kappa, nu0, psi0,
                                      keep_psi=False)

    def _update_treatment(self, contexts: np.ndarray, actions: np.ndarray,
                          z: np.ndarray) -> None:
        self.treatment.update(contexts, actions, z)

    def treatment_posterior(self, contexts: np.ndarray) -> tuple[np.ndarray, ...]:
        """NIW posterior of every arm's embedding in each context (:class:`.NIWTreatment`)."""
        return self.treatment.posterior(contexts)

    def sample_arm_distributions(self, contexts: np.ndarray, counter: int, stream: int,
                                 n_samples: int | None) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws of each arm's ``N(m̃, Σ̃)`` (see :class:`.NIWTreatment`)."""
        return self.treatment.sample_distributions(self.streams, contexts, counter, stream,
                                                   n_samples)

    def _arm_inputs(self, contexts: np.ndarray, counter: int, stream: int) -> tuple[Any, Any]:
        means, root = self.sample_arm_distributions(contexts, counter, stream, None)
        n = int(self.n_embedding_draws)
        eps = self.streams.normal(counter, stream + 12, (n, self.d))  # common to every prompt
        # x[r,k,n] = m̃[r,k] + root[r,k] eps[r,n]; one batched matmul (einsum: 2.6x the time)
        x = np.matmul(eps[:, None], np.swapaxes(root, -1, -2))
        x += means[:, :, None, :]
        w = np.full(x.shape[:3], 1.0 / n)
        return self._input(x), self._input(w)

