"""Dynamic evaluation of the character model, tuned and reported on separate text: the SGD rate and the decay
back to the trained weights are chosen on the first half of the validation text (the last 10% of tiny
Shakespeare), then the static and the dynamic loss are reported on the second half, and on the whole of it.
Dynamic evaluation lets the model learn from what it has just read, so its number is not comparable with the
static one that the shipped models are held to; it is reported beside it, labelled.

    python bench/dynamic_eval.py [--model checkpoints/shakespeare-charlm.pt] [--lrs 0.01,0.03,0.1,0.3] [--decays 0,0.01]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "shakespeare-charlm.pt"))
    parser.add_argument("--corpus", default="tinyshakespeare")
    parser.add_argument("--lrs", default="0.01,0.03,0.1,0.3", help="SGD rates tried on the first half.")
    parser.add_argument("--decays", default="0,0.01", help="Decays tried on the first half.")
    args = parser.parse_args()
    from bench.common import machine
    from nmt import corpora, data
    from nmt.tasks.charlm import TextGenerator, split_text
    generator = TextGenerator.load(args.model)
    path = corpora.corpus_files(args.corpus, "val", None)["paths"][0]
    text = split_text(data.read_text(path), generator.setup.data.train_share)[1]
    first, second = text[: len(text) // 2], text[len(text) // 2:]
    tried = []
    for lr in (float(x) for x in args.lrs.split(",")):
        for decay in (float(x) for x in args.decays.split(",")):
            start = time.perf_counter()
            loss = generator.evaluate(first, lr, decay)["loss"]
            tried.append({"lr": lr, "decay": decay, "first_half": loss, "seconds": time.perf_counter() - start})
            print(f"first half: lr {lr:g} decay {decay:g}: {loss:.4f} nats/char", file=sys.stderr)
    best = min(tried, key=lambda t: t["first_half"])
    result = {"machine": machine(), "model": args.model, "tried": tried, "chosen": best,
              "static_first_half": generator.evaluate(first)["loss"]}
    for name, part in (("second_half", second), ("whole", text)):
        result[name] = {"characters": len(part), "static": generator.evaluate(part)["loss"],
                        "dynamic": generator.evaluate(part, best["lr"], best["decay"])["loss"]}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
