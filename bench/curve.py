"""Print a run's validation curve (minutes, step, metrics) from its metrics.jsonl as a Markdown table.

    python bench/curve.py runs/multi30k-de-en [--every N]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--every", type=int, default=1, help="show every N-th validation (and the last)")
    args = parser.parse_args()
    records = [json.loads(line) for line in (args.run_dir / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    if not valid:
        raise SystemExit(f"{args.run_dir}: no validation records yet")
    keys = [k for k in valid[0] if k not in ("type", "step", "epoch", "time", "score", "best", "train_minutes")]
    print("| minutes | step | epoch | " + " | ".join(keys) + " |")
    print("|---:|---:|---:|" + "---:|" * len(keys))
    for i, r in enumerate(valid):
        if i % args.every == 0 or i == len(valid) - 1:
            cells = [f"{r[k]:.4f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
            print(f"| {r['train_minutes']:.1f} | {r['step']} | {r['epoch']} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
