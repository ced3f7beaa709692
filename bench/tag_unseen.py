"""Entity F1 on a dev set split by whether an entity was seen in training (Augenstein et al. 2017, "Generalisation
in named entity recognition"): an entity is *seen* when the same words carry the same type somewhere in the
training file, else *unseen*. A gold or predicted entity is scored within its own part, so "unseen F1" says how
well a tagger finds names it has never been taught, the bulk of a later test set's errors.

    python bench/tag_unseen.py [--model checkpoints/conll2003-ner.pt ...] [--corpus conll2003|wnut17]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def entity_set(sentences) -> set[tuple[str, tuple[str, ...]]]:
    """(type, words) of every entity in IOB2 sentences [(words, tags)]."""
    from nmt.tasks.tag import spans
    return {(kind, tuple(words[a:b])) for words, tags in sentences for kind, a, b in spans(tags)}


def split_scores(gold_sents, predicted: list[list[str]], known: set) -> dict:
    """Precision / recall / F1 (%) and gold counts of the seen and the unseen entities, exact type and boundaries."""
    from nmt.tasks.tag import spans
    parts = {True: (set(), set()), False: (set(), set())}          # seen?: (gold, predicted) entities
    for n, ((words, tags), guess) in enumerate(zip(gold_sents, predicted)):
        for side, sequence in enumerate((tags, guess)):
            for kind, a, b in spans(sequence):
                parts[(kind, tuple(words[a:b])) in known][side].add((n, kind, a, b))
    out = {}
    for name, (gold, pred) in (("seen", parts[True]), ("unseen", parts[False])):
        hit = len(gold & pred)
        p, r = hit / max(1, len(pred)), hit / max(1, len(gold))
        out[name] = {"precision": round(100 * p, 2), "recall": round(100 * r, 2),
                     "f1": round(200 * p * r / max(1e-9, p + r), 2), "gold": len(gold)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", nargs="+", default=[str(ROOT / "checkpoints" / "conll2003-ner.pt")])
    parser.add_argument("--corpus", default="conll2003", choices=["conll2003", "wnut17"])
    args = parser.parse_args()
    from bench.common import machine
    from nmt.corpora import corpus_files
    from nmt.metrics import entity_scores
    from nmt.tasks.tag import NERTagger, read_tagged
    train = read_tagged(corpus_files(args.corpus, "train")["paths"][0])
    dev = read_tagged(corpus_files(args.corpus, "dev")["paths"][0])
    known = entity_set(train)
    for model in args.model:
        predicted = NERTagger.load(model).tag([w for w, _ in dev])
        result = {"machine": machine(), "model": model, "corpus": args.corpus,
                  "all_f1": round(entity_scores([t for _, t in dev], predicted)["f1"], 2)}
        print(json.dumps(result | split_scores(dev, predicted, known)))


if __name__ == "__main__":
    main()
