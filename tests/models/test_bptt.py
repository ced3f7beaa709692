"""Hand-written BPTT (models/bptt.py) against autograd and torch: impl="fused" (torch's kernels and the shortcuts)
against impl="torch" (torch's kernels and autograd only), built with the same weights."""
import pytest
import torch

from nmt.config import RNNConfig, Seq2SeqConfig
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


def same_weights(build, config_for):
    """Two modules from `build(config)`, impl fused and torch, the second with the first's state dict."""
    torch.manual_seed(0)
    fused, plain = build(config_for("fused")), build(config_for("torch"))
    plain.load_state_dict(fused.state_dict())                  # interchangeable state dicts
    return fused, plain


@pytest.mark.parametrize("layers,bidirectional", [(1, True), (2, True), (2, False)])
@pytest.mark.parametrize("padded", [True, False])
def test_recurrent_gru_hand_bptt_equals_torch(layers, bidirectional, padded):
    """Outputs, final states and every gradient equal torch's packed GRU (the reverse direction included)."""
    fused, plain = same_weights(
        lambda config: Recurrent(config, 5).double(),
        lambda impl: RNNConfig(cell="gru", impl=impl, hidden_size=6, num_layers=layers, bidirectional=bidirectional,
                               dropout=0.0))
    x, hx = leaves((4, 7, 5), (layers * (1 + bidirectional), 4, 6))
    lengths = torch.tensor([7, 5, 2, 1]) if padded else None
    assert fused._hand_bptt(x) and not plain._hand_bptt(x)      # the shortcut is what is compared
    results = [grads_after(lambda rnn=rnn: rnn(x, lengths, hx), rnn, x, hx) for rnn in (fused, plain)]
    assert len(results[0]) == len(results[1])
    for ours, torchs in zip(*results):
        assert torch.allclose(ours, torchs, atol=1e-10)


def test_recurrent_uses_torch_without_grad():
    rnn = Recurrent(RNNConfig(cell="gru", hidden_size=4), 3)
    x = torch.randn(2, 3, 3)
    assert rnn._hand_bptt(x)
    with torch.no_grad():
        assert not rnn._hand_bptt(x)
    assert not Recurrent(RNNConfig(cell="lstm", hidden_size=4), 3)._hand_bptt(x)        # GRU only
    assert not Recurrent(RNNConfig(cell="gru", hidden_size=4), 3, weight_drop=0.2)._hand_bptt(x)


def test_fused_feed_decoder_equals_step_loop():
    """The fused input-feeding decoder (impl fused) equals the autograd loop over cell steps (impl torch):
    logits and all gradients."""
    def config(impl):
        return Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=30, embed_size=8, decoder_hidden=12,
                             input_feeding=True, dropout=0.0, emb_dropout=0.0,
                             encoder=RNNConfig(impl=impl, hidden_size=6, bidirectional=True))
    fused, plain = same_weights(lambda c: Seq2Seq(c).double(), config)
    assert fused.fused_feed and not plain.fused_feed
    src, lengths, tgt = torch.randint(3, 30, (4, 7)), torch.tensor([7, 5, 3, 1]), torch.randint(3, 30, (4, 6))
    results = [grads_after(lambda model=model: [model(src, lengths, tgt)], model) for model in (fused, plain)]
    assert len(results[0]) == len(results[1])
    for ours, autograds in zip(*results):
        assert torch.allclose(ours, autograds, atol=1e-10)


def test_fused_feed_only_where_it_applies():
    lstm = Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, input_feeding=True,
                         encoder=RNNConfig(cell="lstm", hidden_size=4))
    assert not Seq2Seq(lstm).fused_feed
    assert not Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, input_feeding=True,
                                     attention="general")).fused_feed
    assert not Seq2Seq(Seq2SeqConfig(src_vocab_size=9, tgt_vocab_size=9, input_feeding=True,
                                     encoder=RNNConfig(impl="scratch", hidden_size=4))).fused_feed


@pytest.mark.parametrize("feeding", [False, True])
def test_decoding_input_table_equals_torch_impl(feeding):
    """Decoding (no autograd) with impl fused reads the decoder's input products from a table; impl torch does
    not: the same weights give the same logits, step by step."""
    def config(impl):
        return Seq2SeqConfig(src_vocab_size=30, tgt_vocab_size=30, embed_size=8, decoder_hidden=12,
                             input_feeding=feeding, dropout=0.0, emb_dropout=0.0,
                             encoder=RNNConfig(impl=impl, hidden_size=6, bidirectional=True))
    fused, plain = same_weights(lambda c: Seq2Seq(c).eval(), config)
    src, lengths, y = torch.randint(3, 30, (3, 6)), torch.tensor([6, 4, 2]), torch.randint(3, 30, (3, 4))
    with torch.inference_mode():
        steps = []
        for model in (fused, plain):
            enc, state = model.encode(src, lengths)
            logits = []
            for t in range(y.size(1)):
                out, state, _ = model.decode(enc, y[:, t:t + 1], state)
                logits.append(out)
            steps.append(torch.cat(logits, 1))
    assert fused._inputs_table is not None and plain._inputs_table is None
    assert torch.allclose(steps[0], steps[1], atol=1e-5)
