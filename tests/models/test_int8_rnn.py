"""Int8RNN (nmt/models/int8_rnn.py): torch's LSTM/GRU on int8 products, padding handled as a packed sequence."""
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt import quantize
from nmt.models.int8_rnn import Int8RNN


def rounded(rnn: nn.Module) -> nn.Module:
    """The module with its matrices rounded to int8 and back, as an int8 checkpoint loads it."""
    state = quantize.dequantize_state(quantize.quantize_state(rnn.state_dict()))
    rnn.load_state_dict(state)
    return rnn


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_int8_rnn_matches_torch_on_a_padded_batch(kind, bidirectional):
    torch.manual_seed(0)
    rnn = rounded(kind(24, 64, num_layers=2, bidirectional=bidirectional, batch_first=True)).eval()
    x, lengths = torch.randn(9, 7, 24), torch.tensor([7, 3, 1, 5, 7, 2, 6, 4, 7])   # 9 rows: the int8 loop
    mask = torch.arange(7)[None] < lengths[:, None]
    with torch.no_grad():
        ref, ref_state = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=7)
        out, state = Int8RNN(rnn)(x, mask=mask)
    D = 2 if bidirectional else 1
    assert out.shape == (9, 7, D * 64) and (out[~mask] == 0).all()
    assert float((out - ref).norm() / ref.norm()) < 0.03                 # int8 activations: about 1% apart
    h, ref_h = (state[0], ref_state[0]) if kind is nn.LSTM else (state, ref_state)
    assert h.shape == (2 * D, 9, 64) and float((h - ref_h).norm() / ref_h.norm()) < 0.03


def test_int8_rnn_without_padding_and_with_an_initial_state():
    torch.manual_seed(1)
    rnn = rounded(nn.LSTM(16, 32, batch_first=True)).eval()
    x, h0 = torch.randn(8, 5, 16), (torch.randn(1, 8, 32), torch.randn(1, 8, 32))
    with torch.no_grad():
        (ref, _), (out, _) = rnn(x, h0), Int8RNN(rnn)(x, h0)
    assert float((out - ref).norm() / ref.norm()) < 0.03
    with pytest.raises(ValueError, match="batch_first"):
        Int8RNN(nn.LSTM(16, 32))


def test_small_batches_run_on_the_float_module():
    """Below FLOAT_BELOW rows the fused float LSTM (same int8-rounded weights) is faster than the step loop."""
    from nmt.models.int8_rnn import FLOAT_BELOW
    torch.manual_seed(2)
    rnn = rounded(nn.LSTM(16, 32, batch_first=True, bidirectional=True)).eval()
    x, lengths = torch.randn(FLOAT_BELOW - 1, 6, 16), torch.arange(FLOAT_BELOW - 1) % 6 + 1
    mask = torch.arange(6)[None] < lengths[:, None]
    with torch.no_grad():
        ref, _ = rnn(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        ref, _ = pad_packed_sequence(ref, batch_first=True, total_length=6)
        out, _ = Int8RNN(rnn)(x, mask=mask)
    assert torch.equal(out, ref)
