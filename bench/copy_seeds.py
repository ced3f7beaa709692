"""The copy-memory table of the README: `train copy` over several seeds, each cell's accuracy at each T as the
range (min-max) and median over the seeds, since one seed's number moves from run to run.

    python bench/copy_seeds.py [--seeds 0,1,2,3,4] [--cells rnn,lstm,gru] [--lengths 5,10,20,40] [--steps 400]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--cells", default="rnn,lstm,gru")
    parser.add_argument("--lengths", default="5,10,20,40")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    scores: dict[tuple[str, int], list[float]] = {}
    seeds = [int(s) for s in args.seeds.split(",")]
    for seed in seeds:
        done = subprocess.run([sys.executable, str(ROOT / "cli.py"), "train", "copy", "--cells", args.cells,
                               "--lengths", args.lengths, "--steps", str(args.steps), "--seed", str(seed), "--json"],
                              capture_output=True, text=True, check=True)
        for r in json.loads(done.stdout):
            scores.setdefault((r["cell"], r["length"]), []).append(r["accuracy"])
        print(f"seed {seed} done", file=sys.stderr, flush=True)
    lengths = [int(t) for t in args.lengths.split(",")]
    print(f"| cell | {' | '.join(f'T={t}' for t in lengths)} |")
    print("|---|" + "---:|" * len(lengths))
    for cell in args.cells.split(","):
        cells = []
        for t in lengths:
            v = scores[(cell, t)]
            cells.append(f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})")
        print(f"| {cell} | {' | '.join(cells)} |")
    print(f"median (min-max) over seeds {args.seeds}, {args.steps} updates")


if __name__ == "__main__":
    main()
