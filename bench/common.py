"""Shared helpers for the benchmarks: the machine's measured matmul rate and memory bandwidth, a FLOP counter."""
from __future__ import annotations

import os
import platform
import time

import torch


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    """Measured float32 matrix-multiply rate (GFLOP/s) of this machine with torch's current thread count."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def copy_bandwidth_gbs(mbytes: int = 256, repeats: int = 10) -> float:
    """Measured memory-copy bandwidth (GB/s, bytes read + written) for arrays far larger than the caches."""
    src = torch.empty(mbytes * 2 ** 20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    return 2 * src.numel() * 4 * repeats / (time.perf_counter() - start) / 1e9


def count_flops(fn) -> int:
    """FLOPs of everything `fn()` runs (forward and backward), counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cold_start_seconds(cli_args: list[str], repeats: int = 3) -> float:
    """Best wall time of `python cli.py ARGS...` in a fresh process (imports, model load, one call)."""
    import subprocess
    import sys
    from pathlib import Path
    cli = Path(__file__).resolve().parents[1] / "cli.py"
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(cli), *cli_args], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return min(times)
