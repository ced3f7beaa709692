"""Label-smoothed cross-entropy as one autograd function over (N, V) logits.

torch's `cross_entropy` writes the (N, V) log-probabilities, and its backward reads them back and writes a third
(N, V) tensor; the negative log-likelihood for perplexity needs yet another pass. Here forward keeps only the
per-row log-normaliser, and backward writes softmax - target straight into the gradient, in slices of rows
that stay in cache. With N around 1,000 and V = 8,000, these are the largest tensors of a translation step.

With smoothing ε over V classes the target is (1 - ε) one-hot(y) + ε / V, so the loss of one row is
    (1 - ε) (lse - x_y) + ε (lse - mean(x)),  lse = log Σ_j exp(x_j),
and its gradient is softmax(x) - (1 - ε) one-hot(y) - ε / V: the definition torch's `label_smoothing` uses.
"""
from __future__ import annotations

import torch
from torch import Tensor

ROWS = 64   # rows per slice: 64 x 8,000 floats = 2 MB


class SmoothedCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits: Tensor, gold: Tensor, smoothing: float):
        lse = torch.cat([torch.logsumexp(rows, dim=1) for rows in logits.split(ROWS)])      # (N,)
        nll = lse - logits.gather(1, gold[:, None]).squeeze(1)                               # (N,)
        loss = (1 - smoothing) * nll.sum() + smoothing * (lse.sum() - logits.sum() / logits.size(1))
        ctx.save_for_backward(logits, lse, gold)
        ctx.smoothing = smoothing
        ctx.mark_non_differentiable(nll)
        return loss, nll

    @staticmethod
    def backward(ctx, d_loss: Tensor, _d_nll):
        logits, lse, gold = ctx.saved_tensors
        eps = ctx.smoothing
        grad = torch.empty_like(logits)                                                      # (N, V)
        for rows, row_lse, out in zip(logits.split(ROWS), lse.split(ROWS), grad.split(ROWS)):
            torch.sub(rows, row_lse[:, None], out=out).exp_().sub_(eps / logits.size(1)).mul_(d_loss)
        grad[torch.arange(gold.numel(), device=gold.device), gold] -= (1 - eps) * d_loss
        return grad, None, None


def smoothed_cross_entropy(logits: Tensor, gold: Tensor, smoothing: float = 0.0) -> tuple[Tensor, Tensor]:
    """logits (N, V), gold (N,) -> summed label-smoothed loss () and the per-token negative log-likelihood (N,)."""
    return SmoothedCrossEntropy.apply(logits, gold, smoothing)
