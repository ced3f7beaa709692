"""Linear-chain conditional random field over tag sequences (Lafferty et al. 2001; Lample et al. 2016).

The score of tags y_1..y_S for emissions e (B, S, K) is
    start[y_1] + sum_i e_i[y_i] + sum_{i>1} trans[y_{i-1}, y_i] + end[y_S].
Training maximises log p(y | x) = score(y) - log Z, with log Z from the forward algorithm in log space;
decoding is Viterbi. Both are batched: one Python step per position, never per sentence. Padded positions
(mask False) carry the running state unchanged, so sentences of different lengths share one batch.
Shapes: B sentences, S positions, K tags.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn

FORBIDDEN = -1e4     # added to impossible transitions: exp() of it is 0 in float32, the gradient stays finite


def iob2_constraints(tags: list[str]) -> tuple[Tensor, Tensor]:
    """Allowed transitions of the IOB2 scheme: I-X only after B-X or I-X (and never first).

    Returns (allowed_start (K,), allowed (K, K)) as bool tensors; allowed[i, j]: tag j may follow tag i.
    """
    k = len(tags)
    allowed = torch.ones(k, k, dtype=torch.bool)
    start = torch.ones(k, dtype=torch.bool)
    for j, tag in enumerate(tags):
        if not tag.startswith("I-"):
            continue
        start[j] = False
        for i, prev in enumerate(tags):
            allowed[i, j] = prev[2:] == tag[2:] and prev[:2] in ("B-", "I-")
    return start, allowed


class CRF(nn.Module):
    def __init__(self, num_tags: int, constraints: tuple[Tensor, Tensor] | None = None):
        super().__init__()
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.zeros(num_tags))                 # (K,)
        self.end = nn.Parameter(torch.zeros(num_tags))                   # (K,)
        self.trans = nn.Parameter(torch.zeros(num_tags, num_tags))       # (K, K) from -> to
        start_ok, trans_ok = constraints or (torch.ones(num_tags, dtype=torch.bool),
                                             torch.ones(num_tags, num_tags, dtype=torch.bool))
        self.register_buffer("start_penalty", (~start_ok).float() * FORBIDDEN, persistent=False)
        self.register_buffer("trans_penalty", (~trans_ok).float() * FORBIDDEN, persistent=False)

    def _scores(self) -> tuple[Tensor, Tensor]:
        return self.start + self.start_penalty, self.trans + self.trans_penalty

    def nll(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Negative log-likelihood per sentence: emissions (B, S, K), tags (B, S), mask (B, S) -> (B,)."""
        return self.log_partition(emissions, mask) - self.score(emissions, tags, mask)

    def score(self, emissions: Tensor, tags: Tensor, mask: Tensor) -> Tensor:
        """Score of the given tag paths -> (B,)."""
        start, trans = self._scores()
        maskf = mask.to(emissions.dtype)                                           # (B, S)
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)                   # (B, S)
        total = start[tags[:, 0]] + (emit * maskf).sum(1)
        total = total + (trans[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        last = tags.gather(1, (mask.sum(1, keepdim=True) - 1).clamp(min=0)).squeeze(1)   # (B,)
        return total + self.end[last]

    def log_partition(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """log Z by the forward algorithm -> (B,)."""
        start, trans = self._scores()
        alpha = start + emissions[:, 0]                                            # (B, K)
        for i in range(1, emissions.size(1)):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, i]   # (B, K)
            alpha = torch.where(mask[:, i, None], nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    @torch.no_grad()
    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Viterbi: the best tag path of each sentence -> (B, S), zero past each sentence's end."""
        start, trans = self._scores()
        b, s, k = emissions.shape
        score = start + emissions[:, 0]                                            # (B, K)
        keep = torch.arange(k, device=emissions.device).expand(b, k)               # identity back-pointers
        pointers = []
        for i in range(1, s):
            best, arg = (score.unsqueeze(2) + trans).max(dim=1)                    # (B, K) each
            live = mask[:, i, None]
            score = torch.where(live, best + emissions[:, i], score)
            pointers.append(torch.where(live, arg, keep))                          # padding: stay on the tag
        path = [(score + self.end).argmax(dim=1)]                                  # (B,)
        for arg in reversed(pointers):
            path.append(arg.gather(1, path[-1].unsqueeze(1)).squeeze(1))
        tags = torch.stack(path[::-1], dim=1)                                      # (B, S)
        return tags * mask
