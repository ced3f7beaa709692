"""Threads per workload (nmt/threads.py): each workload timed with 1 thread and with every core, on an idle machine
and beside a competing process (a busy loop holding one core), in alternation within one sitting.

Workloads are CLI commands run in a child process and timed inside it (model loading included, interpreter start
excluded): step-by-step work (sampling 2,000 characters, translating 40 sentences with beam 5, the copy-memory
task's 64-unit LSTM) and batch work (30 training updates of the shipped character model's setup).

    python bench/threads.py [--repeats 2] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def workloads(tmp: Path) -> dict[str, list[str]]:
    from nmt.corpora import multi30k_paths
    from nmt.data import read_lines
    sentences = tmp / "val40.de"
    sentences.write_text("\n".join(read_lines(multi30k_paths("val", "de", "en")[0])[:40]) + "\n", encoding="utf-8")
    return {
        "generate 2,000 chars (step)": ["generate", "-n", "2000", "--seed", "1"],
        "translate 40 sentences, beam 5 (step)": ["translate", "--input", str(sentences)],
        "train copy, LSTM 64, 150 updates (step)": ["train", "copy", "--cells", "lstm", "--lengths", "20",
                                                     "--steps", "150"],
        "train charlm, 30 updates (batch)": ["train", "charlm", "--corpus", "tinyshakespeare", "--preset",
                                             "shakespeare", "--max-steps", "30", "--out", str(tmp / "charlm")],
    }


def child(args: list[str]) -> None:
    """Run one CLI command in this process and print its seconds (output discarded)."""
    import shutil
    from nmt.cli import app
    if "--out" in args:
        shutil.rmtree(args[args.index("--out") + 1], ignore_errors=True)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            app(args, standalone_mode=False)
        except SystemExit:
            pass
    print(json.dumps({"seconds": time.perf_counter() - start}))


def timed(args: list[str], threads: int) -> float:
    env = {**os.environ, "NMT_THREADS": str(threads)}
    done = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True, env=env,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


@contextlib.contextmanager
def competing(on: bool):
    """A busy loop on one core for the duration (nothing when `on` is False)."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc:
            proc.kill()
            proc.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        jobs = workloads(Path(tmp))
        for name, cmd in jobs.items():
            for busy in (False, True):
                with competing(busy):
                    runs = {1: [], cores: []}
                    for _ in range(args.repeats):          # alternate 1 and all threads
                        for n in runs:
                            runs[n].append(timed(cmd, n))
                results[(name, busy)] = {n: statistics.median(v) for n, v in runs.items()}
                print(f"{name:42s} {'busy' if busy else 'idle'}  " +
                      "  ".join(f"{n} thread(s) {s:6.2f} s" for n, s in results[(name, busy)].items()), flush=True)
    if args.json:
        print(json.dumps([{"workload": k[0], "competing_process": k[1], "seconds": v} for k, v in results.items()]))


if __name__ == "__main__":
    main()
