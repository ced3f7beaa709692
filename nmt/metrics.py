"""Scores as pure functions over plain Python values, used by the tasks (validation) and by `evaluate`.

- BLEU and chrF (sacreBLEU) on detokenised, cased text against raw references, with sacreBLEU's defaults (13a
  tokenisation, cased); each carries sacreBLEU's signature so a number can be reproduced exactly.
- ROUGE-1/2/L F1 (rouge-score, Porter stemming), averaged over each hypothesis's references.
- Entity precision / recall / F1 (seqeval, strict IOB2: exact boundaries and type).
- Accuracy and macro F1 of labels; loss per token -> perplexity and bits; MSE and MAE of forecasts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Sequence


@dataclass
class Score:
    name: str
    score: float
    signature: str


def bleu(hypotheses: list[str], references: list[str]) -> Score:
    from sacrebleu.metrics import BLEU
    metric = BLEU()
    result = metric.corpus_score(hypotheses, [references])
    return Score("BLEU", result.score, str(metric.get_signature()))


def chrf(hypotheses: list[str], references: list[str]) -> Score:
    from sacrebleu.metrics import CHRF
    metric = CHRF()
    result = metric.corpus_score(hypotheses, [references])
    return Score("chrF", result.score, str(metric.get_signature()))


def rouge(references: list[list[str]], hypotheses: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F1 (in %) with stemming, each hypothesis against each of its references, averaged; also the
    mean hypothesis length in words ("words")."""
    from rouge_score import rouge_scorer
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    totals = {"1": 0.0, "2": 0.0, "L": 0.0}
    for refs, hyp in zip(references, hypotheses):
        for ref in refs:
            s = scorer.score(ref, hyp)
            for k in totals:
                totals[k] += s[f"rouge{k}"].fmeasure / len(refs)
    n = max(1, len(hypotheses))
    result = {k: 100 * v / n for k, v in totals.items()}
    result["words"] = sum(len(h.split()) for h in hypotheses) / n
    return result


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict:
    """seqeval strict IOB2 precision / recall / F1 (in %), overall and per entity type ("types")."""
    from seqeval.metrics import classification_report
    from seqeval.scheme import IOB2
    pairs = [(g, p) for g, p in zip(gold, predicted) if g]
    report = classification_report([g for g, _ in pairs], [p for _, p in pairs], mode="strict", scheme=IOB2,
                                   output_dict=True, zero_division=0)
    types = {k: {m: 100 * float(v[m]) for m in ("precision", "recall", "f1-score")} | {"support": int(v["support"])}
             for k, v in report.items() if not k.endswith("avg")}
    micro = report["micro avg"]
    return {"precision": 100 * float(micro["precision"]), "recall": 100 * float(micro["recall"]),
            "f1": 100 * float(micro["f1-score"]), "support": int(micro["support"]), "types": types}


def accuracy(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """Share of equal labels, in %."""
    if len(gold) != len(predicted) or not gold:
        raise ValueError(f"accuracy needs equally many labels, at least one: {len(gold)} vs {len(predicted)}")
    return 100 * sum(g == p for g, p in zip(gold, predicted)) / len(gold)


def macro_f1(gold: Sequence[Hashable], predicted: Sequence[Hashable]) -> float:
    """F1 of each gold label (in %), averaged with equal weight per label."""
    scores = []
    for label in sorted(set(gold), key=str):
        tp = sum(g == p == label for g, p in zip(gold, predicted))
        fp = sum(p == label != g for g, p in zip(gold, predicted))
        fn = sum(g == label != p for g, p in zip(gold, predicted))
        scores.append(200 * tp / max(1, 2 * tp + fp + fn))
    return sum(scores) / max(1, len(scores))


def perplexity(nll_per_token: float) -> float:
    return math.exp(min(nll_per_token, 700.0))        # capped: a diverged model reads inf-like, never OverflowError


def bits_per_char(nll_per_char: float) -> float:
    """Nats per character -> bits per character."""
    return nll_per_char / math.log(2)


def mse(gold: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean squared error over flat sequences of numbers."""
    return sum((g - p) ** 2 for g, p in zip(gold, predicted, strict=True)) / max(1, len(gold))


def mae(gold: Sequence[float], predicted: Sequence[float]) -> float:
    """Mean absolute error over flat sequences of numbers."""
    return sum(abs(g - p) for g, p in zip(gold, predicted, strict=True)) / max(1, len(gold))
