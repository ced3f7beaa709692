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
