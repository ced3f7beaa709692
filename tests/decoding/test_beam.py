"""Decoding (nmt/decoding.py) on the encoder-decoder: greedy == beam 1, batched == one by one, argument checks,
the fast top-k and the beam step against the plain definitions."""
import pytest
import torch

from nmt.config import RNNConfig, Seq2SeqConfig
from nmt.decoding import beam_search, greedy
from nmt.models.seq2seq import Seq2Seq

V = 23


def tiny(input_feeding=False):
    enc = RNNConfig(hidden_size=8, bidirectional=True)
    config = Seq2SeqConfig(src_vocab_size=V, tgt_vocab_size=V, embed_size=8, encoder=enc, decoder_hidden=16,
                           input_feeding=input_feeding, dropout=0.0, emb_dropout=0.0)
    torch.manual_seed(0)
    return Seq2Seq(config).eval()


@pytest.mark.parametrize("input_feeding", [False, True])
def test_greedy_equals_beam_one(input_feeding):
    model = tiny(input_feeding=input_feeding)
    src, lengths = torch.randint(4, V, (4, 6)), torch.tensor([6, 5, 3, 1])
    g = greedy(model, src, lengths, 1, 2, max_len_ratio=2.0)
    b = beam_search(model, src, lengths, 1, 2, beam=1, alpha=0.0)
    assert [h[0].tokens for h in g] == [h[0].tokens for h in b]


def test_beam_batched_equals_one_by_one():
    model = tiny()
    src, lengths = torch.randint(4, V, (3, 6)), torch.tensor([6, 4, 2])
    batched = beam_search(model, src, lengths, 1, 2, beam=4, n_best=2)
    for i in range(3):
        alone = beam_search(model, src[i:i + 1, : lengths[i]], lengths[i:i + 1], 1, 2, beam=4, n_best=2)
        assert [h.tokens for h in alone[0]] == [h.tokens for h in batched[i]]
        assert alone[0][0].score == pytest.approx(batched[i][0].score, abs=1e-4)
    assert all(len(h) == 2 and h[0].score >= h[1].score for h in batched)


def test_beam_rejects_bad_sizes():
    model = tiny()
    src, lengths = torch.randint(4, V, (1, 3)), torch.tensor([3])
    with pytest.raises(ValueError, match="beam"):
        beam_search(model, src, lengths, 1, 2, beam=0)
    with pytest.raises(ValueError, match="n-best"):
        beam_search(model, src, lengths, 1, 2, beam=2, n_best=3)


@pytest.mark.parametrize("V,k", [(6000, 5), (6000, 1), (8000, 4), (23, 3), (300, 2)])
def test_topk_rows_equals_torch_topk(V, k):
    from nmt.decoding import topk_rows
    torch.manual_seed(V + k)
    x = torch.randn(37, V).log_softmax(-1)
    values, index = topk_rows(x, k)
    ref_values, ref_index = x.topk(k, dim=-1)
    assert torch.equal(values, ref_values) and torch.equal(index, ref_index)


def test_beam_step_equals_the_top_k_of_all_candidates():
    """Each row offering its own top K gives the K best of all K*V candidates; forced rows offer only EOS."""
    from nmt.decoding import _best_extensions
    torch.manual_seed(0)
    R, K, V, eos = 4, 3, 50, 2
    scores = torch.randn(R * K) - 5
    logp = torch.randn(R * K, V).log_softmax(-1)
    done = torch.zeros(R * K, dtype=torch.bool)
    done[[1, 4]] = True
    forced = done.clone()
    forced[7] = True                                        # at its length cap: EOS at its own cost
    origin, token, best = _best_extensions(scores, logp, forced, done, eos, K)
    ref = logp.clone()
    ref[forced] = float("-inf")
    ref[forced, eos] = torch.where(done[forced], 0.0, logp[forced, eos])
    top, idx = (scores[:, None] + ref).view(R, K * V).topk(K, dim=-1)
    assert torch.allclose(best, top.view(-1))
    assert torch.equal(origin, (idx // V + torch.arange(R)[:, None] * K).view(-1))
    assert torch.equal(token, (idx % V).view(-1))
