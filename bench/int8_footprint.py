"""Size on disk and memory of every shipped checkpoint against its int8 release, and of `serve` with all of them.

For each checkpoint in checkpoints/ the bench writes its int8 release (`cli.py export M OUT --quantize int8`) into
--work, then runs the task's command on one input with each file, alternately, each in a fresh process, and reads
that process's peak RSS (os.wait4). With --serve it also starts `cli.py serve` once with the shipped default models
and once with their int8 releases (`--models task=FILE,...`), waits for /health, and reads the server's RSS.

    python bench/int8_footprint.py [--rounds 2] [--work DIR] [--serve] [--markdown]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CKPT = ROOT / "checkpoints"

from bench.quantize import COMMAND as QUANTIZE_COMMAND  # noqa: E402

# one input per task, as a newcomer runs it: bench/quantize.py's, and the names generator's
COMMAND = QUANTIZE_COMMAND | {"namegen": ["generate", "--num-samples", "5", "--seed", "1"]}


def peak_rss_mb(args: list[str]) -> float:
    """Peak RSS (MB) of `python cli.py ARGS...` run to its end in a fresh process."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if status:
        raise SystemExit(f"cli.py {' '.join(args)} failed: {proc.stderr.read().decode()[-300:]}")
    return usage.ru_maxrss / 1024


def command(path: Path) -> list[str]:
    """The task's command on one input, with -m PATH (a conditional names generator is given a language)."""
    from nmt import checkpoint
    ckpt = checkpoint.load(path)
    args = COMMAND[ckpt.task][1:]
    if ckpt.task == "namegen" and "Russian" in ckpt.config["conditions"]:
        args = [*args, "--condition", "Russian"]
    return [COMMAND[ckpt.task][0], "-m", str(path), *args]


def export_int8(path: Path, work: Path) -> Path:
    out = work / f"{path.stem}-int8.pt"
    if not out.exists():
        subprocess.run([sys.executable, str(ROOT / "cli.py"), "export", str(path), str(out), "--quantize", "int8"],
                       check=True, capture_output=True)
    return out


def footprint(path: Path, work: Path, rounds: int) -> dict:
    """Size on disk and peak RSS of one input's command, float release against int8, alternated."""
    int8 = export_int8(path, work)
    commands = {"float": command(path), "int8": command(int8)}
    rss: dict[str, list[float]] = {"float": [], "int8": []}
    for _ in range(rounds):
        for variant in rss:
            rss[variant].append(peak_rss_mb(commands[variant]))
    return {"model": path.stem, "task": commands["float"][0], "size_mb": {"float": path.stat().st_size / 1e6,
                                                           "int8": int8.stat().st_size / 1e6},
            "rss_mb": {k: statistics.median(v) for k, v in rss.items()}}


def server_rss_mb(models: dict[str, Path], port: int, timeout: float = 120) -> float:
    """RSS (MB) of `cli.py serve` with these models once /health answers."""
    spec = ",".join(f"{task}={path}" for task, path in models.items())
    proc = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--models", spec, "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("serve did not answer /health in time")
        status = Path(f"/proc/{proc.pid}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS"))) / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="Alternations float, int8 per model.")
    parser.add_argument("--work", type=Path, default=None, help="Folder for the int8 releases (default: temporary).")
    parser.add_argument("--serve", action="store_true", help="Also measure `serve` with every default model.")
    parser.add_argument("--port", type=int, default=8391)
    parser.add_argument("--markdown", action="store_true", help="Print Markdown tables (for the README and cards).")
    args = parser.parse_args()
    from bench.common import machine
    work = args.work or Path(tempfile.mkdtemp(prefix="int8-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = [footprint(path, work, args.rounds) for path in sorted(CKPT.glob("*.pt"))]
    result = {"machine": machine(), "rounds": args.rounds, "models": rows}
    if args.serve:
        from nmt.tasks import SHIPPED
        floats = {task: path for task, path in SHIPPED.items() if path.is_file()}
        int8s = {task: export_int8(path, work) for task, path in floats.items()}
        result["serve_rss_mb"] = {"float": server_rss_mb(floats, args.port), "int8": server_rss_mb(int8s, args.port)}
    if not args.markdown:
        print(json.dumps(result, indent=1))
        return
    print("| model | task | size MB float | size MB int8 | peak RSS MB float | peak RSS MB int8 |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['task']} | {r['size_mb']['float']:.1f} | {r['size_mb']['int8']:.1f} | "
              f"{r['rss_mb']['float']:.0f} | {r['rss_mb']['int8']:.0f} |")
    if args.serve:
        s = result["serve_rss_mb"]
        print(f"\n`serve` with every default model: {s['float']:.0f} MB (float releases), {s['int8']:.0f} MB (int8)")
    print(f"\n{result['machine']}; {args.rounds} round(s) alternated; peak RSS of one input's command, median")


if __name__ == "__main__":
    main()
