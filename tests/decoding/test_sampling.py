"""Sampling (nmt/decoding.py sample_logits): greedy at temperature 0, top-k, nucleus, free sampling."""
import torch

from nmt.decoding import sample_logits


def test_sampling_rules():
    logits = torch.tensor([[0.0, 1.0, 3.0, 2.0]] * 200)
    assert torch.equal(sample_logits(logits, 0.0), torch.full((200,), 2))
    top1 = sample_logits(logits, 1.0, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.all(top1 == 2)
    nucleus = sample_logits(logits, 1.0, top_p=0.7, generator=torch.Generator().manual_seed(0))
    assert set(nucleus.tolist()) <= {2, 3}       # p(2)=0.64 < 0.7, so the next one (3) is kept too
    free = sample_logits(logits, 5.0, generator=torch.Generator().manual_seed(0))
    assert len(set(free.tolist())) == 4


def test_gumbel_draws_follow_the_tempered_softmax_and_skip_barred_columns():
    """GumbelDraws (argmax of logits / T + Gumbel noise) draws from softmax(logits / T): frequencies over 40,000
    draws within 0.01 of the probabilities; barred columns never; the same generator seed, the same draws."""
    from nmt.decoding import GumbelDraws
    logits = torch.tensor([[3.0, 0.5, 1.0, 2.0, -1.0]]).repeat(200, 1)              # 200 rows, as 200 streams
    draw = GumbelDraws(200, 5, torch.Generator().manual_seed(0), barred=1, block=64)
    tokens = torch.cat([draw(logits, 0.8) for _ in range(200)])                     # 40,000 draws, 4 blocks
    assert not (tokens == 0).any()
    expected = torch.cat([torch.zeros(1), (logits[0, 1:] / 0.8).softmax(-1)])
    assert (torch.bincount(tokens, minlength=5) / tokens.numel() - expected).abs().max() < 0.01
    again = GumbelDraws(200, 5, torch.Generator().manual_seed(0), barred=1, block=64)
    assert torch.equal(torch.cat([again(logits, 0.8) for _ in range(200)]), tokens)
