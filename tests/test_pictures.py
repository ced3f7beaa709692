"""Gradient flow through time (the course's claims, with real numbers), pictures, and their CLI commands."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from nmt import gradients as gf
from nmt.cli import app

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "checkpoints" / "multi30k-de-en.pt"
runner = CliRunner()


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


# --- the course's claims ----------------------------------------------------------------------------------------

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


# --- pictures ---------------------------------------------------------------------------------------------------

def test_flow_and_attention_pngs(tmp_path):
    from nmt.plots import plot_attention, plot_flow
    plot_flow({"rnn": gf.flow(gf.FlowConfig(length=20))}, tmp_path / "flow.png")
    w, h = png_size(tmp_path / "flow.png")
    assert 600 < w < 1000 and 400 < h < 700                 # 7 x 4.5 inches at 120 dpi, tight box
    weights = torch.softmax(torch.randn(3, 4), -1).numpy()
    plot_attention(weights, ["a", "b", "c", "d"], ["x", "y", "</s>"], tmp_path / "att.png")
    assert min(png_size(tmp_path / "att.png")) > 200


def test_plot_needs_png_name(tmp_path):
    from nmt.data import DataError
    from nmt.plots import plot_flow
    with pytest.raises(DataError, match="PNG"):
        plot_flow({"rnn": torch.ones(3)}, tmp_path / "flow.jpg")


# --- CLI --------------------------------------------------------------------------------------------------------

def test_cli_gradients_compare_json_and_plot(tmp_path):
    result = runner.invoke(app, ["gradients", "--compare", "--length", "30", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"rnn", "lstm", "gru"} and all(len(v["norms"]) == 30 for v in data.values())
    result = runner.invoke(app, ["gradients", "--cell", "gru", "--length", "30", "--plot", str(tmp_path / "g.png")])
    assert result.exit_code == 0, result.output
    assert "per step" in result.stdout and png_size(tmp_path / "g.png")[0] > 0
    bad = runner.invoke(app, ["gradients", "--cell", "cnn"])
    assert bad.exit_code == 1 and "unknown cell" in bad.output and "Traceback" not in bad.output


def test_cli_plot_learning_curves(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"type": "train", "step": s, "epoch": 0, "loss": 3.0 / s, "time": s} for s in range(1, 30)]
    rows += [{"type": "valid", "step": s, "epoch": 0, "valid_loss": 2.0 / s, "score": -2.0 / s,
              "best": -2.0 / s, "train_minutes": s / 10, "time": s} for s in (10, 20)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = runner.invoke(app, ["plot", str(run), "-o", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    assert "valid_loss" in result.stdout and png_size(tmp_path / "c.png")[0] > 500
    missing = runner.invoke(app, ["plot", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "metrics.jsonl" in missing.output


@pytest.mark.skipif(not SHIPPED.exists(), reason="shipped translation model absent")
@pytest.mark.parametrize("beam", [1, 3])
def test_attention_rows_sum_to_one_and_cli_draws_them(beam, tmp_path):
    from nmt.config import DecodeConfig
    from nmt.translation import Translator
    translator = Translator.load(SHIPPED)
    hyps = translator.translate_hyps(["Ein Mann fährt Fahrrad.", "", "Zwei Hunde."], DecodeConfig(beam=beam),
                                     keep_attention=True)
    assert hyps[1] == []
    for h in (hyps[0][0], hyps[2][0]):
        assert h.attention.shape[0] == len(h.tokens) + 1
        assert torch.allclose(h.attention.sum(-1), torch.ones(h.attention.shape[0]), atol=1e-4)
    result = runner.invoke(app, ["translate", "--beam", str(beam), "--show-attention", "--plot",
                                 str(tmp_path / "a.png"), "Ein Mann fährt Fahrrad."])
    assert result.exit_code == 0, result.output
    assert "▁Mann" in result.stdout and png_size(tmp_path / "a.png")[0] > 200


# --- the copy-memory task ---------------------------------------------------------------------------------------

def test_copy_task_batches_hide_the_symbol_at_the_start():
    from nmt.copytask import CopyConfig, make_batch
    config = CopyConfig(length=7, symbols=4, batch=32)
    x, y = make_batch(config, torch.Generator().manual_seed(0))
    assert x.shape == (32, 7) and torch.equal(x[:, 0], y + 1)
    assert bool((x[:, 1:] > 4).all())                        # noise never looks like a symbol


def test_copy_task_short_distance_is_learned_and_cli_reports_a_table():
    from nmt.copytask import CopyConfig, train_and_score
    result = train_and_score(CopyConfig(cell="gru", length=4, steps=150, hidden=32))
    assert result["accuracy"] > 0.9 > result["chance"]
    cli = runner.invoke(app, ["train", "copy", "--cells", "rnn,lstm", "--lengths", "3", "--steps", "5",
                              "--hidden", "8", "--json"])
    assert cli.exit_code == 0, cli.output
    assert [r["cell"] for r in json.loads(cli.stdout)] == ["rnn", "lstm"]
    bad = runner.invoke(app, ["train", "copy", "--lengths", "x"])
    assert bad.exit_code == 1 and "integers" in bad.output
