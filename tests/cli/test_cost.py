"""nmt/cli/cost.py: `cost` through the command line, on tiny sizes (timings are never compared: they are noisy)."""
from __future__ import annotations

import json

from tests.cli.test_pictures import png_size

TINY = ("--hidden", 8, "--batch", 2, "--lengths", "4,8,16", "--repeats", 1, "--tbptt", 4)


def test_cost_table(cli):
    result = cli.run("cost", "--cells", "rnn,lstm,gru", *TINY)
    assert result.exit_code == 0, result.output
    for needle in ("cost against T", "fitted exponent", "gru+tbptt4", "saved_tensors_hooks", "critical path"):
        assert needle in result.stdout, result.stdout


def test_cost_json_and_plot(cli, tmp_path):
    result = cli.run("cost", "--cells", "gru,conv,attention", *TINY, "--json", "--plot", tmp_path / "cost.png")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["lengths"] == [4, 8, 16] and set(data["fits"]) == {"gru", "conv", "attention", "gru+tbptt4"}
    assert {r["layer"]: r["critical_path"] for r in data["rows"] if r["T"] == 16} == \
        {"gru": 16, "conv": 1, "attention": 1, "gru+tbptt4": 16}
    assert all(r["saved_bytes"] > 0 and r["train_ms"] > 0 for r in data["rows"])
    assert "saved_tensors_hooks" in data["memory_method"]
    assert png_size(tmp_path / "cost.png")[0] > 600


def test_cost_bad_input(cli, tmp_path):
    run = lambda *args: cli.run("cost", *args, "--hidden", 8, "--batch", 2)    # noqa: E731
    cli.one_line_error(run("--lengths", "16,8"), "increasing")
    cli.one_line_error(run("--lengths", "0,8"), "positive")
    cli.one_line_error(run("--lengths", "8"), "two or more lengths")
    cli.one_line_error(run("--lengths", "4,x"), "--lengths", "whole numbers")
    cli.one_line_error(run("--cells", "rnn,cnn", "--lengths", "4,8"), "unknown cell 'cnn'")
    cli.one_line_error(run("--impl", "fast", "--lengths", "4,8"), "impl")
    cli.one_line_error(run("--tbptt-cell", "conv", "--lengths", "4,8"), "tbptt_cell")
    cli.one_line_error(cli.run("cost", "--lengths", "100,1000000", "--hidden", 4096, "--batch", 512),
                       "T=1000000", "MiB", "half the available memory")
    cli.one_line_error(run("--lengths", "100,1000", "--max-memory", 0.01), "--max-memory", "MiB")
    cli.one_line_error(run("--lengths", "4,8", "--plot", tmp_path / "cost.jpg"), "PNG")
