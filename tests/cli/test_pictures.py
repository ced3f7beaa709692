"""nmt/cli/pictures.py: gradients, plot and train copy; and the PNG pictures they draw (nmt/plots.py)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch

from nmt import gradients as gf


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


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


# --- the commands -----------------------------------------------------------------------------------------------

def test_cli_gradients_compare_json_and_plot(cli, tmp_path):
    result = cli.run("gradients", "--compare", "--length", 30, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"rnn", "lstm", "gru"} and all(len(v["norms"]) == 30 for v in data.values())
    result = cli.run("gradients", "--cell", "gru", "--length", 30, "--plot", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert "per step" in result.stdout and png_size(tmp_path / "g.png")[0] > 0
    cli.one_line_error(cli.run("gradients", "--cell", "cnn"), "unknown cell")
    cli.one_line_error(cli.run("gradients", "--length", 1), "--length")
    cli.one_line_error(cli.run("gradients", "--radius", "nan"), "--radius")


def test_cli_gradients_of_a_trained_character_model(cli, charlm_model):
    result = cli.run("gradients", "--checkpoint", charlm_model.checkpoint, "--length", 20, "--json")
    assert result.exit_code == 0, result.output
    (curve,) = json.loads(result.stdout).values()
    assert len(curve["norms"]) == 20 and all(n >= 0 for n in curve["norms"])


def test_cli_plot_learning_curves(cli, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    rows = [{"type": "train", "step": s, "epoch": 0, "loss": 3.0 / s, "time": s} for s in range(1, 30)]
    rows += [{"type": "valid", "step": s, "epoch": 0, "valid_loss": 2.0 / s, "score": -2.0 / s,
              "best": -2.0 / s, "train_minutes": s / 10, "time": s} for s in (10, 20)]
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = cli.run("plot", run, "-o", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    assert "valid_loss" in result.stdout and png_size(tmp_path / "c.png")[0] > 500
    cli.one_line_error(cli.run("plot", tmp_path / "nothing"), "metrics.jsonl")


def test_cli_plot_of_a_real_run(cli, translate_model, tmp_path):
    result = cli.run("plot", translate_model.run, "-o", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    assert "bleu" in result.stdout and png_size(tmp_path / "curves.png")[0] > 500


def test_cli_copy_task_reports_a_table(cli):
    result = cli.run("train", "copy", "--cells", "rnn,lstm", "--lengths", 3, "--steps", 5, "--hidden", 8, "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["cell"] for r in rows] == ["rnn", "lstm"] and all(0 <= r["accuracy"] <= 1 for r in rows)
    cli.one_line_error(cli.run("train", "copy", "--lengths", "x"), "integers")
    cli.one_line_error(cli.run("train", "copy", "--lengths", 1), "lengths from 2")
