"""Many-to-one and one-to-many speed: sentences/s of a shipped classifier over the SST-2 training sentences
(6,920) in batches, the wall time of `cli.py classify` for one sentence from a cold start, and names/s sampled
by the names generator (plus its cold start).

    python bench/classify_speed.py [--model checkpoints/sst2-sentiment.pt] [--generator checkpoints/names-generator.pt]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(fn, repeats: int) -> float:
    """The shortest wall time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def classify_speed(model: str, repeats: int) -> dict:
    from nmt.tasks.classify import TextClassifier, corpus_pairs
    classifier = TextClassifier.load(model)
    texts = [t for _, t in corpus_pairs("sst2", "train", classifier.setup.data)]
    classifier.predict(texts[:512])                                              # warm-up
    seconds = best_of(lambda: classifier.predict(texts), repeats)
    return {"model": model, "sentences": len(texts), "seconds": round(seconds, 3),
            "sentences_per_s": round(len(texts) / seconds),
            "batch_size": classifier.setup.data.eval_batch_size}


def generation_speed(model: str, repeats: int) -> dict:
    from nmt.config import SampleConfig
    from nmt.tasks.namegen import NameSampler
    sampler = NameSampler.load(model)
    condition = "Russian" if "Russian" in sampler.conditions else sampler.conditions[0]
    result = {"model": model, "condition": condition}
    for n in (1, 100, 1000):
        options = SampleConfig(num_samples=n, temperature=1.0)
        sampler.sample(condition, options, seed=0)                                # warm-up
        seconds = best_of(lambda: sampler.sample(condition, options, seed=1), repeats)
        result[f"names_per_s_batch_{n}"] = round(n / seconds, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "sst2-sentiment.pt"))
    parser.add_argument("--generator", default=str(ROOT / "checkpoints" / "names-generator.pt"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, all cores)")
    args = parser.parse_args()
    if args.threads:
        import torch
        torch.set_num_threads(args.threads)
    from bench.common import cold_start_seconds, machine, peak_rss_mb
    result = {"machine": machine(), "classify": classify_speed(args.model, args.repeats)}
    result["classify"]["cold_start_s"] = round(cold_start_seconds(
        ["classify", "-m", args.model, "a gripping , beautifully acted film"]), 2)
    if Path(args.generator).exists():
        result["generate"] = generation_speed(args.generator, args.repeats)
        result["generate"]["cold_start_s"] = round(cold_start_seconds(
            ["generate", "-m", args.generator, "--condition", result["generate"]["condition"], "--num-samples",
             "10", "--seed", "1"]), 2)
    result["peak_rss_mb"] = round(peak_rss_mb())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
