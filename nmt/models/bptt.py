"""Backpropagation through time written out by hand for the GRU, as autograd functions.

Left to autograd, a recurrent loop records some 10-30 operations per step, and every weight used inside the
loop gets a separate gradient product per step, (out, B) x (B, in) with inner size B, which is then added into
its gradient: T thin matrix products and T full-size additions per weight. The functions here run the forward
loop without autograd, keep what backward needs in time-major buffers (T, B, ·) whose step slices are
contiguous, and run backward as its own loop that carries only what must go back through time: the gradient of
the state (and, with input feeding, of the fed vector). Every weight gradient is then one product over all
T*B rows after the loop, where a CPU matmul is efficient. This is BPTT exactly as the course writes it: O(T)
steps back, each step's local gradients chained through the recurrence. Parity with autograd is tested.

GRU step (torch's, reset gate after the product, gates stacked r, z, n), with g_i = W_ih x_t + b_ih given:
    g_h = W_hh h_{t-1} + b_hh;  r, z = sigmoid(g_i[r, z] + g_h[r, z]);  n = tanh(g_i[n] + r * g_h[n])
    h_t = n + z (h_{t-1} - n)
- `GRUSequence`: one direction of a GRU layer over padded sequences (a mask keeps the state over padding).
- `FeedGRUBahdanau`: the input-feeding decoder: GRU step, Bahdanau attention, attentional vector fed back.
Shapes: B batch, T steps, S source length, H hidden, E attentional vector, A attention size, M memory size.
"""
from __future__ import annotations

import torch
from torch import Tensor

tanh_backward = torch.ops.aten.tanh_backward
sigmoid_backward = torch.ops.aten.sigmoid_backward


def _gru_step(gi: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor, rz: Tensor, n: Tensor, ghn: Tensor) -> Tensor:
    """One step forward, writing the gates r, z (B, 2H), n and g_h[n] (B, H) for backward. -> h_t (B, H)."""
    H = h.size(1)
    gh = torch.addmm(b_hh, h, w_hh.T)                                                  # (B, 3H)
    torch.sigmoid(gi[:, : 2 * H] + gh[:, : 2 * H], out=rz)
    ghn.copy_(gh[:, 2 * H:])
    torch.tanh(torch.addcmul(gi[:, 2 * H:], rz[:, :H], ghn), out=n)
    return torch.lerp(n, h, rz[:, H:])


def _gru_step_backward(dh: Tensor, h_prev: Tensor, rz: Tensor, n: Tensor, ghn: Tensor, w_hh: Tensor,
                       d_gi: Tensor, d_gh: Tensor) -> Tensor:
    """dL/dh_t (B, H) -> dL/dh_{t-1} (B, H), writing dL/dg_i and dL/dg_h (B, 3H) of this step."""
    H = h_prev.size(1)
    r, z = rz[:, :H], rz[:, H:]
    d_n = tanh_backward(dh - dh * z, n)                                                # (B, H) before the tanh
    d_rz = torch.cat([d_n * ghn, dh * (h_prev - n)], dim=1)                            # (B, 2H)
    d_gi[:, : 2 * H] = sigmoid_backward(d_rz, rz)
    d_gi[:, 2 * H:] = d_n
    d_gh[:, : 2 * H] = d_gi[:, : 2 * H]
    torch.mul(d_n, r, out=d_gh[:, 2 * H:])
    return torch.addmm(dh * z, d_gh, w_hh)


def _rows(x: Tensor) -> Tensor:
    """(T, B, ·) -> (T*B, ·)"""
    return x.flatten(0, 1)


class GRUSequence(torch.autograd.Function):
    """gi (B, T, 3H) = W_ih x + b_ih, h0 (B, H), w_hh, b_hh, mask (B, T) bool ->
    outputs (B, T, H) (zero where the mask is False) and the last state (B, H) (kept over masked steps)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor):
        B, T, _ = gi.shape
        H = h0.size(1)
        new = gi.new_empty
        hs, rz, n, ghn = new(T + 1, B, H), new(T, B, 2 * H), new(T, B, H), new(T, B, H)
        keep = mask.T[:, :, None]                                                      # (T, B, 1)
        hs[0] = h0
        for t, gi_t in enumerate(gi.unbind(1)):                                        # (B, 3H)
            h = _gru_step(gi_t, hs[t], w_hh, b_hh, rz[t], n[t], ghn[t])
            torch.where(keep[t], h, hs[t], out=hs[t + 1])
        ctx.save_for_backward(hs, rz, n, ghn, w_hh, keep)
        return (hs[1:] * keep).transpose(0, 1), hs[T]

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_out: Tensor | None, d_last: Tensor | None):
        hs, rz, n, ghn, w_hh, keep = ctx.saved_tensors
        T, B, H = n.shape
        dh = torch.zeros_like(hs[0]) if d_last is None else d_last                     # (B, H)
        d_out = None if d_out is None else d_out.transpose(0, 1)                       # (T, B, H)
        d_gi, d_gh = n.new_empty(T, B, 3 * H), n.new_empty(T, B, 3 * H)
        for t in range(T - 1, -1, -1):
            # a masked step left h unchanged: its gradient passes straight through to h_{t-1}
            d_step = (dh if d_out is None else dh + d_out[t]) * keep[t]
            dh = _gru_step_backward(d_step, hs[t], rz[t], n[t], ghn[t], w_hh, d_gi[t], d_gh[t]) + dh * ~keep[t]
        return d_gi.transpose(0, 1), dh, _rows(d_gh).T @ _rows(hs[:-1]), _rows(d_gh).sum(0), None


class FeedGRUBahdanau(torch.autograd.Function):
    """The input-feeding decoder loop. Per step, with X_t = W_e y_t + b_ih (the embedding half, given):
        h_t = GRU(X_t + W_f a_{t-1}, h_{t-1});  e_s = σ(2 K_s + 2 W_q h_t);  α = softmax_s(2 v · e_s) over real tokens
        c_t = Σ_s α_s M_s;  a_t = tanh(W_c [h_t; c_t])
    The scores 2 v · e_s are v · tanh(K_s + W_q h_t) less the constant Σv, as in `attention.additive_scores`.
    (x_emb (B, T, 3H), a0 (B, E), h0 (B, H), weights, keys (B, S, A), memory (B, S, M), mask (B, S)) ->
    attentional vectors (B, T, E), h_T (B, H), attention weights (B, T, S) (not differentiable)."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
    def forward(ctx, x_emb: Tensor, a0: Tensor, h0: Tensor, w_feed: Tensor, w_hh: Tensor, b_hh: Tensor,
                w_q: Tensor, v: Tensor, w_c: Tensor, keys: Tensor, memory: Tensor, mask: Tensor):
        B, T, _ = x_emb.shape
        H, S, M = h0.size(1), keys.size(1), memory.size(2)
        new = x_emb.new_empty
        hs, feeds = new(T + 1, B, H), new(T + 1, B, a0.size(1))                      # h_0..h_T, a_0..a_T
        rz, n, ghn = new(T, B, 2 * H), new(T, B, H), new(T, B, H)
        # the (B, S, A) energies are not kept for backward, which recomputes them from 2 W_q h_t (T, B, A): one
        # buffer stays in cache, where T of them would cross main memory twice
        q2, energy = new(T, B, keys.size(2)), new(B, S, keys.size(2))
        alpha, context = new(T, B, S), new(T, B, M)
        hs[0], feeds[0] = h0, a0
        w_ch, w_cc = w_c[:, :H], w_c[:, H:]
        pad, v2, keys2 = ~mask, v * 2, keys * 2                                        # (B, S), (A,), (B, S, A)
        for t, x_t in enumerate(x_emb.unbind(1)):                                      # (B, 3H)
            gi = torch.addmm(x_t, feeds[t], w_feed.T)                                  # (B, 3H)
            hs[t + 1] = _gru_step(gi, hs[t], w_hh, b_hh, rz[t], n[t], ghn[t])
            torch.mm(hs[t + 1], w_q.T, out=q2[t]).mul_(2)                              # (B, A)
            torch.add(keys2, q2[t][:, None], out=energy).sigmoid_()                    # (B, S, A)
            scores = (energy @ v2).masked_fill_(pad, float("-inf"))                    # (B, S)
            alpha[t] = torch.softmax(scores, dim=1)
            torch.bmm(alpha[t][:, None], memory, out=context[t][:, None])              # (B, 1, M)
            torch.tanh(torch.addmm(hs[t + 1] @ w_ch.T, context[t], w_cc.T), out=feeds[t + 1])
        ctx.save_for_backward(hs, feeds, rz, n, ghn, q2, keys2, alpha, context, w_feed, w_hh, w_q, v, w_c, memory)
        weights = alpha.transpose(0, 1)
        ctx.mark_non_differentiable(weights)
        return feeds[1:].transpose(0, 1), hs[T], weights

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, d_out: Tensor | None, d_hT: Tensor | None, _d_alpha):
        hs, feeds, rz, n, ghn, q2, keys2, alpha, context, w_feed, w_hh, w_q, v, w_c, memory = ctx.saved_tensors
        v2 = v * 2
        T, B, H = n.shape
        w_ch, w_cc = w_c[:, :H], w_c[:, H:]
        d_out = torch.zeros_like(feeds[1:]) if d_out is None else d_out.transpose(0, 1)    # (T, B, E)
        dh = torch.zeros_like(hs[0]) if d_hT is None else d_hT.clone()                    # (B, H)
        da = torch.zeros_like(feeds[0])                                                    # (B, E)
        d_gi, d_gh = n.new_empty(T, B, 3 * H), n.new_empty(T, B, 3 * H)
        d_pre, d_q = torch.empty_like(feeds[1:]), n.new_empty(T, B, w_q.size(0))
        d_scores, d_context = torch.empty_like(alpha), torch.empty_like(context)
        d_keys, energy = torch.zeros_like(keys2), torch.empty_like(keys2)                 # (B, S, A)
        d_v = torch.zeros_like(v)                                                          # (A,)
        for t in range(T - 1, -1, -1):
            # a_t = tanh(W_c [h_t; c_t])
            d_pre[t] = tanh_backward(d_out[t] + da, feeds[t + 1])                          # (B, E)
            dh.addmm_(d_pre[t], w_ch)
            torch.mm(d_pre[t], w_cc, out=d_context[t])                                     # (B, M)
            # c_t = α M, α = softmax(2 v · σ(2 K + 2 W_q h_t)); d_z is the gradient of the sigmoid's input
            d_alpha = torch.bmm(memory, d_context[t][:, :, None]).squeeze(2)              # (B, S)
            a = alpha[t]
            torch.mul(a, d_alpha - (a * d_alpha).sum(1, keepdim=True), out=d_scores[t])
            torch.add(keys2, q2[t][:, None], out=energy).sigmoid_()                       # (B, S, A), again
            d_v.addmv_(energy.view(-1, energy.size(2)).T, d_scores[t].view(-1), alpha=2)
            d_z = sigmoid_backward(d_scores[t][:, :, None] * v2, energy)                  # (B, S, A)
            d_keys += d_z
            torch.sum(d_z, dim=1, out=d_q[t]).mul_(2)                                     # (B, A): d(W_q h_t)
            dh.addmm_(d_q[t], w_q)
            # the GRU step, then its input a_{t-1} through W_f
            dh = _gru_step_backward(dh, hs[t], rz[t], n[t], ghn[t], w_hh, d_gi[t], d_gh[t])
            da = d_gi[t] @ w_feed                                                          # (B, E)
        # every weight gradient: one product over all T*B rows
        d_w_c = _rows(d_pre).T @ torch.cat([_rows(hs[1:]), _rows(context)], dim=1)        # (E, H + M)
        d_memory = torch.bmm(alpha.permute(1, 2, 0), d_context.transpose(0, 1))           # (B, S, M)
        return (d_gi.transpose(0, 1), da, dh, _rows(d_gi).T @ _rows(feeds[:-1]), _rows(d_gh).T @ _rows(hs[:-1]),
                _rows(d_gh).sum(0), _rows(d_q).T @ _rows(hs[1:]), d_v.view_as(v), d_w_c, d_keys.mul_(2), d_memory, None)


def gru_layers(rnn: torch.nn.GRU, x: Tensor, mask: Tensor | None, hx: Tensor | None) -> tuple[Tensor, Tensor]:
    """`rnn` (a batch-first torch GRU, its own weights) over padded x (B, S, I) with `GRUSequence`.

    The reverse direction reads each sequence backwards from its own last real token, as a packed sequence
    does. Returns outputs (B, S, D*H), zero at padding, and final states (L*D, B, H) in torch's layout.
    """
    B, S, _ = x.shape
    D, H = 1 + rnn.bidirectional, rnn.hidden_size
    mask = x.new_ones(B, S, dtype=torch.bool) if mask is None else mask
    steps = torch.arange(S, device=x.device)[None, :]
    lengths = mask.sum(1, keepdim=True)                                                # (B, 1)
    reverse = torch.where(steps < lengths, lengths - 1 - steps, steps)[..., None]      # (B, S, 1)
    flip = lambda y: y.gather(1, reverse.expand_as(y))                                 # noqa: E731
    states = []
    for layer in range(rnn.num_layers):
        outputs = []
        for d in range(D):
            name = f"_l{layer}" + ("_reverse" if d else "")
            w_ih, w_hh, b_ih, b_hh = (getattr(rnn, k + name) for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            h0 = x.new_zeros(B, H) if hx is None else hx[layer * D + d]
            out, h = GRUSequence.apply(torch.nn.functional.linear(flip(x) if d else x, w_ih, b_ih), h0, w_hh,
                                       b_hh, mask)
            outputs.append(flip(out) if d else out)
            states.append(h)
        x = torch.cat(outputs, dim=-1) if D > 1 else outputs[0]                        # (B, S, D*H)
        if layer < rnn.num_layers - 1:
            x = torch.nn.functional.dropout(x, rnn.dropout, rnn.training)
    return x, torch.stack(states)
