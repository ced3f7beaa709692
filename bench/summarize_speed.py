"""Summarisation speed of a shipped model: documents/s over the AESLC dev set (1,960 emails) with beam 4, and
peak memory (fresh process) summarising one 2,000-word document.

    python bench/summarize_speed.py [--model checkpoints/aeslc-summarizer.pt]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def long_document(words: int = 2000) -> str:
    from nmt.tasks.summarize import read_pairs
    text = " ".join(d for d, _ in read_pairs("aeslc", "dev", tgt_fields=("subject_line",))[:200])
    return " ".join(text.split()[:words])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "aeslc-summarizer.pt"))
    parser.add_argument("--beam", type=int, default=4)
    parser.add_argument("--long", action="store_true", help=argparse.SUPPRESS)    # internal: the memory run
    args = parser.parse_args()
    from bench.common import machine, peak_rss_mb
    from nmt.config import SummaryDecodeConfig
    from nmt.tasks.summarize import Summarizer, read_pairs
    summarizer = Summarizer.load(args.model)
    decode = SummaryDecodeConfig(beam=args.beam)
    if args.long:
        baseline = peak_rss_mb()
        summarizer.summarize([long_document()], decode)
        print(json.dumps({"peak_rss_mb": round(peak_rss_mb()), "before_mb": round(baseline)}))
        return
    documents = [d for d, _ in read_pairs("aeslc", "dev", tgt_fields=("subject_line",))]
    summarizer.summarize(documents[:64], decode)                       # warm-up
    start = time.perf_counter()
    summarizer.summarize(documents, decode)
    seconds = time.perf_counter() - start
    result = {"machine": machine(), "model": args.model, "beam": args.beam, "documents": len(documents),
              "seconds": round(seconds, 2), "documents_per_s": round(len(documents) / seconds, 1)}
    out = subprocess.run([sys.executable, __file__, "--model", args.model, "--long"], capture_output=True,
                         text=True, check=True).stdout
    result["long_2000_words"] = json.loads(out.strip().splitlines()[-1])
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
