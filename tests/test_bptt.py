"""Hand-written BPTT (models/bptt.py) and the fused loss (losses.py) against autograd and torch."""
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from nmt.config import RNNConfig, Seq2SeqConfig
from nmt.losses import smoothed_cross_entropy
from nmt.models.bptt import FeedGRUBahdanau, GRUSequence
from nmt.models.rnn import Recurrent
from nmt.models.seq2seq import Seq2Seq

F64 = dict(dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]]).bool()   # (B=3, S=5)


def leaves(*shapes):
    torch.manual_seed(0)
    return [torch.randn(*s, **F64, requires_grad=True) for s in shapes]


def test_gru_sequence_gradcheck():
    B, T, H = 3, 5, 4
    args = leaves((B, T, 3 * H), (B, H), (3 * H, H), (3 * H,))
    assert torch.autograd.gradcheck(lambda *a: GRUSequence.apply(*a, MASK), args)


def test_gru_sequence_keeps_state_over_padding():
    gi, h0, w_hh, b_hh = leaves((3, 5, 12), (3, 4), (12, 4), (12,))
    out, last = GRUSequence.apply(gi, h0, w_hh, b_hh, MASK)
    assert (out[~MASK] == 0).all()
    assert torch.equal(last, out[torch.arange(3), MASK.sum(1) - 1])


def test_feed_decoder_gradcheck():
    B, T, S, H, E, A, M = 3, 4, 5, 6, 4, 5, 7
    args = leaves((B, T, 3 * H), (B, E), (B, H), (3 * H, E), (3 * H, H), (3 * H,), (A, H), (A,), (E, H + M),
                  (B, S, A), (B, S, M))
    assert torch.autograd.gradcheck(lambda *a: FeedGRUBahdanau.apply(*a, MASK)[:2], args)


def grads_after(fn, module, *inputs):
    module.zero_grad()
    for x in inputs:
        x.grad = None
    outputs = fn()
    sum(o.sin().sum() for o in outputs).backward()
    return [o.detach() for o in outputs] + [x.grad.clone() for x in inputs] + [
        p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
@pytest.mark.parametrize("padded", [True, False])
def test_recurrent_gru_hand_bptt_equals_torch(layers, bidirectional, padded):
    """Outputs, final states and every gradient equal torch's packed GRU (the reverse direction included)."""
    rnn = Recurrent(RNNConfig(cell="gru", hidden_size=6, num_layers=layers, bidirectional=bidirectional,
                              dropout=0.0), 5).double()
    x, hx = leaves((4, 7, 5), (layers * (1 + bidirectional), 4, 6))
    lengths = torch.tensor([7, 5, 2, 1]) if padded else None
    results = []
    for hand in (True, False):
        rnn._hand_bptt = lambda _x, hand=hand: hand
        results.append(grads_after(lambda: rnn(x, lengths, hx), rnn, x, hx))
    assert len(results[0]) == len(results[1])
    for ours, torchs in zip(*results):
        assert torch.allclose(ours, torchs, atol=1e-10)


def test_recurrent_uses_torch_without_grad():
    rnn = Recurrent(RNNConfig(cell="gru", hidden_size=4), 3)
    x = torch.randn(2, 3, 3)
    assert rnn._hand_bptt(x)
    with torch.no_grad():
        assert not rnn._hand_bptt(x)


def test_fused_feed_decoder_equals_step_loop():
    """The model's fused input-feeding decoder equals its autograd loop over cell steps: logits and all grads."""
    config = Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=30, embed_size=8, decoder_hidden=12,
                           input_feeding=True, dropout=0.0, emb_dropout=0.0,
                           encoder=RNNConfig(hidden_size=6, bidirectional=True))
    torch.manual_seed(0)
    model = Seq2Seq(config).double()
    assert model.fused_feed
    src, lengths, tgt = torch.randint(3, 30, (4, 7)), torch.tensor([7, 5, 3, 1]), torch.randint(3, 30, (4, 6))
    results = []
    for fused in (True, False):
        model.fused_feed = fused
        results.append(grads_after(lambda: [model(src, lengths, tgt)], model))
    for ours, autograds in zip(*results):
        assert torch.allclose(ours, autograds, atol=1e-10)


def test_fused_feed_only_where_it_applies():
    lstm = Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, input_feeding=True,
                         encoder=RNNConfig(cell="lstm", hidden_size=4))
    assert not Seq2Seq(lstm).fused_feed
    assert not Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, input_feeding=True,
                                     attention="general")).fused_feed


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_smoothed_cross_entropy_equals_torch(smoothing):
    torch.manual_seed(0)
    logits = (3 * torch.randn(150, 37, **F64)).requires_grad_()                # 150 rows: 2 full slices + 22
    gold = torch.randint(0, 37, (150,))
    loss, nll = smoothed_cross_entropy(logits, gold, smoothing)
    (grad,) = torch.autograd.grad(2 * loss, logits)
    expected = F.cross_entropy(logits, gold, reduction="sum", label_smoothing=smoothing)
    (expected_grad,) = torch.autograd.grad(2 * expected, logits)
    assert torch.allclose(loss, expected) and torch.allclose(grad, expected_grad)
    assert torch.allclose(nll, F.cross_entropy(logits, gold, reduction="none"))


def test_importing_nmt_configures_the_allocator_unless_opted_out():
    code = "import nmt, os, torch; print(os.environ.get('THP_MEM_ALLOC_ENABLE'))"
    env = {k: v for k, v in os.environ.items() if k not in ("THP_MEM_ALLOC_ENABLE", "NMT_ALLOCATOR")}
    on = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    off = subprocess.run([sys.executable, "-c", code], env={**env, "NMT_ALLOCATOR": "system"},
                         capture_output=True, text=True, check=True)
    assert on.stdout.strip() == "1" and off.stdout.strip() == "None"
