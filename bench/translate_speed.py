"""Translation speed of a shipped model: sentences/s on Multi30k test_2016 (1000 sentences), greedy and beam 5,
peak memory of each run (a fresh process each), and the wall time of `cli.py translate` for one sentence from a
cold start.

    python bench/translate_speed.py [--model checkpoints/multi30k-de-en.pt]
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


def run_one(model: str, beam: int, data_dir: str | None) -> dict:
    """Translate the test set once in this process; print sentences/s and peak RSS as JSON."""
    import torch
    from bench.common import peak_rss_mb
    from nmt.config import DecodeConfig
    from nmt.corpora import corpus_files
    from nmt.data import read_lines
    from nmt.tasks.translate import Translator
    torch.set_num_threads(torch.get_num_threads())
    src_path = corpus_files("multi30k", "test_2016_flickr", data_dir)["paths"][0]
    lines = read_lines(src_path)
    translator = Translator.load(model)
    translator.translate(lines[:64], DecodeConfig(beam=beam))          # warm-up
    start = time.perf_counter()
    translator.translate(lines, DecodeConfig(beam=beam))
    seconds = time.perf_counter() - start
    return {"beam": beam, "sentences": len(lines), "seconds": round(seconds, 2),
            "sentences_per_s": round(len(lines) / seconds, 1), "peak_rss_mb": round(peak_rss_mb())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "multi30k-de-en.pt"))
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)   # internal: one run, this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.model, args.one, args.data_dir)))
        return
    from bench.common import machine
    results = {"machine": machine(), "model": args.model}
    for beam in (1, 5):
        cmd = [sys.executable, __file__, "--model", args.model, "--one", str(beam)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        results["greedy" if beam == 1 else "beam5"] = json.loads(out.strip().splitlines()[-1])
    from bench.common import cold_start_seconds
    cold = cold_start_seconds(["translate", "-m", args.model, "Ein Mann fährt Fahrrad."])
    results["cold_start_one_sentence_s"] = round(cold, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
