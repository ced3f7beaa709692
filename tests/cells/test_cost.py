"""nmt/cost.py: the exponent fit, the count of saved activations (bytes are deterministic, timings are not, so no
test compares timings), truncated BPTT's flat memory, and the memory estimate that guards a run."""
from __future__ import annotations

import math

import pytest
import torch

from nmt import cost
from nmt.config import ConfigError, CostConfig, make


@pytest.mark.parametrize("k, c", [(1.0, 3.0), (2.0, 2.0), (0.0, 5.0), (0.5, 0.01)])
def test_fit_recovers_a_known_exponent(k, c):
    lengths = [25, 50, 100, 200, 400, 800]
    values = [c * t ** k for t in lengths]
    assert cost.fit_exponent(lengths, values) == pytest.approx(k, abs=1e-9)
    assert cost.fit_power(lengths, values)[1] == pytest.approx(c, rel=1e-9)


def test_fit_needs_two_lengths_and_positive_values():
    with pytest.raises(ValueError, match="two or more"):
        cost.fit_exponent([10], [1.0])
    with pytest.raises(ValueError, match="two or more"):
        cost.fit_exponent([10, 10], [1.0, 2.0])
    with pytest.raises(ValueError, match="positive"):
        cost.fit_exponent([10, 20], [1.0, 0.0])


def _bytes(kind, impl, t, chunk=0, hidden=16, batch=2):
    torch.manual_seed(0)
    layer = cost.build_layer(kind, hidden, impl)
    return cost.saved_bytes(layer, torch.randn(batch, t, hidden), chunk)


@pytest.mark.parametrize("impl", ["fused", "torch", "scratch"])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_backward_memory_of_a_cell_doubles_with_t(cell, impl):
    ratio = _bytes(cell, impl, 128) / _bytes(cell, impl, 64)
    assert 1.8 < ratio < 2.1, ratio


def test_saved_tensors_counts_each_storage_once_and_skips_parameters():
    w = torch.nn.Parameter(torch.randn(4, 4))
    x = torch.randn(3, 4)
    with cost.SavedTensors(exclude=[w]) as saved:
        y = x @ w                                    # saves x (for dW) and w (excluded)
        (y * y).sum()                                # saves y twice: one storage
    assert saved.bytes == x.numel() * 4 + y.numel() * 4


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_truncated_bptt_keeps_memory_flat(cell):
    flat = _bytes(cell, "fused", 64, chunk=16)
    assert flat == _bytes(cell, "fused", 128, chunk=16)
    assert flat == pytest.approx(_bytes(cell, "fused", 16), rel=0.05)      # one chunk's graph at a time


def test_attention_memory_grows_faster_than_t_and_conv_like_t():
    assert 1.8 < _bytes("conv", "fused", 128) / _bytes("conv", "fused", 64) < 2.1
    assert _bytes("attention", "fused", 128) / _bytes("attention", "fused", 64) > 2.2    # the (T, T) weights


@pytest.mark.parametrize("kind, impl", [(c, i) for c in ("rnn", "lstm", "gru") for i in ("fused", "torch", "scratch")]
                         + [("conv", "fused"), ("attention", "fused")])
def test_estimate_is_close_to_the_count(kind, impl):
    estimate = cost.estimate_bytes(kind, impl, 2, 64, 16)
    assert 0.8 < estimate / _bytes(kind, impl, 64) < 2.0


def test_memory_check_refuses_with_the_estimate():
    config = make(CostConfig, cells=("lstm",), lengths=(10, 100_000), hidden=1024, batch=64)
    with pytest.raises(ValueError, match=r"lstm at T=100000.*MiB of activations"):
        cost.check_memory(config, available=2**30)
    with pytest.raises(ValueError, match="--max-memory 1 MiB"):
        cost.check_memory(make(CostConfig, cells=("gru",), lengths=(10, 1000), max_memory_mb=1.0))
    cost.check_memory(make(CostConfig, cells=("gru",), lengths=(10, 20), hidden=8, batch=2), available=2**30)


def test_config_rejects_bad_lengths_and_cells():
    cases = (((8, 4), "increasing"), ((0, 4), "positive"), ((4,), "two or more"), ((4, 4), "increasing"))
    for lengths, needle in cases:
        with pytest.raises(ConfigError, match=needle):
            make(CostConfig, lengths=lengths)
    with pytest.raises(ConfigError, match="unknown cell 'cnn'"):
        make(CostConfig, cells=("rnn", "cnn"))


def test_measure_rows_and_fits():
    config = make(CostConfig, cells=("rnn", "conv"), lengths=(4, 8, 16), hidden=8, batch=2, repeats=1, tbptt=4)
    result = cost.measure(config)
    assert [r["layer"] for r in result["rows"]] == ["rnn"] * 3 + ["conv"] * 3 + ["gru+tbptt4"] * 3
    assert [r["critical_path"] for r in result["rows"]] == [4, 8, 16, 1, 1, 1, 4, 8, 16]
    fits = result["fits"]
    assert fits["rnn"]["critical_path"] == pytest.approx(1) and fits["conv"]["critical_path"] == pytest.approx(0)
    assert fits["rnn"]["memory"] == pytest.approx(1, abs=0.1) and fits["gru+tbptt4"]["memory"] == pytest.approx(0)
    assert all(math.isfinite(f["train"]) and r["ms_per_position"] > 0 for f, r in zip(fits.values(), result["rows"]))
