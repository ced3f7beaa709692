"""The pointer-generator (models/pointer.py): log-probabilities over the extended vocabulary, step by step ==
teacher forcing, padding invariance, copying, and the coverage loss."""
import pytest
import torch

from nmt.config import RNNConfig, Seq2SeqConfig, SummarizerConfig
from nmt.models.pointer import PointerGenerator
from nmt.tokenizers import BOS, UNK

V = 20          # vocabulary of the random tiny models


def tiny_model(pointer=True, coverage=True, attention="bahdanau", seed=0, vocab=V) -> PointerGenerator:
    torch.manual_seed(seed)
    s2s = Seq2SeqConfig(src_vocab_size=vocab, tgt_vocab_size=vocab, embed_size=8, decoder_hidden=16,
                        encoder=RNNConfig(hidden_size=8, bidirectional=True), attention=attention,
                        dropout=0.0, emb_dropout=0.0)
    return PointerGenerator(SummarizerConfig(seq2seq=s2s, pointer=pointer, coverage=coverage)).eval()


def source_batch():
    """Two documents with per-document OOVs: row 0 has V and V+1, row 1 only V (its own word)."""
    src_ext = torch.tensor([[5, V, 7, V + 1, 9, V], [V, 6, 8, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    return src_ext.masked_fill(src_ext >= V, UNK), src_ext, lengths, 2


VARIANTS = [(True, True), (True, False), (False, True), (False, False)]


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_decode_gives_log_probabilities_over_the_extended_vocabulary(pointer, coverage):
    model = tiny_model(pointer, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1, 7], [BOS, 6, V, 8, 8]])           # extended ids are valid inputs
    logp, _, weights = model.decode(enc, y, state)
    assert logp.shape == (2, 5, V + num_oov if pointer else V)
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 5), atol=1e-4)
    assert weights.shape == (2, 5, 6)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 5), atol=1e-5)
    assert weights[1, :, 3:].eq(0).all()                                   # padding gets no attention
    forward_logp, cov_loss = model(src, lengths, y, src_ext, num_oov)
    assert torch.allclose(forward_logp, logp, atol=1e-6) and cov_loss.shape == (2, 5)
    if not coverage:
        assert cov_loss.eq(0).all()


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_step_by_step_decoding_equals_teacher_forcing(pointer, coverage):
    """The state (decoder RNN and coverage vector) carried one step at a time gives the all-at-once result."""
    model = tiny_model(pointer, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1], [BOS, 6, V, 8]])
    whole, _, whole_w = model.decode(enc, y, state)
    steps, ws = [], []
    for t in range(y.size(1)):
        logp, state, w = model.decode(enc, y[:, t:t + 1], state)
        steps.append(logp)
        ws.append(w)
    assert torch.allclose(torch.cat(steps, 1), whole, atol=1e-5)
    assert torch.allclose(torch.cat(ws, 1), whole_w, atol=1e-6)


@pytest.mark.parametrize("pointer,coverage", VARIANTS)
def test_pointer_generator_is_padding_invariant(pointer, coverage):
    model = tiny_model(pointer, coverage)
    short_ext = torch.tensor([[V, 6, 8]])                                  # one OOV of its own
    y = torch.tensor([[BOS, V, 6, 9]])
    alone_enc, alone_state = model.encode(short_ext.masked_fill(short_ext >= V, UNK), torch.tensor([3]), short_ext, 1)
    alone, _, alone_w = model.decode(alone_enc, y, alone_state)
    src, src_ext, lengths, num_oov = source_batch()
    # the long document first, so the short one is padded
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    batched, _, batched_w = model.decode(enc, torch.cat([torch.tensor([[BOS, 5, 7, 9]]), y]), state)
    width = alone.size(-1)                                                 # V (+ 1 OOV with the pointer)
    assert torch.allclose(batched[1, :, :width], alone[0], atol=1e-5)
    assert torch.allclose(batched_w[1, :, :3], alone_w[0], atol=1e-6)
    if pointer:     # the batch's extra OOV slot is not a word of this document: (clamped) zero probability
        assert batched[1, :, width:].exp().max() <= 1e-11


@pytest.mark.parametrize("coverage", [True, False])
def test_pointer_gives_source_oovs_probability_at_every_step(coverage):
    model = tiny_model(True, coverage)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, 5, 7, 9, 9, 5, 7], [BOS, 6, 8, 8, 6, 6, 8]])
    probs = model.decode(enc, y, state)[0].exp()                           # (B, T, X)
    assert (probs[0, :, V] > 1e-6).all() and (probs[0, :, V + 1] > 1e-6).all()
    assert (probs[1, :, V] > 1e-6).all()
    assert (probs[1, :, V + 1] <= 1e-11).all()                             # row 1 has no second OOV to copy


def test_coverage_loss_matches_its_definition():
    model = tiny_model(True, True)
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    y = torch.tensor([[BOS, V, 5, V + 1, 7, 9], [BOS, 6, V, 8, 8, 6]])
    _, (_, coverage), weights, cov_loss = model.decode_with_coverage(enc, y, state)
    assert (cov_loss >= 0).all() and cov_loss[:, 0].eq(0).all()           # nothing covered before the first step
    before = torch.cumsum(weights, 1) - weights                            # c_t = sum of a_t' for t' < t
    expected = torch.minimum(weights, before).sum(-1)                      # (B, T)
    assert torch.allclose(cov_loss, expected, atol=1e-6)
    assert torch.allclose(coverage, weights.sum(1), atol=1e-5)             # the returned state is the full sum
    assert cov_loss[:, 1:].sum() > 0
    # each step's loss is at most 1 (attention sums to 1), and the loss enters SummaryTask.loss non-negatively
    assert (cov_loss <= 1 + 1e-6).all()


@pytest.mark.parametrize("attention", ["dot", "general"])
def test_coverage_needs_bahdanau_attention(attention):
    with pytest.raises(ValueError, match="bahdanau"):
        tiny_model(True, True, attention=attention)
    model = tiny_model(True, False, attention=attention)                  # without coverage any attention works
    src, src_ext, lengths, num_oov = source_batch()
    enc, state = model.encode(src, lengths, src_ext, num_oov)
    logp = model.decode(enc, torch.tensor([[BOS], [BOS]]), state)[0]
    assert torch.allclose(logp.exp().sum(-1), torch.ones(2, 1), atol=1e-4)
