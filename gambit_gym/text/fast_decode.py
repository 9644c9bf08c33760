"""Fast sampling of many continuations of one prompt with a Llama-family causal LM.

A response bank needs ~100 messages for every (prompt, context) pair, so the builder asks
for the *same* query many times. ``transformers.generate`` treats each copy as an independent
sequence: the prompt's key/value cache is copied into every row and the whole cache is
re-concatenated at every step, which on a CPU costs more than the matrix products of the
model itself. :class:`SharedPrefixSampler` instead

* runs the prompt once (batch 1) and keeps its keys/values *shared* by all rows: attention
  scores against the prompt are one batched product against that single cache;
* writes the generated tokens' keys/values into a preallocated per-row cache (no
  concatenation);
* batches the continuations of several prompts together (each prompt's cache padded to the
  longest, padding masked), so that a batch is large even when each prompt is asked for
  only a few times;
* samples with temperature and exact nucleus (top-p) filtering, looking at the top 256
  tokens first and sorting the whole vocabulary only for the rare rows whose nucleus is
  wider than that.

It reads the weights of an already loaded ``transformers`` Llama model (SmolLM2 is one), so
the next-token distribution is the model's own (tested against the ``transformers`` forward
pass). Architectures other than Llama use ``generate`` (see
:meth:`gambit_gym.text.generators.HFGenerator._draft`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

#: Candidates examined before falling back to a full sort for top-p sampling.
TOP_K_FIRST = 256


def supports(model: Any) -> bool:
    """Whether :class:`SharedPrefixSampler` can run ``model`` (a plain Llama decoder)."""
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        return False
    rope = getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None) or {}
    return (rope.get("rope_type", "default") == "default"
            and not getattr(cfg, "attention_bias", False)
            and not getattr(cfg, "mlp_bias", False)
            and getattr(cfg, "hidden_act", "silu") == "silu")


@dataclass
class _Layer:
    """The weights of one decoder layer, fused for fewer matrix products."""

    norm1: torch.Tensor
    qkv: torch.Tensor  # (q + 2 kv, hidden), transposed once for x @ w
    out: torch.Tensor
    norm2: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor


def nucleus_filter_reference(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    """Boolean mask of the tokens top-p sampling keeps (full sort; the definition).

    A token is kept when the probability mass of the tokens ranked strictly above it is
    below ``top_p`` (so the most likely token is always kept). This is the rule of
    ``transformers``' ``TopPLogitsWarper``.
    """
    probs = torch.softmax(logits, dim=-1)
    sorted_p, order = probs.sort(dim=-1, descending=True)
    above = sorted_p.cumsum(-1) - sorted_p
    keep_sorted = above < top_p
    keep = torch.zeros_like(keep_sorted)
    keep.scatter_(-1, order, keep_sorted)
    return keep


def sample_top_p(logits: torch.Tensor, temperature: float, top_p: float,
                 generator: torch.Generator) -> torch.Tensor:
    """One token per row from ``softmax(logits / temperature)`` restricted to its nucleus.

    Exact: the top :data:`TOP_K_FIRST` candidates are examined first; a row whose nucleus is
    not inside them is resolved with a full sort.
    """
    logits = logits / temperature
    probs = torch.softmax(logits, dim=-1)
    k = min(TOP_K_FIRST, probs.shape[-1])
    top_p_vals, top_idx = probs.topk(k, dim=-1)
    above = top_p_vals.cumsum(-1) - top_p_vals
    keep = above < top_p
    weights = torch.where(keep, top_p_vals, torch.zeros_like(top_p_vals))
    pick = torch.multinomial(weights, 1, generator=generator).squeeze(-1)
    tokens = top_idx.gather(-1, pick[:, None]).squeeze(-1)
    wide = keep[:, -1] & (above[:, -1] + top_p_vals[:, -1] < top_p)
    if bool(wide.any()):
        rows = wide.nonzero().squeeze(-1)
        mask = nucleus_filter_reference(logits[rows], top_p)
        w = torch.where(mask, probs[rows], torch.zeros_like(probs[rows]))
        tokens[rows] = torch.multinomial(w, 1, generator=generator).squeeze(-1)
    return tokens


class SharedPrefixSampler:
    """Samples ``n`` continuations of one token sequence from a loaded Llama model.

    Args:
        model: a ``transformers`` ``LlamaForCausalLM`` (already on its device, eval mode).
    """

    def __init__(self, model: Any) -> None:
        if not supports(model):
            raise ValueError("SharedPrefixSampler needs a plain Llama-architecture model")
        cfg = model.config
        self.n_heads = int(cfg.num_attention_heads)
        self.n_kv = int(cfg.num_key_value_heads)
        self.head_dim = int(getattr(cfg, "head_dim", None) or cfg.hidden_size // self.n_heads)
        self.eps = float(cfg.rms_norm_eps)
        rope = getattr(cfg, "rope_parameters", None) or {}
        self.theta = float(rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0)))
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach()
        self.head = model.lm_head.weight.detach().t()
        self.final_norm = inner.norm.weight.detach()
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        self.layers = []
        for layer in inner.layers:
            a, m = layer.self_attn, layer.mlp
            self.layers.append(_Layer(
                norm1=layer.input_layernorm.weight.detach(),
                qkv=torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).detach().t()
                .contiguous(),
                out=a.o_proj.weight.detach().t().contiguous(),
                norm2=layer.post_attention_layernorm.weight.detach(),
                gate_up=torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach().t()
                .contiguous(),
                down=m.down_proj.weight.detach().t().contiguous(),
            ))
        half = self.head_dim // 2
        exponents = torch.arange(0, half, device=self.device, dtype=torch.float32) * 2
        self.inv_freq = 1.0 / (self.theta ** (exponents / self.head_dim))

    # ------------------------------------------------------------------ building blocks
    def _norm(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).to(x.dtype) * w

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions.float()[:, None] * self.inv_freq[None, :]
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos().to(self.dtype), emb.sin().to(self.dtype)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    def _split(self, h: torch.Tensor, layer: _Layer) -> tuple[torch.Tensor, ...]:
        qkv = h @ layer.qkv
        nq, nk = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        return qkv[..., :nq], qkv[..., nq:nq + nk], qkv[..., nq + nk:]

    def _mlp(self, x: torch.Tensor, layer: _Layer) -> torch.Tensor:
        h = self._norm(x, layer.norm2)
        gu = h @ layer.gate_up
        inter = gu.shape[-1] // 2
        return (torch.nn.functional.silu(gu[..., :inter]) * gu[..., inter:]) @ layer.down

    # ------------------------------------------------------------------ passes
    @torch.inference_mode()
    def prefill(self, ids: torch.Tensor) -> tuple[list[tuple[torch.Tensor, torch.Tensor]],
                                                   torch.Tensor]:
        """Run the prompt once: per-layer (keys, values) of shape (kv, P, d) and its logits.

        Returns:
            The prompt cache and the logits of every prompt position, shape (P, vocab).
        """
        p = ids.shape[0]
        cos, sin = self._rope(torch.arange(p, device=self.device))
        x = self.embed[ids]
        cache = []
        g = self.n_heads // self.n_kv
        for layer in self.layers:
            q, k, v = self._split(self._norm(x, layer.norm1), layer)
            q = self._rotate(q.view(p, self.n_heads, self.head_dim).transpose(0, 1), cos, sin)
            k = self._rotate(k.view(p, self.n_kv, self.head_dim).transpose(0, 1), cos, sin)
            v = v.view(p, self.n_kv, self.head_dim).transpose(0, 1)
            cache.append((k.contiguous(), v.contiguous()))
            att = torch.nn.functional.scaled_dot_product_attention(
                q, k.repeat_interleave(g, 0), v.repeat_interleave(g, 0), is_causal=True)
            x = x + att.transpose(0, 1).reshape(p, -1) @ layer.out
            x = x + self._mlp(x, layer)
        return cache, self._norm(x, self.final_norm) @ self.head

    def _decode_step(self, tokens: torch.Tensor, step: int, prompt_lens: torch.Tensor,
                     prefix: list[tuple[torch.Tensor, torch.Tensor]], prefix_bias: torch.Tensor,
                     gen_k: list[torch.Tensor], gen_v: list[torch.Tensor]) -> torch.Tensor:
        """Logits after feeding ``tokens`` (one per row) at generated position ``step``.

        Rows are ``G`` groups of ``n`` (row ``i`` continues prompt ``i // n``); ``prefix``
        holds each layer's prompt keys/values padded to a common length, shape
        (G, kv, P, d), and ``prefix_bias`` is 0 on real prompt positions and -inf on padding.
        """
        b = tokens.shape[0]
        n_groups = prompt_lens.shape[0]
        n = b // n_groups
        g = self.n_heads // self.n_kv
        cos, sin = self._rope((prompt_lens + step).repeat_interleave(n))
        cos_q, sin_q = cos[:, None, None, :], sin[:, None, None, :]
        cos_k, sin_k = cos[:, None, :], sin[:, None, :]
        scale = self.head_dim ** -0.5
        x = self.embed[tokens]
        for i, layer in enumerate(self.layers):
            q, k, v = self._split(self._norm(x, layer.norm1), layer)
            q = self._rotate(q.view(b, self.n_kv, g, self.head_dim), cos_q, sin_q) * scale
            gen_k[i][:, :, step] = self._rotate(k.view(b, self.n_kv, self.head_dim), cos_k, sin_k)
            gen_v[i][:, :, step] = v.view(b, self.n_kv, self.head_dim)
            pk, pv = prefix[i]
            ck, cv = gen_k[i][:, :, :step + 1], gen_v[i][:, :, :step + 1]
            qg = q.view(n_groups, n, self.n_kv, g, self.head_dim)
            s_pre = torch.einsum("Gnhqd,Ghpd->Gnhqp", qg, pk) + prefix_bias
            s_gen = torch.einsum("bhqd,bhtd->bhqt", q, ck)
            p = pk.shape[2]
            w = torch.softmax(torch.cat([s_pre.reshape(b, self.n_kv, g, p), s_gen], dim=-1),
                              dim=-1)
            att = (torch.einsum("Gnhqp,Ghpd->Gnhqd",
                                w[..., :p].reshape(n_groups, n, self.n_kv, g, p), pv)
                   .reshape(b, self.n_kv, g, self.head_dim)
                   + torch.einsum("bhqt,bhtd->bhqd", w[..., p:], cv))
            x = x + att.reshape(b, -1) @ layer.out
            x = x + self._mlp(x, layer)
        return self._norm(x, self.final_norm) @ self.head

    @torch.inference_mode()
    def sample(self, prompts: list[torch.Tensor], n: int, max_new_tokens: int,
               temperature: float, top_p: float, eos_ids: set[int], seed: int
               ) -> list[list[list[int]]]:
        """``n`` sampled continuations of each prompt (1-D token ids), in one batch.

        The ``len(prompts) * n`` rows advance together; generation stops when every row has
        ended or after ``max_new_tokens``.

        Returns:
            ``out[i][j]``: continuation ``j`` of prompt ``i``, token ids up to (not including)
            the first end token.
        """
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed))
        n_groups = len(prompts)
        lens = torch.tensor([len(p) for p in prompts], device=self.device)
        p_max = int(lens.max())
        layers_k = [torch.zeros(n_groups, self.n_kv, p_max, self.head_dim, dtype=self.dtype,
                                device=self.device) for _ in self.layers]
        layers_v = [torch.zeros_like(t) for t in layers_k]
        last = []
        for j, ids in enumerate(prompts):
            cache, logits = self.prefill(ids.to(self.device))
            for i, (k, v) in enumerate(cache):
                layers_k[i][j, :, :len(ids)] = k
                layers_v[i][j, :, :len(ids)] = v
            last.append(logits[-1])
        prefix = list(zip(layers_k, layers_v))
        bias = torch.zeros(n_groups, 1, 1, 1, p_max, dtype=self.dtype, device=self.device)
        for j, ids in enumerate(prompts):
            bias[j, ..., len(ids):] = float("-inf")
        logits = torch.stack(last).repeat_interleave(n, dim=0)
        b = n_groups * n
        shape = (b, self.n_kv, max_new_tokens, self.head_dim)
        gen_k = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        gen_v = [torch.empty(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        finished = torch.zeros(b, dtype=torch.bool, device=self.device)
        rows: list[list[int]] = [[] for _ in range(b)]
        eos = torch.tensor(sorted(eos_ids), device=self.device)
        for step in range(max_new_tokens):
            tokens = sample_top_p(logits, temperature, top_p, gen)
            newly = torch.isin(tokens, eos) & ~finished
            for r, (t, f) in enumerate(zip(tokens.tolist(), (finished | newly).tolist())):
                if not f:
                    rows[r].append(t)
            finished = finished | newly
            if step == max_new_tokens - 1 or bool(finished.all()):
                break
            logits = self._decode_step(tokens, step, lens, prefix, bias, gen_k, gen_v)
        return [rows[j * n:(j + 1) * n] for j in range(n_groups)]
