"""Gradient flow through time: how much of the last step's loss reaches each earlier hidden state.

Run a cell over x^1..x^T, take a loss L_T at the last step only, and measure ||dL_T / da^t|| for every t.
Backpropagation through time multiplies by the Jacobian da^{t+1}/da^t = diag(tanh'(.)) W_aa once per step back:
for the vanilla RNN the norm shrinks geometrically when the spectral radius of W_aa (times tanh' <= 1) is below 1
(vanishing gradients) and grows geometrically when it is above 1 and the units are not saturated (exploding
gradients). The LSTM's cell path c^t = f * c^{t-1} + i * c~ and the GRU's interpolation a^t = (1 - z) * n + z *
a^{t-1} are additive: with the forget (update) gate near 1 the gradient passes almost unchanged, step after step.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from nmt.models.cells import GRUCell, LSTMCell, RNNCell

CELLS = {"rnn": RNNCell, "lstm": LSTMCell, "gru": GRUCell}


@dataclass
class FlowConfig:
    cell: str = "rnn"             # rnn | lstm | gru
    length: int = 100             # T
    hidden: int = 64              # H
    input_size: int = 16
    batch: int = 16
    seed: int = 0
    radius: float = 0.0           # > 0: rescale each recurrent gate block to this spectral radius
    gate_bias: float = 1.0        # added to the LSTM forget-gate / GRU update-gate bias (the usual "remember" init)
    input_scale: float = 1.0      # size of the random inputs (small inputs keep tanh in its linear regime)
    zero_bias: bool = False       # zero all biases (with radius > 1 and small inputs: the textbook explosion)


def build_cell(config: FlowConfig):
    """A fresh cell, torch-initialised, then adjusted as the config says."""
    if config.cell not in CELLS:
        raise ValueError(f"unknown cell '{config.cell}' (expected rnn, lstm or gru)")
    torch.manual_seed(config.seed)
    cell = CELLS[config.cell](config.input_size, config.hidden)
    h = config.hidden
    with torch.no_grad():
        if config.zero_bias:
            cell.bias_ih.zero_()
            cell.bias_hh.zero_()
        if config.radius > 0:
            for block in cell.weight_hh.split(h, dim=0):                       # one (H, H) block per gate
                block.mul_(config.radius / spectral_radius(block))
        if config.cell in ("lstm", "gru"):      # torch gate order: LSTM (i, f, g, o), GRU (r, z, n)
            cell.bias_ih[h:2 * h] += config.gate_bias
    return cell


def spectral_radius(matrix: Tensor) -> float:
    """Largest eigenvalue modulus of a square matrix."""
    return float(torch.linalg.eigvals(matrix.double()).abs().max())


def gradient_norms(cell, config: FlowConfig, inputs: Tensor | None = None) -> Tensor:
    """||dL_T / da^t|| for t = 1..T, averaged over the batch -> (T,).

    L_T = a fixed random readout of the last hidden state, summed over the batch; inputs (B, T, I) are random
    unless given.
    """
    gen = torch.Generator().manual_seed(config.seed + 1)
    if inputs is None:
        inputs = torch.randn(config.batch, config.length, config.input_size, generator=gen) * config.input_scale
    b = inputs.size(0)
    zeros = inputs.new_zeros(b, config.hidden)
    state = (zeros, zeros) if config.cell == "lstm" else zeros
    hidden = []
    for t in range(inputs.size(1)):
        state = cell(inputs[:, t], state)
        hidden.append(state[0] if isinstance(state, tuple) else state)             # a^t (B, H)
    readout = torch.randn(config.hidden, generator=gen)
    loss = (hidden[-1] @ readout).sum()
    grads = torch.autograd.grad(loss, hidden)
    return torch.stack([g.norm(dim=-1).mean() for g in grads]).detach()


def flow(config: FlowConfig) -> Tensor:
    """Build a fresh cell from the config and measure its gradient norms -> (T,)."""
    return gradient_norms(build_cell(config), config)


def decay_rate(norms: Tensor, span: int = 20) -> float:
    """Geometric factor per step back, fitted over the `span` steps before the last: (norm ratio)^(1/span)."""
    span = min(span, norms.numel() - 1)
    last, earlier = float(norms[-1]), float(norms[-1 - span])
    if last == 0:
        return 0.0
    return (max(earlier, 1e-300) / last) ** (1.0 / span)


def clipped_update_norm(grad_norm: float, max_norm: float, size: int = 1000) -> tuple[float, float]:
    """Gradient-norm clipping on a gradient of a given norm: (norm before, norm after clip_grad_norm_)."""
    param = torch.nn.Parameter(torch.zeros(size))
    direction = torch.randn(size)
    param.grad = direction / direction.norm() * grad_norm
    before = float(torch.nn.utils.clip_grad_norm_([param], max_norm))
    return before, float(param.grad.norm())


def cell_from_charlm(path: str, config: FlowConfig, text: str | None = None):
    """The first recurrent layer of a trained character model, and inputs: the embedded characters of `text`
    (or random characters) -> (cell, inputs (B, T, E), config with the model's sizes)."""
    from dataclasses import replace

    from nmt.tasks.charlm import TextGenerator
    generator = TextGenerator.load(path)
    model, tokenizer = generator.model, generator.tokenizer
    model = model.members[0] if hasattr(model, "members") else model          # an ensemble: its first member
    c = model.config
    config = replace(config, cell=c.rnn.cell, hidden=c.rnn.hidden_size, input_size=c.embed_size)
    cell = CELLS[c.rnn.cell](c.embed_size, c.rnn.hidden_size)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(model.rnn.weight(f"{name}_l0"))
    gen = torch.Generator().manual_seed(config.seed)
    if text:
        ids = torch.tensor(tokenizer.encode(text))
        ids = ids.repeat(config.length // max(1, ids.numel()) + 1)     # a short text is read again and again
        starts = torch.randint(0, max(1, ids.numel() - config.length), (config.batch,), generator=gen)
        chars = torch.stack([ids[s:s + config.length] for s in starts.tolist()])
    else:
        chars = torch.randint(4, tokenizer.vocab_size, (config.batch, config.length), generator=gen)
    with torch.no_grad():
        inputs = model.embed(chars)
    return cell, inputs, config
