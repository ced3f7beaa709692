"""Translation speed of a shipped model: sentences/s on Multi30k test_2016 (1000 sentences), greedy and beam 5,
peak memory of each run (a fresh process each), and the wall time of `cli.py translate` for one sentence from a
cold start.

    python bench/translate_speed.py [--model checkpoints/everyday-de-en.pt]
    python bench/translate_speed.py --model A.pt --compare B.pt [--rounds 3]

With --compare, the two models run alternately (A, B, A, B, ...) for --rounds rounds in one sitting, and the
ratio B/A of each round's sentences/s is printed beside the medians: on a noisy shared machine a ratio measured
side by side is the only comparison that holds.
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


def fresh_run(model: str, beam: int, data_dir: str | None) -> dict:
    """`run_one` in a fresh process."""
    cmd = [sys.executable, __file__, "--model", model, "--one", str(beam)] + (["--data-dir", data_dir] if data_dir
                                                                               else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(first: str, second: str, rounds: int, data_dir: str | None) -> dict:
    """Both models alternately, greedy and beam 5, `rounds` times: each run, the medians and the per-round ratios
    second/first of sentences/s."""
    import statistics
    from bench.common import machine
    runs: dict[str, dict[str, list]] = {m: {"greedy": [], "beam5": []} for m in (first, second)}
    for _ in range(rounds):
        for beam, key in ((1, "greedy"), (5, "beam5")):
            for model in (first, second):
                runs[model][key].append(fresh_run(model, beam, data_dir))
    result = {"machine": machine(), "rounds": rounds, "models": [first, second]}
    for key in ("greedy", "beam5"):
        speed = {m: [r["sentences_per_s"] for r in runs[m][key]] for m in runs}
        ratios = [b / a for a, b in zip(speed[first], speed[second])]
        result[key] = {"sentences_per_s": speed, "peak_rss_mb": {m: [r["peak_rss_mb"] for r in runs[m][key]]
                                                                for m in runs},
                       "median_sentences_per_s": {m: statistics.median(v) for m, v in speed.items()},
                       "ratio_second_over_first": [round(r, 3) for r in ratios],
                       "median_ratio": round(statistics.median(ratios), 3)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "everyday-de-en.pt"))
    parser.add_argument("--compare", default=None, help="A second model, run alternately with --model.")
    parser.add_argument("--rounds", type=int, default=3, help="With --compare: alternations of the two models.")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)   # internal: one run, this process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.model, args.one, args.data_dir)))
        return
    if args.compare:
        print(json.dumps(compare(args.model, args.compare, args.rounds, args.data_dir), indent=1))
        return
    from bench.common import machine
    results = {"machine": machine(), "model": args.model}
    for beam in (1, 5):
        results["greedy" if beam == 1 else "beam5"] = fresh_run(args.model, beam, args.data_dir)
    from bench.common import cold_start_seconds
    cold = cold_start_seconds(["translate", "-m", args.model, "Ein Mann fährt Fahrrad."])
    results["cold_start_one_sentence_s"] = round(cold, 2)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
