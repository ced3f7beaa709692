"""The baseline beside the classifiers: logistic regression on a text's character n-grams (n = 1..4, with ^ and $
marking the ends), written in torch: the n-grams of the training split form the features, a bag of them goes
through one linear layer (an EmbeddingBag summing one weight row per n-gram) and a softmax. Trained with Adam
and weight decay for a fixed number of epochs; the epoch with the best dev accuracy is kept, then the chosen split
is scored (accuracy and macro F1, in %), the same split reading as `classify --corpus`.

    python bench/ngram_baseline.py --corpus names --split test [--seed 2]
    python bench/ngram_baseline.py --corpus sst2 --split dev --max-n 5
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def ngrams(text: str, max_n: int) -> set[str]:
    """The distinct character n-grams (1..max_n) of ^text$."""
    marked = f"^{text}$"
    return {marked[i:i + n] for n in range(1, max_n + 1) for i in range(len(marked) - n + 1)}


class NgramLogReg(nn.Module):
    def __init__(self, features: int, labels: int):
        super().__init__()
        self.weight = nn.EmbeddingBag(features, labels, mode="sum")
        nn.init.zeros_(self.weight.weight)
        self.bias = nn.Parameter(torch.zeros(labels))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """ids (N,) the n-gram ids of all texts, offsets (B,) where each text's ids start -> logits (B, C)."""
        return self.weight(ids, offsets) + self.bias


def bags(texts: list[str], vocab: dict[str, int], max_n: int) -> list[list[int]]:
    return [[vocab[g] for g in ngrams(t, max_n) if g in vocab] for t in texts]


def batch(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    offsets = torch.tensor([0] + [len(r) for r in rows[:-1]]).cumsum(0)
    return torch.tensor([i for r in rows for i in r], dtype=torch.long), offsets


def fit(train, dev, max_n: int = 4, epochs: int = 20, weight_decay: float = 1e-5, seed: int = 1):
    """Train on (label, text) pairs; returns (predict(texts) -> labels, log of dev accuracy per epoch)."""
    from nmt.metrics import accuracy
    torch.manual_seed(seed)
    labels = sorted({y for y, _ in train})
    vocab: dict[str, int] = {}
    for _, text in train:
        for g in sorted(ngrams(text, max_n)):
            vocab.setdefault(g, len(vocab))
    model = NgramLogReg(len(vocab), len(labels))
    optim = torch.optim.Adam(model.parameters(), lr=0.02, weight_decay=weight_decay)
    x, y = bags([t for _, t in train], vocab, max_n), torch.tensor([labels.index(y) for y, _ in train])

    def predict(texts: list[str]) -> list[str]:
        with torch.no_grad():
            return [labels[i] for i in model(*batch(bags(texts, vocab, max_n))).argmax(-1).tolist()]

    best, log, generator = (-1.0, None), [], torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for index in torch.randperm(len(x), generator=generator).split(64):
            loss = F.cross_entropy(model(*batch([x[i] for i in index.tolist()])), y[index])
            optim.zero_grad()
            loss.backward()
            optim.step()
        log.append(accuracy([g for g, _ in dev], predict([t for _, t in dev])))
        if log[-1] > best[0]:
            best = (log[-1], {k: v.clone() for k, v in model.state_dict().items()})
    model.load_state_dict(best[1])
    return predict, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default="names")
    parser.add_argument("--split", default="test")
    parser.add_argument("--max-n", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--weight-decay", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=1, help="Initialisation and batch order.")
    parser.add_argument("--preset", default=None, help="Classify preset whose data settings split the corpus "
                                                       "(default: the corpus's own, else base).")
    args = parser.parse_args()
    from nmt.metrics import accuracy, macro_f1
    from nmt.tasks import make_setup
    from nmt.tasks.classify import corpus_pairs
    torch.set_num_threads(1)
    preset = args.preset or (args.corpus if args.corpus in ("sst2", "trec", "names") else "base")
    data = make_setup("classify", preset).data
    train, dev = corpus_pairs(args.corpus, "train", data), corpus_pairs(args.corpus, "dev", data)
    scored = dev if args.split == "dev" else corpus_pairs(args.corpus, args.split, data)
    start = time.perf_counter()
    predict, log = fit(train, dev, args.max_n, args.epochs, args.weight_decay, args.seed)
    predicted = predict([t for _, t in scored])
    gold = [y for y, _ in scored]
    print(json.dumps({"corpus": args.corpus, "split": args.split, "seed": args.seed, "examples": len(scored),
                      "accuracy": round(accuracy(gold, predicted), 2), "macro_f1": round(macro_f1(gold, predicted), 2),
                      "best_dev_epoch": log.index(max(log)) + 1, "dev_accuracy_by_epoch": [round(a, 2) for a in log],
                      "seconds": round(time.perf_counter() - start, 1)}, indent=1))


if __name__ == "__main__":
    main()
