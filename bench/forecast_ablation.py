"""The forecasting ablation of checkpoints/etth1-forecast.md: what matters in the recipe, at equal training time.

Each variant is the `etth1` preset with one change, trained for the same number of minutes at H = 96 (the runs go
one after another, so each has the machine to itself), then scored on validation and test by `evaluate forecast`.
A markdown table is printed and written to OUT/ablation.md; finished runs are reused when the script is rerun.

    python bench/forecast_ablation.py [--minutes 4] [--horizon 96] [--out runs/ablation]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name -> (what changes, extra training options)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "segment-gru": ("the shipped recipe: segments of 24, GRU 512, minus the last value", []),
    "revin": ("RevIN (each window's mean and std) instead of the last value", ["--set", "model.norm=revin"]),
    "no-norm": ("no instance normalisation", ["--set", "model.norm=none"]),
    "lstm": ("LSTM cell instead of GRU", ["--set", "model.rnn.cell=lstm"]),
    "rnn": ("vanilla RNN cell (tanh) instead of GRU", ["--set", "model.rnn.cell=rnn"]),
    "step-wise": ("step by step: one value per recurrent step in and out (seq2seq, GRU 128)",
                  ["--preset", "seq2seq"]),
}


def run(cmd: list[str]) -> str:
    """Run a cli.py command; its stdout (stops the script with the command's own error on failure)."""
    done = subprocess.run([sys.executable, str(ROOT / "cli.py"), *cmd], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: cli.py {' '.join(cmd)}\n{done.stderr.strip()[-2000:]}")
    return done.stdout


def variant(name: str, extra: list[str], args: argparse.Namespace) -> dict:
    """Train one variant (unless its run is finished) and score its best checkpoint on val and test."""
    out = Path(args.out) / name
    preset = [] if "--preset" in extra else ["--preset", "etth1"]
    if not (out / "best.pt").exists() or not (out / "done").exists():
        run(["train", "forecast", "--corpus", "etth1", "--horizon", str(args.horizon), *preset, *extra,
             "--set", f"train.max_minutes={args.minutes}", "--out", str(out)])
        (out / "done").write_text("")
    scores = {}
    for split in ("val", "test"):
        result = json.loads(run(["evaluate", "forecast", "--model", str(out / "best.pt"), "--corpus", "etth1",
                                 "--split", split, "--json"]))
        scores[split] = (result["mse"], result["mae"])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=4.0, help="Training minutes of every variant.")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--out", default=str(ROOT / "runs" / "ablation"))
    parser.add_argument("--only", nargs="*", default=list(VARIANTS), help="Variants to run (default: all).")
    args = parser.parse_args()
    lines = [f"| variant (H = {args.horizon}, {args.minutes:g} minutes each) | val MSE | test MSE (MAE) |",
             "|---|---:|---:|"]
    for name in args.only:
        what, extra = VARIANTS[name]
        scores = variant(name, extra, args)
        lines.append(f"| `{name}`: {what} | {scores['val'][0]:.4f} | {scores['test'][0]:.4f} "
                     f"({scores['test'][1]:.4f}) |")
        print(lines[-1], flush=True)
    table = "\n".join(lines)
    (Path(args.out) / "ablation.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
