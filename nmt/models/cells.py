"""Recurrent cells written from their equations, and runners over time.

Notation follows the course: a^t is the hidden state ("activation") at step t, x^t the input, c^t the LSTM memory
cell. Weights are stored exactly as torch stores them (`weight_ih_l0`, `weight_hh_l0_reverse`, ...; gates stacked
in torch's order), so a `ScratchRNN` and a `torch.nn.GRU` of the same shape share one state dict: a model trained
with `impl="fused"` can be checked step by step with `impl="scratch"`, and vice versa.

Shapes: B batch, S steps, I input size, H hidden size, L layers, D directions (1 or 2).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

GATES = {"rnn": 1, "lstm": 4, "gru": 3}
TANH_THROUGH_SIGMOID = 4096   # tensors this large or larger take `tanh`'s sigmoid form (measured crossover)


def tanh(x: Tensor, threshold: int = TANH_THROUGH_SIGMOID) -> Tensor:
    """tanh(x), through the sigmoid when no gradient is recorded: tanh(x) = 2 sigmoid(2x) - 1 (the two differ by
    float32 rounding, under 2e-7). torch's CPU tanh costs several times its sigmoid on AVX2 (torch 2.13), and the
    recurrent steps of inference spend much of their elementwise time in it: on 65,536 values the four calls of this
    form take a fifth of the one (`python bench/int8_kernels.py`). Below TANH_THROUGH_SIGMOID values the four calls
    cost more than the one (one stream's sampling step: 512 values)."""
    if (torch.is_grad_enabled() and x.requires_grad) or x.numel() < threshold:     # (an argument: TorchScript)
        return torch.tanh(x)
    return torch.mul(x, 2).sigmoid_().mul_(2).sub_(1)


NONLINEARITIES = {"tanh": tanh, "relu": torch.relu}


def rnn_cell(x: Tensor, a: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
             nonlinearity: str = "tanh") -> Tensor:
    """Vanilla (Elman) RNN step: a^t = g(W_aa a^{t-1} + W_ax x^t + b_a).

    W_ax is `w_ih` (H, I), W_aa is `w_hh` (H, H); torch splits b_a into two biases b_ih + b_hh.
    x: (B, I), a: (B, H) -> (B, H).
    """
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"unknown nonlinearity '{nonlinearity}' (expected tanh or relu)")
    return rnn_step(x @ w_ih.T + b_ih, a, w_hh, b_hh, nonlinearity)


def rnn_step(xg: Tensor, a: Tensor, w_hh: Tensor, b_hh: Tensor, nonlinearity: str = "tanh",
             hh: Tensor | None = None) -> Tensor:
    """`rnn_cell` with the input term xg = W_ax x^t + b_ih already computed (B, H), e.g. for all t at once.
    hh: the recurrent term W_aa a^{t-1} + b_hh (B, H) when computed elsewhere (int8 products), else None."""
    return NONLINEARITIES[nonlinearity](xg + (a @ w_hh.T + b_hh if hh is None else hh))


def lstm_cell(x: Tensor, state: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
              b_hh: Tensor) -> tuple[Tensor, Tensor]:
    """LSTM step (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000).

        Γ_i = σ(W_i [a^{t-1}, x^t] + b_i)        input (update) gate
        Γ_f = σ(W_f [a^{t-1}, x^t] + b_f)        forget gate
        c~  = tanh(W_c [a^{t-1}, x^t] + b_c)     candidate memory
        Γ_o = σ(W_o [a^{t-1}, x^t] + b_o)        output gate
        c^t = Γ_f * c^{t-1} + Γ_i * c~
        a^t = Γ_o * tanh(c^t)

    Gates are stacked in torch's order (i, f, c~, o) in `w_ih` (4H, I) and `w_hh` (4H, H).
    x: (B, I), state: ((B, H), (B, H)) -> (a^t, c^t), each (B, H).
    """
    return lstm_step(x @ w_ih.T + b_ih, state, w_hh, b_hh)


def lstm_step(xg: Tensor, state: tuple[Tensor, Tensor], w_hh: Tensor, b_hh: Tensor,
              hh: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """`lstm_cell` with the input term xg = W_x x^t + b_ih (B, 4H) already computed; hh as in `rnn_step`."""
    a, c = state
    return lstm_update(xg + (a @ w_hh.T + b_hh if hh is None else hh), c)          # gates (B, 4H)


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """The LSTM's gating from pre-activations (B, 4H), torch's order (i, f, c~, o), and c^{t-1} -> (a^t, c^t)."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * tanh(g)
    return torch.sigmoid(o) * tanh(c), c


def double_candidate(w: Tensor, hidden_size: int) -> Tensor:
    """An LSTM weight or bias (4H, ...) in torch's gate order (i, f, g, o), the candidate's rows doubled (a copy):
    pre-activations computed with it give 2 g, so one sigmoid over all four gates yields sigmoid(2 g), and
    tanh(g) = 2 sigmoid(2 g) - 1 (`lstm_update_doubled`). Doubling an int8 row doubles its scale exactly."""
    w = w.detach().float().clone()
    w[2 * hidden_size: 3 * hidden_size] *= 2
    return w


def lstm_update_doubled(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """`lstm_update` for pre-activations (B, 4H) whose candidate quarter is doubled (`double_candidate`), in
    about half the elementwise calls (inference only: it overwrites `gates`): s = sigmoid(gates) holds i, f, o and
    sigmoid(2 g), so i * tanh(g) = 2 i sigmoid(2 g) - i."""
    i, f, g2, o = gates.sigmoid_().chunk(4, dim=-1)                                 # (B, H) each
    c = torch.addcmul(torch.addcmul(-i, i, g2, value=2), f, c)                      # c^t = f c + i tanh(g)
    return o * tanh(c), c                                                           # a^t = o tanh(c^t)


def gru_cell(x: Tensor, a: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
             reset_after: bool = True) -> Tensor:
    """GRU step (Cho et al. 2014).

        Γ_r = σ(W_r x^t + b_ir + U_r a^{t-1} + b_hr)            reset (relevance) gate
        Γ_z = σ(W_z x^t + b_iz + U_z a^{t-1} + b_hz)            update gate
        c~  = tanh(W_n x^t + b_in + Γ_r * (U_n a^{t-1} + b_hn))  candidate, reset_after=True (torch, cuDNN)
        c~  = tanh(W_n x^t + b_in + U_n (Γ_r * a^{t-1}) + b_hn)  candidate, reset_after=False (the paper, many texts)
        a^t = (1 - Γ_z) * c~ + Γ_z * a^{t-1}

    The two candidates differ in where the reset gate acts: the paper resets the previous state before the matrix
    product; torch (and cuDNN) applies it after, which lets U_n a^{t-1} be computed in the same matrix product as
    the gates. Both learn equally well; only reset_after=True matches torch's weights exactly. Note that torch's
    Γ_z weights the *old* state; the course writes Γ_u = 1 - Γ_z weighting the candidate. Same cell.
    Gates are stacked in torch's order (r, z, n). x: (B, I), a: (B, H) -> (B, H).
    """
    return gru_step(x @ w_ih.T + b_ih, a, w_hh, b_hh, reset_after)


def gru_step(xg: Tensor, a: Tensor, w_hh: Tensor, b_hh: Tensor, reset_after: bool = True,
             hh: Tensor | None = None) -> Tensor:
    """`gru_cell` with the input term xg = W x^t + b_ih (B, 3H) already computed; hh: the recurrent term
    U a^{t-1} + b_hh (B, 3H) when computed elsewhere (int8 products; reset_after only), else None."""
    xr, xz, xn = xg.chunk(3, dim=-1)
    if reset_after:
        # the same equations in fewer kernels (this runs once per step inside training loops): both gates in one
        # sigmoid, r * hn fused into the add, and (1 - z) * n + z * a as one lerp
        hg = a @ w_hh.T + b_hh if hh is None else hh                                    # (B, 3H)
        H = a.size(-1)
        r, z = torch.sigmoid(xg[..., : 2 * H] + hg[..., : 2 * H]).chunk(2, dim=-1)
        n = tanh(torch.addcmul(xn, r, hg[..., 2 * H:]))
        return torch.lerp(n, a, z)
    else:
        if hh is not None:
            raise ValueError("a precomputed recurrent term needs reset_after=True (the reset acts before U_n)")
        u_r, u_z, u_n = w_hh.chunk(3, dim=0)
        b_r, b_z, b_n = b_hh.chunk(3, dim=0)
        r = torch.sigmoid(xr + a @ u_r.T + b_r)
        z = torch.sigmoid(xz + a @ u_z.T + b_z)
        n = tanh(xn + (r * a) @ u_n.T + b_n)
    return (1 - z) * n + z * a


class _Cell(nn.Module):
    """One cell with its own parameters, torch-initialised (uniform in ±1/sqrt(H))."""

    def __init__(self, kind: str, input_size: int, hidden_size: int):
        super().__init__()
        g = GATES[kind]
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(g * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(g * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(g * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(g * hidden_size))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        return self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh


class RNNCell(_Cell):
    """Elman cell a^t = tanh(W_aa a^{t-1} + W_ax x^t + b_a); see `rnn_cell`."""

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh"):
        super().__init__("rnn", input_size, hidden_size)
        self.nonlinearity = nonlinearity

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        return rnn_cell(x, a, *self.weights(), nonlinearity=self.nonlinearity)


class LSTMCell(_Cell):
    """LSTM cell with forget, input and output gates; see `lstm_cell`."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__("lstm", input_size, hidden_size)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        return lstm_cell(x, state, *self.weights())


class GRUCell(_Cell):
    """GRU cell with reset and update gates; see `gru_cell` for the two reset placements."""

    def __init__(self, input_size: int, hidden_size: int, reset_after: bool = True):
        super().__init__("gru", input_size, hidden_size)
        self.reset_after = reset_after

    def forward(self, x: Tensor, a: Tensor) -> Tensor:
        return gru_cell(x, a, *self.weights(), reset_after=self.reset_after)


def run_cell(step, x: Tensor, state, mask: Tensor | None = None, reverse: bool = False):
    """Unroll `step(x_t, state) -> state` over time, as the course draws the unrolled network.

    x: (B, S, I) inputs (or precomputed input terms); mask: (B, S) bool, True = real token (padding at the end); state: (B, H) or a tuple of them.
    Where the mask is False the state is carried unchanged and the output is zero, so a sequence inside a padded
    batch gets exactly the outputs it gets alone, in both directions.
    Returns outputs (B, S, H) and the final state.
    """
    steps = range(x.size(1) - 1, -1, -1) if reverse else range(x.size(1))
    outputs = [None] * x.size(1)
    for t in steps:
        new = step(x[:, t], state)
        if mask is not None:
            keep = mask[:, t, None]                                      # (B, 1)
            new = _where(keep, new, state)
        state = new
        a = state[0] if isinstance(state, tuple) else state
        outputs[t] = a if mask is None else a * keep
    return torch.stack(outputs, dim=1), state


def _where(keep: Tensor, new, old):
    if isinstance(new, tuple):
        return tuple(torch.where(keep, n, o) for n, o in zip(new, old))
    return torch.where(keep, new, old)


class ScratchRNN(nn.Module):
    """Multi-layer, optionally bidirectional RNN/LSTM/GRU built from the cells above.

    Same constructor arguments, parameter names, input and output shapes as torch.nn.RNN/LSTM/GRU with
    batch_first=True, plus a padding mask, so it is a drop-in, slower, readable replacement.
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                 bidirectional: bool = False, dropout: float = 0.0, reset_after: bool = True,
                 nonlinearity: str = "tanh"):
        super().__init__()
        if cell not in GATES:
            raise ValueError(f"unknown cell '{cell}' (expected rnn, lstm or gru)")
        if nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown nonlinearity '{nonlinearity}' (expected tanh or relu)")
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        self.dropout, self.reset_after, self.nonlinearity = dropout, reset_after, nonlinearity
        g = GATES[cell]
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size * self.directions
            for suffix in ["", "_reverse"][: self.directions]:
                name = f"l{layer}{suffix}"
                self.register_parameter(f"weight_ih_{name}", nn.Parameter(torch.empty(g * hidden_size, in_size)))
                self.register_parameter(f"weight_hh_{name}", nn.Parameter(torch.empty(g * hidden_size, hidden_size)))
                self.register_parameter(f"bias_ih_{name}", nn.Parameter(torch.empty(g * hidden_size)))
                self.register_parameter(f"bias_hh_{name}", nn.Parameter(torch.empty(g * hidden_size)))
        bound = 1 / math.sqrt(hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def weights(self, layer: int, reverse: bool = False) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(w_ih, w_hh, b_ih, b_hh) of one layer and direction, under torch's names."""
        name = f"l{layer}{'_reverse' if reverse else ''}"
        return tuple(getattr(self, f"{kind}_{name}") for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))

    def step(self, xg: Tensor, state, w_hh: Tensor, b_hh: Tensor):
        """One step of this RNN's cell from a precomputed input term xg (B, G*H)."""
        if self.cell == "lstm":
            return lstm_step(xg, state, w_hh, b_hh)
        if self.cell == "gru":
            return gru_step(xg, state, w_hh, b_hh, self.reset_after)
        return rnn_step(xg, state, w_hh, b_hh, self.nonlinearity)

    def forward(self, x: Tensor, hx=None, mask: Tensor | None = None):
        """x: (B, S, I); hx: (L*D, B, H) (a pair for LSTM) or None; mask: (B, S) bool or None.

        Returns output (B, S, D*H) of the last layer and h_n (L*D, B, H) (for LSTM a pair (h_n, c_n)).
        """
        B = x.size(0)
        if hx is None:
            zeros = x.new_zeros(self.num_layers * self.directions, B, self.hidden_size)
            hx = (zeros, zeros) if self.cell == "lstm" else zeros
        finals = []
        for layer in range(self.num_layers):
            outs = []
            for d in range(self.directions):
                k = layer * self.directions + d
                state = (hx[0][k], hx[1][k]) if self.cell == "lstm" else hx[k]
                w_ih, w_hh, b_ih, b_hh = self.weights(layer, reverse=d == 1)
                xg = x @ w_ih.T + b_ih                                   # (B, S, G*H): all steps, one product
                out, state = run_cell(lambda g, s: self.step(g, s, w_hh, b_hh), xg, state, mask, reverse=d == 1)
                outs.append(out)
                finals.append(state)
            x = torch.cat(outs, dim=-1)                                  # (B, S, D*H)
            if self.dropout and self.training and layer < self.num_layers - 1:
                x = nn.functional.dropout(x, self.dropout)
        if self.cell == "lstm":
            return x, (torch.stack([h for h, _ in finals]), torch.stack([c for _, c in finals]))
        return x, torch.stack(finals)


def linear_rnn_bptt(W_aa: Tensor, W_ax: Tensor, W_ya: Tensor, xs: Tensor, targets: Tensor,
                    a0: Tensor | None = None) -> dict[str, Tensor]:
    """Backpropagation through time, worked out by hand, for the linear RNN

        a^t = W_aa a^{t-1} + W_ax x^t,   y^t = W_ya a^t,   L = sum_t 1/2 ||y^t - target^t||^2.

    The backward recursion runs from the last step to the first:

        e^t      = y^t - target^t                         (dL/dy^t)
        dL/da^t  = W_ya^T e^t + W_aa^T dL/da^{t+1}        (with dL/da^{T+1} = 0)
        dL/dW_ya = sum_t e^t (a^t)^T
        dL/dW_aa = sum_t dL/da^t (a^{t-1})^T
        dL/dW_ax = sum_t dL/da^t (x^t)^T

    One forward and one backward sweep: O(T) time, and O(T) memory for the stored a^t, which is why long
    sequences are trained with truncated BPTT. The factor W_aa^T applied once per step is why gradients
    vanish (spectral radius < 1) or explode (> 1) over long distances.

    xs: (T, I), targets: (T, O), a0: (H,) or None. Returns a dict with 'dA' (T, H) holding dL/da^t for t = 1..T,
    'W_aa', 'W_ax', 'W_ya' (gradients of the same shapes as the weights) and 'loss'.
    """
    T, H = xs.size(0), W_aa.size(0)
    a_prev = W_aa.new_zeros(H) if a0 is None else a0
    states = [a_prev]
    for t in range(T):
        states.append(W_aa @ states[-1] + W_ax @ xs[t])
    a = torch.stack(states[1:])                                          # (T, H)
    errors = a @ W_ya.T - targets                                        # (T, O)
    dA = torch.zeros_like(a)
    carry = W_aa.new_zeros(H)
    for t in range(T - 1, -1, -1):
        carry = W_ya.T @ errors[t] + W_aa.T @ carry
        dA[t] = carry
    previous = torch.stack(states[:-1])                                  # (T, H): a^{t-1}
    return {
        "loss": 0.5 * (errors ** 2).sum(),
        "dA": dA,
        "W_ya": errors.T @ a,
        "W_aa": dA.T @ previous,
        "W_ax": dA.T @ xs,
    }
