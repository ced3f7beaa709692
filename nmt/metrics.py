"""Scores as pure functions: BLEU and chrF (sacreBLEU), perplexity and bits per character.

BLEU and chrF are computed on detokenised, cased text against raw references, with sacreBLEU's defaults
(13a tokenisation, cased), and carry sacreBLEU's signature so a number can be reproduced exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


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


def perplexity(nll_per_token: float) -> float:
    return math.exp(nll_per_token)


def bits_per_char(nll_per_char: float) -> float:
    """Nats per character -> bits per character."""
    return nll_per_char / math.log(2)
