"""Data-parallel speedup on this machine: `torchrun --nproc-per-node 2` against one process.

    python bench/ddp_speed.py [--steps 60] [--data-dir DIR]

Trains the reference translation configuration (README) on Multi30k de-en through the CLI three ways and prints
target tokens/s of each (the mean over the logged windows after the first):
  1. one process, all cores, 64 sentences per update;
  2. one process, all cores, 2 batches of 64 accumulated per update (the global batch of 3);
  3. torchrun, 2 processes with half the cores each, 64 sentences each per update (gloo all-reduce);
  4. one process with half the cores, 64 sentences per update: what each torchrun process has to itself.
Runs 2 and 3 compute the same updates, so their ratio is the speedup data parallelism gives on this machine;
3 against 4 is how it scales when each process has cores of its own.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import machine  # noqa: E402


def run(name: str, launch: list[str], extra: list[str], steps: int, data_dir: str | None, folder: Path) -> float:
    out = folder / name
    cmd = launch + ["cli.py", "train", "translate", "--corpus", "multi30k", "--set", "train.batch_tokens=0",
                    "--set", "train.batch_size=64", "--set", "train.log_every=10", "--set", "train.eval_every=100000",
                    "--valid-limit", "16", "--max-steps", str(steps), "--out", str(out), *extra]
    if data_dir:
        cmd += ["--data-dir", data_dir]
    subprocess.run(cmd, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"})
    rates = [r["tokens_per_s"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
             if r["type"] == "train"]
    return sum(rates[1:]) / len(rates[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        one = run("one", [sys.executable], [], args.steps, args.data_dir, folder)
        acc = run("accumulate", [sys.executable], ["--accumulate", "2"], args.steps // 2, args.data_dir, folder)
        half = ["--set", f"train.threads={max(1, cores // 2)}"]
        two = run("torchrun", torchrun, half, args.steps // 2, args.data_dir, folder)
        alone = run("half", [sys.executable], half, args.steps // 2, args.data_dir, folder)
    print(json.dumps({"machine": machine(), "cores": cores,
                      "one_process_tokens_per_s": round(one), "one_process_accumulate_2_tokens_per_s": round(acc),
                      "two_processes_tokens_per_s": round(two), "one_process_half_the_cores_tokens_per_s": round(alone),
                      "speedup_vs_accumulate": round(two / acc, 2), "speedup_vs_one": round(two / one, 2),
                      "speedup_vs_half_the_cores": round(two / alone, 2)}, indent=1))


if __name__ == "__main__":
    main()
