"""Tagging speed of a shipped tagger: sentences/s over the CoNLL-2003 dev set (3,250 sentences) in batches,
the wall time of `cli.py tag` for one sentence from a cold start, and training minutes per epoch read from a
run folder's metrics.jsonl when one is given.

    python bench/tag_speed.py [--model checkpoints/conll2003-ner.pt] [--run runs/conll2003]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def epoch_minutes(run: Path) -> float | None:
    """Training minutes per epoch: train time at the last validation over the epochs it had run."""
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in rows if r.get("type") == "valid"]
    train = [r for r in rows if r.get("type") == "train"]
    if not valid or not train:
        return None
    steps_per_epoch = max(r["step"] for r in train if r["epoch"] == 0) if any(r["epoch"] == 0 for r in train) else 0
    last = valid[-1]
    epochs = last["step"] / steps_per_epoch if steps_per_epoch else max(1, last["epoch"])
    return last["train_minutes"] / epochs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "conll2003-ner.pt"))
    parser.add_argument("--run", default=None, help="Run folder whose metrics.jsonl gives minutes per epoch.")
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    from bench.common import cold_start_seconds, machine, peak_rss_mb
    from nmt.corpora import corpus_files
    from nmt.tasks.tag import NERTagger, read_tagged
    sentences = [w for w, _ in read_tagged(corpus_files("conll2003", "dev")["paths"][0])]
    NERTagger.load(args.model).tag(sentences[:256])                      # warm-up (torch kernels, allocator)
    tagger = NERTagger.load(args.model)                                  # fresh: no word seen before timing
    tagger.setup.data.eval_batch_size = args.batch_size
    start = time.perf_counter()
    tagger.tag(sentences)
    seconds = time.perf_counter() - start
    result = {"machine": machine(), "model": args.model, "sentences": len(sentences),
              "words": sum(map(len, sentences)), "seconds": round(seconds, 2),
              "sentences_per_s": round(len(sentences) / seconds), "peak_rss_mb": round(peak_rss_mb())}
    cold = cold_start_seconds(["tag", "-m", args.model, "Angela Merkel met Emmanuel Macron in Paris."])
    result["cold_start_s"] = round(cold, 2)
    if args.run:
        result["train_minutes_per_epoch"] = round(epoch_minutes(Path(args.run)), 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
