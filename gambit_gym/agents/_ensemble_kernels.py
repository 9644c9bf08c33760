"""Fused CPU kernels of the ensemble agents' MLP (numba): one training gradient, member scores.

Why: a training step of 60 members × 250 replicates × a batch of 100 on a 64-unit hidden layer
touches a ``R·M·B·H`` = 96M-element activation tensor several times when written as tensor
operations (the forward pass, the ReLU, the output, the loss gradient, the masked hidden
gradient, the weight gradients): memory traffic, not arithmetic, sets the time. Here each
member's minibatch is pushed through forward and backward one example at a time with the
hidden layer in registers, so nothing of size ``B·H`` is ever written; the arithmetic (about
``H·(4d + 8)`` flops per example) is what remains. Numba compiles these on first use (cached
on disk); without numba the agents fall back to the batched torch path, which gives the same
gradients up to float rounding (a test checks both against autograd).
"""

from __future__ import annotations

import numpy as np

try:  # numba is an optional extra: gambit-gym[fast]
    import numba
except ImportError:  # pragma: no cover - exercised where numba is absent
    numba = None


def available() -> bool:
    """Whether the numba kernels can be used."""
    return numba is not None


def _gradients(buf_x, buf_y, buf_eps, idx, w1, b1, w2, b2, a_w1, a_b1, a_w2, a_b2,
               c_w1, c_b1, c_w2, c_b2, loss_coef, offset, scale,
               g_w1, g_b1, g_w2, g_b2):  # pragma: no cover - compiled
    """Gradients of every member's objective on its replicate's minibatch ``idx``.

    The objective is the ensemble module's: ``σ_w⁻²·mean_b (ỹ_{m,b} - f_m(x_b))²`` plus
    the anchored prior ``c·‖θ - θ₀‖²/2`` per parameter group (``c`` = ``2·prec/n``, passed
    in). ``f_m(x) = offset + scale·(w2·relu(W1 x + b1) + b2)``; ``loss_coef`` is
    ``2·σ_w⁻²·scale/B``. Shapes: ``buf_x (R, N, d)``, ``buf_y (R, N)``, ``buf_eps (R, N, M)``,
    ``idx (R, B)``, ``w1 (R, M, H, d)``, ``b1, w2 (R, M, H)``, ``b2 (R, M)``; the anchors and
    the outputs ``g_*`` are shaped like their parameters.
    """
    r_count, m_count, h_count, d_count = w1.shape
    b_count = idx.shape[1]
    zero = b2[0, 0] - b2[0, 0]  # in the parameters' dtype: float32 stays float32 throughout
    for r in numba.prange(r_count):
        # the replicate's minibatch, transposed so that every inner loop runs over the batch
        xt = np.zeros((max(d_count, 4), b_count), dtype=w1.dtype)
        ty = np.empty((m_count, b_count), dtype=w1.dtype)  # ỹ_{m,b}
        for b in range(b_count):
            j = idx[r, b]
            for i in range(d_count):
                xt[i, b] = buf_x[r, j, i]
            for m in range(m_count):
                ty[m, b] = buf_y[r, j] + buf_eps[r, j, m]
        hid = np.empty((h_count, b_count), dtype=w1.dtype)
        out = np.empty(b_count, dtype=w1.dtype)
        gout = np.empty(b_count, dtype=w1.dtype)
        gpre = np.empty(b_count, dtype=w1.dtype)
        for m in range(m_count):
            if d_count == 3:
                _member_step3(r, m, xt, ty, hid, out, gout, loss_coef, offset, scale, w1, b1,
                              w2, b2, a_w1, a_b1, a_w2, a_b2, c_w1, c_b1, c_w2, c_b2,
                              g_w1, g_b1, g_w2, g_b2)
                continue
            if d_count <= 4:
                _member_step4(r, m, xt, ty, hid, out, gout, loss_coef, offset, scale, w1, b1,
                              w2, b2, a_w1, a_b1, a_w2, a_b2, c_w1, c_b1, c_w2, c_b2,
                              g_w1, g_b1, g_w2, g_b2)
                continue
            for b in range(b_count):
                out[b] = b2[r, m]
            for h in range(h_count):  # forward: hidden layer and output
                bias = b1[r, m, h]
                for b in range(b_count):
                    hid[h, b] = bias
                for i in range(d_count):
                    w = w1[r, m, h, i]
                    for b in range(b_count):
                        hid[h, b] += w * xt[i, b]
                w = w2[r, m, h]
                for b in range(b_count):
                    v = max(hid[h, b], zero)
                    hid[h, b] = v
                    out[b] += v * w
            gb2 = zero
            for b in range(b_count):  # d loss / d output
                go = loss_coef * (offset + scale * out[b] - ty[m, b])
                gout[b] = go
                gb2 += go
            for h in range(h_count):  # backward, one hidden unit at a time
                w = w2[r, m, h]
                sw2 = zero
                sb1 = zero
                for b in range(b_count):
                    v = hid[h, b]
                    sw2 += v * gout[b]
                    gp = w * gout[b] if v > zero else zero
                    gpre[b] = gp
                    sb1 += gp
                for i in range(d_count):
                    sw1 = zero
                    for b in range(b_count):
                        sw1 += gpre[b] * xt[i, b]
                    g_w1[r, m, h, i] = sw1 + c_w1 * (w1[r, m, h, i] - a_w1[r, m, h, i])
                g_b1[r, m, h] = sb1 + c_b1 * (b1[r, m, h] - a_b1[r, m, h])
                g_w2[r, m, h] = sw2 + c_w2 * (w - a_w2[r, m, h])
            g_b2[r, m] = gb2 + c_b2 * (b2[r, m] - a_b2[r, m])


def _member_step4(r, m, xt, ty, hid, out, gout, loss_coef, offset, scale, w1, b1, w2, b2,
                  a_w1, a_b1, a_w2, a_b2, c_w1, c_b1, c_w2, c_b2, g_w1, g_b1, g_w2,
                  g_b2):  # pragma: no cover - compiled
    """One member's gradient when ``d <= 4`` (``xt`` has 4 rows, zero beyond ``d``).

    The same arithmetic as the general loop, with the input dimensions written out, so
    that the forward pass and the backward pass are one sweep over the batch each per hidden
    unit instead of ``d + 2`` and ``d + 1``.
    """
    h_count, d_count = w1.shape[2], w1.shape[3]
    b_count = xt.shape[1]
    zero = b2[0, 0] - b2[0, 0]
    x0, x1, x2, x3 = xt[0], xt[1], xt[2], xt[3]
    for b in range(b_count):
        out[b] = b2[r, m]
    for h in range(h_count):
        u0 = w1[r, m, h, 0]
        u1 = w1[r, m, h, 1] if d_count > 1 else zero
        u2 = w1[r, m, h, 2] if d_count > 2 else zero
        u3 = w1[r, m, h, 3] if d_count > 3 else zero
        bias = b1[r, m, h]
        w = w2[r, m, h]
        for b in range(b_count):
            v = max(bias + u0 * x0[b] + u1 * x1[b] + u2 * x2[b] + u3 * x3[b], zero)
            hid[h, b] = v
            out[b] += v * w
    gb2 = zero
    for b in range(b_count):
        go = loss_coef * (offset + scale * out[b] - ty[m, b])
        gout[b] = go
        gb2 += go
    for h in range(h_count):
        w = w2[r, m, h]
        sw2 = zero
        sb1 = zero
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for b in range(b_count):
            v = hid[h, b]
            g = gout[b]
            sw2 += v * g
            gp = w * g if v > zero else zero
            sb1 += gp
            s0 += gp * x0[b]
            s1 += gp * x1[b]
            s2 += gp * x2[b]
            s3 += gp * x3[b]
        sums = (s0, s1, s2, s3)
        for i in range(d_count):
            g_w1[r, m, h, i] = sums[i] + c_w1 * (w1[r, m, h, i] - a_w1[r, m, h, i])
        g_b1[r, m, h] = sb1 + c_b1 * (b1[r, m, h] - a_b1[r, m, h])
        g_w2[r, m, h] = sw2 + c_w2 * (w - a_w2[r, m, h])
    g_b2[r, m] = gb2 + c_b2 * (b2[r, m] - a_b2[r, m])


def _member_step3(r, m, xt, ty, hid, out, gout, loss_coef, offset, scale, w1, b1, w2, b2,
                  a_w1, a_b1, a_w2, a_b2, c_w1, c_b1, c_w2, c_b2, g_w1, g_b1, g_w2,
                  g_b2):  # pragma: no cover - compiled
    """:func:`_member_step4` for ``d = 3`` exactly (the GAMBIT envs' working embedding)."""
    h_count = w1.shape[2]
    b_count = xt.shape[1]
    zero = b2[0, 0] - b2[0, 0]
    x0, x1, x2 = xt[0], xt[1], xt[2]
    for b in range(b_count):
        out[b] = b2[r, m]
    for h in range(h_count):
        u0 = w1[r, m, h, 0]
        u1 = w1[r, m, h, 1]
        u2 = w1[r, m, h, 2]
        bias = b1[r, m, h]
        w = w2[r, m, h]
        for b in range(b_count):
            v = max(bias + u0 * x0[b] + u1 * x1[b] + u2 * x2[b], zero)
            hid[h, b] = v
            out[b] += v * w
    gb2 = zero
    for b in range(b_count):
        go = loss_coef * (offset + scale * out[b] - ty[m, b])
        gout[b] = go
        gb2 += go
    for h in range(h_count):
        w = w2[r, m, h]
        sw2 = zero
        sb1 = zero
        s0 = zero
        s1 = zero
        s2 = zero
        for b in range(b_count):
            v = hid[h, b]
            g = gout[b]
            sw2 += v * g
            gp = w * g if v > zero else zero
            sb1 += gp
            s0 += gp * x0[b]
            s1 += gp * x1[b]
            s2 += gp * x2[b]
        g_w1[r, m, h, 0] = s0 + c_w1 * (w1[r, m, h, 0] - a_w1[r, m, h, 0])
        g_w1[r, m, h, 1] = s1 + c_w1 * (w1[r, m, h, 1] - a_w1[r, m, h, 1])
        g_w1[r, m, h, 2] = s2 + c_w1 * (w1[r, m, h, 2] - a_w1[r, m, h, 2])
        g_b1[r, m, h] = sb1 + c_b1 * (b1[r, m, h] - a_b1[r, m, h])
        g_w2[r, m, h] = sw2 + c_w2 * (w - a_w2[r, m, h])
    g_b2[r, m] = gb2 + c_b2 * (b2[r, m] - a_b2[r, m])


def _member_scores(x, weights, w1, b1, w2, b2, members, offset, scale, out):  # pragma: no cover
    """Weighted mean prediction of chosen members over each arm's inputs.

    ``x (R, K, N, d)``, ``weights (R, K, N)``, parameters as in :func:`_gradients`,
    ``members (R, J)``; writes ``out (R, J, K)``.
    """
    r_count, k_count, n_count, d_count = x.shape
    h_count = w1.shape[2]
    j_count = members.shape[1]
    zero = b2[0, 0] - b2[0, 0]
    for rj in numba.prange(r_count * j_count):
        r = rj // j_count
        m = members[r, rj % j_count]
        w1t = np.empty((d_count, h_count), dtype=w1.dtype)
        hid = np.empty(h_count, dtype=w1.dtype)
        for i in range(d_count):
            for h in range(h_count):
                w1t[i, h] = w1[r, m, h, i]
        for k in range(k_count):
            acc = zero
            for n in range(n_count):
                wt = weights[r, k, n]
                if wt == zero:
                    continue
                for h in range(h_count):
                    hid[h] = b1[r, m, h]
                for i in range(d_count):
                    xi = x[r, k, n, i]
                    for h in range(h_count):
                        hid[h] += xi * w1t[i, h]
                o = b2[r, m]
                for h in range(h_count):
                    o += max(hid[h], zero) * w2[r, m, h]
                acc += wt * (offset + scale * o)
            out[r, rj % j_count, k] = acc


def _adam(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, bias1,
          bias2):  # pragma: no cover - compiled
    """``torch.optim.Adam``'s update (no weight decay, no amsgrad) of flat arrays, in place.

    ``bias1 = 1 - β1^t``, ``bias2 = 1 - β2^t``. One pass over the four arrays instead of the
    eight elementwise tensor operations of torch's single-tensor Adam.
    """
    step = param.dtype.type(lr / bias1)
    root2 = param.dtype.type(np.sqrt(bias2))
    beta1, beta2, eps = param.dtype.type(beta1), param.dtype.type(beta2), param.dtype.type(eps)
    one = param.dtype.type(1.0)
    for i in numba.prange(param.shape[0]):
        g = grad[i]
        m = exp_avg[i] + (one - beta1) * (g - exp_avg[i])  # torch's lerp
        v = beta2 * exp_avg_sq[i] + (one - beta2) * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        param[i] -= step * m / (np.sqrt(v) / root2 + eps)


if numba is not None:
    _member_step4 = numba.njit(fastmath=True, cache=True, inline="always")(_member_step4)
    _member_step3 = numba.njit(fastmath=True, cache=True, inline="always")(_member_step3)
    gradients = numba.njit(parallel=True, fastmath=True, cache=True)(_gradients)
    member_scores = numba.njit(parallel=True, fastmath=True, cache=True)(_member_scores)
    adam = numba.njit(parallel=True, fastmath=True, cache=True)(_adam)
else:  # pragma: no cover
    gradients = member_scores = adam = None
