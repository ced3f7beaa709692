"""Attention (models/attention.py): the additive score in its sigmoid form against the textbook formula."""
import torch


def test_bahdanau_matches_the_tanh_formula_with_gradients():
    """The sigmoid form of the additive score gives the textbook softmax(v . tanh(W_q q + W_k k)) and its gradients."""
    from nmt.models.attention import Attention
    torch.manual_seed(0)
    att = Attention("bahdanau", 6, 10, attention_size=5).double()
    query, memory = torch.randn(3, 4, 6, dtype=torch.double), torch.randn(3, 7, 10, dtype=torch.double)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 5, 2])[:, None]
    context, weights = att(query, att.keys(memory), memory, mask)
    scores = torch.tanh(att.query_proj(query)[:, :, None] + att.key_proj(memory)[:, None]) @ att.v.weight[0]
    ref_weights = torch.softmax(scores.masked_fill(~mask[:, None], float("-inf")), -1)           # (B, T, S)
    ref_context = ref_weights @ memory
    assert torch.allclose(weights, ref_weights, atol=1e-12) and torch.allclose(context, ref_context, atol=1e-12)
    params = list(att.parameters())
    grads = torch.autograd.grad(context.square().sum(), params)
    ref_grads = torch.autograd.grad(ref_context.square().sum(), params)
    for g, r in zip(grads, ref_grads):
        assert torch.allclose(g, r, atol=1e-10)
