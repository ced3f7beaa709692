"""How well the translator's confidence tells its own domain (image captions) from other text: the numbers behind
the out-of-domain warning of `translate` (checkpoints/multi30k-*.md).

Confidence is the mean log-probability per output token of the beam-5 translation (Translator.confidence). The
threshold is `translate`'s default (DecodeConfig.warn_confidence, -1.0), or with --percentile P the P-th percentile
of each model's confidences on Multi30k val; the share of val captions flagged, and precision and recall against
out-of-domain sentences, are measured at it:
  de-en: data/ood/de-news-everyday.txt (40 German news, office and everyday sentences written for this test);
  en-de: 100 sentences each of Gigaword news, TREC questions, SST-2 film reviews and AESLC e-mails (../shared/data).

    python bench/translate_ood.py [--json]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def out_of_domain(direction: str, data_dir: Path | None) -> dict[str, list[str]]:
    """Named sets of sentences in the model's source language that are not image captions."""
    if direction == "de-en":
        lines = (ROOT / "data" / "ood" / "de-news-everyday.txt").read_text(encoding="utf-8").splitlines()
        return {"German news, office, everyday": [x for x in lines if x.strip()]}
    from nmt.corpora import data_root
    root = data_root("gigaword", data_dir)
    first = lambda path, n, f=lambda x: x: [f(x) for x in path.read_text(encoding="utf-8").splitlines()[:n]]  # noqa
    emails = [json.loads(x)["email_body"] for x in (root / "aeslc" / "train.jsonl").open(encoding="utf-8")][:100]
    return {
        "Gigaword news": first(root / "gigaword" / "dev_4k" / "valid.article.filter.4K.txt", 100),
        "TREC questions": first(root / "trec" / "train.txt", 100, lambda x: x.split(" ", 1)[1]),
        "SST-2 reviews": first(root / "sst2" / "train.txt", 100, lambda x: x.split(" ", 1)[1]),
        "AESLC e-mails (first sentence)": [e.strip().split(". ")[0][:300] for e in emails],
    }


def measure(direction: str, data_dir: Path | None, percentile: float | None) -> dict:
    from nmt import tasks
    from nmt.config import DecodeConfig
    from nmt.corpora import multi30k_paths
    from nmt.data import read_lines
    translator = tasks.module("translate").RUNNER.load(ROOT / "checkpoints" / f"multi30k-{direction}.pt")
    decode = DecodeConfig()
    src_path, _ = multi30k_paths("val", *direction.split("-"), data_dir)
    val = [x for x in read_lines(src_path) if x.strip()]

    def confidences(lines):
        hyps = translator.translate_hyps(lines, decode)
        return translator.confidence(lines, [h[0].tokens for h in hyps], decode)

    inside = sorted(confidences(val))
    threshold = decode.warn_confidence if percentile is None else inside[int(percentile / 100 * len(inside))]
    result = {"direction": direction, "threshold": round(threshold, 3), "val_sentences": len(inside),
              "val_flagged": sum(c < threshold for c in inside) / len(inside), "sets": {}}
    flagged_in = sum(c < threshold for c in inside)
    for name, lines in out_of_domain(direction, data_dir).items():
        scores = confidences(lines)
        hits = sum(c < threshold for c in scores)
        result["sets"][name] = {"sentences": len(lines), "recall": hits / len(lines),
                                "precision_equal_mix": hits / max(1, hits + flagged_in * len(lines) / len(inside)),
                                "mean_confidence": sum(scores) / len(scores)}
    result["val_mean_confidence"] = sum(inside) / len(inside)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--percentile", type=float, default=None, help="Threshold at this percentile of val.")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = [measure(d, args.data_dir, args.percentile) for d in ("de-en", "en-de")]
    if args.json:
        print(json.dumps(results, indent=1))
        return
    for r in results:
        print(f"{r['direction']}: threshold {r['threshold']:.3f}; {r['val_sentences']} val captions: mean "
              f"{r['val_mean_confidence']:.3f}, flagged {100 * r['val_flagged']:.1f}%")
        for name, s in r["sets"].items():
            print(f"  {name:32s} n={s['sentences']:4d}  mean {s['mean_confidence']:.3f}  recall "
                  f"{100 * s['recall']:5.1f}%  precision (equal mix with val) {100 * s['precision_equal_mix']:5.1f}%")


if __name__ == "__main__":
    main()
