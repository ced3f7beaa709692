"""How well the translator's confidence tells its own domains (image captions, short everyday sentences) from other
text: the numbers behind the out-of-domain warning of `translate` (checkpoints/everyday-*.md, multi30k-*.md).

Confidence is the mean log-probability per output token of the beam-5 translation (Translator.confidence). The
threshold is `translate`'s default (DecodeConfig.warn_confidence), or with --percentile P the P-th percentile of
each model's confidences on its own domains (Multi30k val and Tatoeba dev pooled). Every set's flagged share is
measured at it, and for the sets outside the domains the precision on an equal mix with the pooled inside sets:
  inside: Multi30k val (1,014 captions), Tatoeba dev (2,095 everyday pairs held out of train.tsv by English sentence);
  de-en outside: data/ood/de-news.txt (40 German news sentences), data/ood/de-email.txt (40 business e-mail
      sentences), data/ood/de-news-everyday.txt (the older mixed set of 40), all written for this test;
  en-de outside: 100 sentences each of Gigaword news, AESLC e-mails, TREC questions and SST-2 film reviews.

    python bench/translate_ood.py [--models everyday|multi30k] [--percentile P] [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def inside(direction: str, data_dir: Path | None) -> dict[str, list[str]]:
    """The model's own domains, in its source language."""
    from nmt.corpora import corpus_pairs
    src, tgt = direction.split("-")
    return {"Multi30k val captions": [s for s, _ in corpus_pairs("multi30k", "val", data_dir, src, tgt)],
            "Tatoeba dev (everyday)": [s for s, _ in corpus_pairs("tatoeba", "dev", data_dir, src, tgt)]}


def outside(direction: str, data_dir: Path | None) -> dict[str, list[str]]:
    """Named sets of sentences in the model's source language from neither domain."""
    if direction == "de-en":
        read = lambda name: [x for x in (ROOT / "data" / "ood" / name).read_text(encoding="utf-8").splitlines()  # noqa
                             if x.strip()]
        return {"German news": read("de-news.txt"), "German business e-mail": read("de-email.txt"),
                "German news/office/everyday (older mix)": read("de-news-everyday.txt")}
    from nmt.corpora import data_root
    root = data_root("gigaword", data_dir)
    first = lambda path, n, f=lambda x: x: [f(x) for x in path.read_text(encoding="utf-8").splitlines()[:n]]  # noqa
    emails = [json.loads(x)["email_body"] for x in (root / "aeslc" / "train.jsonl").open(encoding="utf-8")][:100]
    return {
        "Gigaword news": first(root / "gigaword" / "dev_4k" / "valid.article.filter.4K.txt", 100),
        "AESLC e-mails (first sentence)": [e.strip().split(". ")[0][:300] for e in emails],
        "TREC questions": first(root / "trec" / "train.txt", 100, lambda x: x.split(" ", 1)[1]),
        "SST-2 reviews": first(root / "sst2" / "train.txt", 100, lambda x: x.split(" ", 1)[1]),
    }


def measure(direction: str, models: str, data_dir: Path | None, percentile: float | None) -> dict:
    from nmt import tasks
    from nmt.config import DecodeConfig
    translator = tasks.module("translate").RUNNER.load(ROOT / "checkpoints" / f"{models}-{direction}.pt")
    decode = DecodeConfig()

    def confidences(lines):
        hyps = translator.translate_hyps(lines, decode)
        return [c for c in translator.confidence(lines, [h[0].tokens if h else [] for h in hyps], decode)
                if c is not None]

    own = {name: confidences(lines) for name, lines in inside(direction, data_dir).items()}
    pooled = sorted(c for scores in own.values() for c in scores)
    threshold = decode.warn_confidence if percentile is None else pooled[int(percentile / 100 * len(pooled))]
    share = lambda scores: sum(c < threshold for c in scores) / len(scores)  # noqa: E731
    summary = lambda scores: {"sentences": len(scores), "flagged": share(scores),  # noqa: E731
                              "mean_confidence": sum(scores) / len(scores)}
    result = {"direction": direction, "model": f"{models}-{direction}.pt", "threshold": round(threshold, 3),
              "inside": {name: summary(scores) for name, scores in own.items()}, "outside": {}}
    for name, lines in outside(direction, data_dir).items():
        s = summary(confidences(lines))
        hits, false = s["flagged"], share(pooled)
        s["precision_equal_mix"] = hits / max(1e-9, hits + false)
        result["outside"][name] = s
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--models", default="everyday", help="checkpoints/NAME-de-en.pt and NAME-en-de.pt.")
    parser.add_argument("--percentile", type=float, default=None, help="Threshold at this percentile of the "
                        "inside sets.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(d, args.models, args.data_dir, args.percentile) for d in ("de-en", "en-de")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(f"{r['model']}: threshold {r['threshold']:.3f}")
        for side in ("inside", "outside"):
            for name, s in r[side].items():
                extra = (f"  precision (equal mix with inside) {100 * s['precision_equal_mix']:5.1f}%"
                         if side == "outside" else "")
                print(f"  {side:7s} {name:40s} n={s['sentences']:5d}  mean {s['mean_confidence']:.3f}  flagged "
                      f"{100 * s['flagged']:5.1f}%{extra}")


if __name__ == "__main__":
    main()
