"""Gradient flow through time in the cells (nmt/gradients.py): the course's claims, with real numbers."""
from __future__ import annotations

import pytest
import torch

from nmt import gradients as gf


def test_vanilla_rnn_gradient_vanishes_geometrically():
    norms = gf.flow(gf.FlowConfig(cell="rnn", length=100))
    assert norms[-51] / norms[-1] < 1e-8                      # 50 steps back: almost nothing arrives
    near = (norms[-21] / norms[-1]) ** (1 / 20)              # per-step factor over the last 20 steps
    far = (norms[-41] / norms[-21]) ** (1 / 20)              # ... and over the 20 before
    assert near < 0.8 and far < 0.8
    assert abs(near - far) < 0.15                             # a roughly constant factor: geometric decay


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_gated_cells_keep_the_gradient_far_longer(cell):
    rnn = gf.flow(gf.FlowConfig(cell="rnn", length=100))
    gated = gf.flow(gf.FlowConfig(cell=cell, length=100))
    assert gated[-51] / gated[-1] > 1e4 * (rnn[-51] / rnn[-1])
    assert gf.decay_rate(gated) > gf.decay_rate(rnn) + 0.1


def test_forget_gate_bias_is_what_keeps_lstm_memory():
    remember = gf.flow(gf.FlowConfig(cell="lstm", length=60, gate_bias=3.0))
    forget = gf.flow(gf.FlowConfig(cell="lstm", length=60, gate_bias=-3.0))
    assert remember[-41] / remember[-1] > 1e6 * (forget[-41] / forget[-1])


def test_spectral_radius_above_one_explodes_below_one_vanishes():
    common = dict(cell="rnn", length=40, zero_bias=True, input_scale=1e-3)
    exploding = gf.flow(gf.FlowConfig(radius=1.3, **common))
    vanishing = gf.flow(gf.FlowConfig(radius=0.8, **common))
    assert exploding[0] > 100 * exploding[-1]
    assert gf.decay_rate(exploding) > 1.05
    assert vanishing[0] < 1e-2 * vanishing[-1]
    assert gf.decay_rate(vanishing) < 0.9


def test_radius_rescaling_is_exact():
    cell = gf.build_cell(gf.FlowConfig(cell="rnn", hidden=32, radius=1.7))
    assert gf.spectral_radius(cell.weight_hh.detach()) == pytest.approx(1.7, rel=1e-5)


def test_clipping_bounds_the_update_of_an_exploding_rnn():
    before, after = gf.clipped_update_norm(1e6, 1.0)
    assert before == pytest.approx(1e6) and after == pytest.approx(1.0, rel=1e-5)
    config = gf.FlowConfig(cell="rnn", length=40, radius=1.5, zero_bias=True, input_scale=1e-3)
    cell = gf.build_cell(config)
    inputs = torch.randn(4, 40, config.input_size) * 1e-3
    state = torch.zeros(4, config.hidden)
    for t in range(40):
        state = cell(inputs[:, t], state)
    loss = (state.sum() * 1e3) ** 2
    loss.backward()
    raw = torch.sqrt(sum(p.grad.pow(2).sum() for p in cell.parameters()))
    assert raw > 10
    old = [p.detach().clone() for p in cell.parameters()]
    torch.nn.utils.clip_grad_norm_(cell.parameters(), 1.0)
    torch.optim.SGD(cell.parameters(), lr=0.1).step()
    step = torch.sqrt(sum((p.detach() - o).pow(2).sum() for p, o in zip(cell.parameters(), old)))
    assert step <= 0.1 * 1.0 + 1e-6


def test_unknown_cell_is_an_error():
    with pytest.raises(ValueError, match="unknown cell"):
        gf.build_cell(gf.FlowConfig(cell="transformer"))


def test_flow_through_the_first_layer_of_a_trained_character_model(charlm_model):
    config = gf.FlowConfig(length=20)
    cell, inputs, config = gf.cell_from_charlm(str(charlm_model.checkpoint), config, text="to be or not to be")
    assert config.cell == "lstm" and inputs.shape == (config.batch, 20, config.input_size)
    norms = gf.gradient_norms(cell, config, inputs)
    assert norms.shape == (20,) and bool((norms >= 0).all())
