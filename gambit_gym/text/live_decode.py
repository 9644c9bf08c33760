"""Decoding for the live env: drafts with their own random streams, stopped at the first accepted.

A live step needs *one* accepted message per query, not a batch of finished drafts. The bank's
sampler (:meth:`~gambit_gym.text.fast_decode.SharedPrefixSampler.sample`) runs every row of a
pass until all have ended, with one random generator for the whole batch, so the pass lasts as
long as its longest draft. :class:`FirstAcceptedDecoder` reuses that sampler's weights and
decode step and changes three things, none of which changes the distribution of the message:

* **Per-draft random streams.** Draft ``k`` of query ``i`` samples its token at position ``t``
  from its own uniform ``U[k, t]`` (a generator seeded with ``derive_seed(seed, i, k)``) by
  inverse-CDF sampling from the temperature-scaled nucleus (the same top-p rule as the bank's
  sampler). A draft's tokens are therefore a function of (seed, query, draft index) alone,
  whichever other drafts share its batch: sampling 4 drafts at once or one after the other
  gives the same drafts (up to float rounding that differs between batch shapes).
* **First accepted, in draw order.** After each token the finished drafts are judged in draft
  order; a query is settled when its lowest-numbered drafts are all finished and rejected up to
  one that is accepted. That is what sequential rejection sampling returns (draw draft 0, if
  rejected draw draft 1, ...), so the message has the distribution of a draft conditioned on
  acceptance, as in the bank. Decoding stops as soon as every query is settled: no token is
  spent on drafts after the accepted one, or on the tail of the longest draft.
* **The constant prefix computed once.** The system instruction and few-shot turns are the
  same at every step; their keys/values are computed once (:meth:`prefix`) and each query's own
  tokens are run on top of them (:meth:`continue_prefix`), which also skips the vocabulary
  projection of every position but the last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from gambit_gym.text.fast_decode import TOP_K_FIRST, SharedPrefixSampler

#: Keys/values of one token sequence: per layer ``(kv_heads, length, head_dim)`` pairs.
Cache = list[tuple[torch.Tensor, torch.Tensor]]


def sample_top_p_with_uniforms(logits: torch.Tensor, temperature: float, top_p: float,
                               u: torch.Tensor) -> torch.Tensor:
    """One token per row from ``softmax(logits / temperature)`` restricted to its nucleus.

    Row ``r`` takes the token where the cumulative nucleus mass (tokens in decreasing
    probability) first exceeds ``u[r]`` times the nucleus total: inverse-CDF sampling, exact
    for ``u`` uniform on [0, 1). The nucleus rule is that of
    :func:`~gambit_gym.text.fast_decode.nucleus_filter_reference` (a token is kept when the
    mass ranked strictly above it is below ``top_p``); the top :data:`TOP_K_FIRST` tokens are
    examined first and a row whose nucleus is wider is resolved with a full sort.
    """
    probs = torch.softmax(logits / temperature, dim=-1)
    k = min(TOP_K_FIRST, probs.shape[-1])
    vals, idx = probs.topk(k, dim=-1)
    tokens = _inverse_cdf(vals, idx, top_p, u)
    wide = vals.cumsum(-1)[:, -1] < top_p  # the nucleus may reach past the top k
    if bool(wide.any()):
        rows = wide.nonzero().squeeze(-1)
        vals, idx = probs[rows].sort(dim=-1, descending=True)
        tokens[rows] = _inverse_cdf(vals, idx, top_p, u[rows])
    return tokens


def _inverse_cdf(vals: torch.Tensor, idx: torch.Tensor, top_p: float,
                 u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF pick within the nucleus of rows sorted by decreasing probability."""
    above = vals.cumsum(-1) - vals
    keep = above < top_p
    cum = torch.where(keep, vals, torch.zeros_like(vals)).cumsum(-1)
    target = (u.to(cum.dtype) * cum[:, -1])[:, None]
    pick = torch.searchsorted(cum, target, right=True).squeeze(-1)
    pick = torch.minimum(pick, keep.sum(-1) - 1)  # u * total rounded up to total
    return idx.gather(-1, pick[:, None]).squeeze(-1)


def draft_uniforms(seeds: Sequence[int], length: int) -> torch.Tensor:
    """``(len(seeds), length)`` uniforms, row ``r`` from a generator seeded with ``seeds[r]``."""
    rows = []
    for s in seeds:
        g = torch.Generator()
        g.manual_seed(int(s))
        rows.append(torch.rand(length, generator=g, dtype=torch.float64))
    return torch.stack(rows) if rows else torch.zeros(0, length, dtype=torch.float64)


@dataclass
class Settled:
    """The outcome of one query in a pass: the drafts judged, in order, and the accepted one.

    Attributes:
        drafts: token ids of each judged draft (draft order, from the pass's first draft).
        verdicts: what the judge returned for each (its second item None means accepted).
        accepted: index into ``drafts`` of the accepted draft, or None (all rejected).
    """

    drafts: list[list[int]] = field(default_factory=list)
    verdicts: list[tuple[str, str | None]] = field(default_factory=list)
    accepted: int | None = None


#: ``judge([(query index, draft token ids), ...])`` → ``(message, reason or None)`` for each.
Judge = Callable[[list[tuple[int, list[int]]]], list[tuple[str, str | None]]]


class FirstAcceptedDecoder:
    """Samples drafts until each query has its first accepted draft (see the module docstring).

    Args:
        sampler: the bank's :class:`~gambit_gym.text.fast_decode.SharedPrefixSampler` of the
            loaded model (its weights and decode step are reused).
    """

    def __init__(self, sampler: SharedPrefixSampler) -> None:
        self.s = sampler
        self._prefix_ids: tuple[int, ...] | None = None
        self._prefix_cache: Cache | None = None
        #: decode steps run and draft tokens sampled so far (for profiles and benchmarks)
        self.steps = 0
        self.tokens = 0

    # ------------------------------------------------------------------ prefill
    @torch.inference_mode()
    def prefix(self, ids: Sequence[int]) -> Cache:
        """The keys/values of the constant prefix ``ids``, computed on the first call only."""
        key = tuple(int(i) for i in ids)
        if key != self._prefix_ids or self._prefix_cache is None:
            self._prefix_cache = self.s.prefill(torch.tensor(key, device=self.s.device))[0] \
                if key else [(torch.zeros(self.s.n_kv, 0, self.s.head_dim, dtype=self.s.dtype,
                                          device=self.s.device),) * 2 for _ in self.s.layers]
            self._prefix_ids = key
        return self._prefix_cache

    @torch.inference_mode()
    def continue_prefix(self, prefix: Cache, ids: torch.Tensor) -> tuple[Cache, torch.Tensor]:
        """Run ``ids`` after a cached prefix: the whole sequence's cache and its last logits.

        Equal (up to float rounding) to :meth:`SharedPrefixSampler.prefill` of the
        concatenated sequence; only the last position is projected onto the vocabulary.
        """
        s = self.s
        p0, n = prefix[0][0].shape[1], ids.shape[0]
        cos, sin = s._rope(torch.arange(p0, p0 + n, device=s.device))
        # query i sees the prefix and suffix positions 0..i
        mask = torch.ones(n, p0 + n, dtype=torch.bool, device=s.device)
        mask[:, p0:] = torch.ones(n, n, dtype=torch.bool, device=s.device).tril()
        x = s.embed[ids.to(s.device)]
        g = s.n_heads // s.n_kv
        cache: Cache = []
        for layer, (pk, pv) in zip(s.layers, prefix):
            q, k, v = s._split(s._norm(x, layer.norm1), layer)
            q = s._rotate(q.view(n, s.n_heads, s.head_dim).transpose(0, 1), cos, sin)
            k = s._rotate(k.view(n, s.n_kv, s.head_dim).transpose(0, 1), cos, sin)
            v = v.view(n, s.n_kv, s.head_dim).transpose(0, 1)
            keys, values = torch.cat([pk, k], dim=1), torch.cat([pv, v], dim=1)
            cache.append((keys, values))
            att = torch.nn.functional.scaled_dot_product_attention(
                q, keys.repeat_interleave(g, 0), values.repeat_interleave(g, 0), attn_mask=mask)
            x = x + att.transpose(0, 1).reshape(n, -1) @ layer.out
            x = x + s._mlp(x, layer)
        return cache, s._norm(x[-1:], s.final_norm) @ s.head

    # ------------------------------------------------------------------ decoding
    @torch.inference_mode()
    def decode(self, caches: list[Cache], last_logits: list[torch.Tensor], n: int,
               uniforms: torch.Tensor, temperature: float, top_p: float, eos_ids: set[int],
               judge: Judge) -> list[Settled]:
        """One pass: ``n`` drafts of each query, stopped when every query is settled.

        Args:
            caches: each query's cache (from :meth:`continue_prefix`).
            last_logits: each query's next-token logits, shape ``(1, vocab)``.
            n: drafts per query in this pass (rows ``i * n .. i * n + n - 1`` are query
                ``i``'s, in draft order).
            uniforms: ``(len(caches) * n, max_new_tokens)``, row ``r`` the stream of row ``r``.
            temperature: the sampling temperature.
            top_p: the nucleus mass.
            eos_ids: tokens that end a draft (not included in it).
            judge: called with the newly judgeable drafts (batched over queries).
        """
        s = self.s
        n_groups, max_new = len(caches), uniforms.shape[1]
        b = n_groups * n
        lens = torch.tensor([c[0][0].shape[1] for c in caches], device=s.device)
        p_max = int(lens.max())
        prefix = []
        for i in range(len(s.layers)):
            k = torch.zeros(n_groups, s.n_kv, p_max, s.head_dim, dtype=s.dtype, device=s.device)
            v = torch.zeros_like(k)
            for j, c in enumerate(caches):
                k[j, :, :c[i][0].shape[1]] = c[i][0]
                v[j, :, :c[i][1].shape[1]] = c[i][1]
            prefix.append((k, v))
        bias = torch.zeros(n_groups, 1, 1, 1, p_max, dtype=s.dtype, device=s.device)
        for j, c in enumerate(caches):
            bias[j, ..., c[0][0].shape[1]:] = float("-inf")
        logits = torch.cat(last_logits).repeat_interleave(n, dim=0)
        shape = (b, s.n_kv, max_new, s.head_dim)
        gen_k = [torch.empty(shape, dtype=s.dtype, device=s.device) for _ in s.layers]
        gen_v = [torch.empty(shape, dtype=s.dtype, device=s.device) for _ in s.layers]
        eos = torch.tensor(sorted(eos_ids), device=s.device)
        rows: list[list[int]] = [[] for _ in range(b)]
        finished = [False] * b
        out = [Settled() for _ in range(n_groups)]
        nxt = [0] * n_groups  # the next draft of each query to judge
        open_ = set(range(n_groups))
        for step in range(max_new):
            tokens = sample_top_p_with_uniforms(logits, temperature, top_p, uniforms[:, step])
            self.steps += 1
            self.tokens += b
            ended = torch.isin(tokens, eos).tolist()
            for r, (t, e) in enumerate(zip(tokens.tolist(), ended)):
                if finished[r]:
                    continue
                if e:
                    finished[r] = True
                else:
                    rows[r].append(t)
                    finished[r] = step == max_new - 1
            self._settle(open_, nxt, out, rows, finished, n, judge)
            if not open_:
                break
            logits = s._decode_step(tokens, step, lens, prefix, bias, gen_k, gen_v)
        return out

    @staticmethod
    def _settle(open_: set[int], nxt: list[int], out: list[Settled], rows: list[list[int]],
                finished: list[bool], n: int, judge: Judge) -> None:
        """Judge, in draft order, the finished drafts each open query is waiting for.

        Each open query's run of finished drafts from the next one it waits for is judged in
        one batched call (drafts after its first accepted one are judged but not recorded).
        """
        runs: list[tuple[int, int]] = []  # (query, row)
        for i in sorted(open_):
            j = nxt[i]
            while j < n and finished[i * n + j]:
                runs.append((i, i * n + j))
                j += 1
        if not runs:
            return
        verdicts = judge([(i, rows[r]) for i, r in runs])
        for (i, r), verdict in zip(runs, verdicts):
            if i not in open_:
                continue  # settled by an earlier draft of this batch
            out[i].drafts.append(rows[r])
            out[i].verdicts.append(verdict)
            nxt[i] += 1
            if verdict[1] is None:
                out[i].accepted = len(out[i].drafts) - 1
                open_.discard(i)
            elif nxt[i] == n:
                open_.discard(i)
