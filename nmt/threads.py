"""How many torch threads a process uses, chosen per workload.

Step-by-step work (sampling characters, greedy or beam decoding of a few sentences, one-stream evaluation, small
models) runs a long chain of small products: a second thread saves little on an idle machine and, when another
process holds a core, each step waits for the slower thread, which made such work 7-14x slower on a busy 2-core
machine. So step-by-step work uses one thread. Batch work (training, scoring whole files in batches) uses this
process's share of the cores less those that other processes keep busy (the 1-minute load average when it
starts): training the character model took 39 s with 2 threads and 66 s with 1 on an idle 2-core machine, but
95 s with 2 and 65 s with 1 beside one busy process. `--threads N` (every command) or NMT_THREADS=N overrides the
choice; `bench/threads.py` measures it on an idle machine and beside a competing process.
"""
from __future__ import annotations

import os
from typing import Literal

import torch

ENV = "NMT_THREADS"
Workload = Literal["step", "batch"]


class ThreadsError(ValueError):
    """NMT_THREADS is not a whole number of threads."""


def requested() -> int:
    """The thread count asked for by NMT_THREADS (0: none asked for)."""
    value = os.environ.get(ENV, "").strip()
    if not value:
        return 0
    if not value.isdigit() or not 0 <= int(value) <= 1024:
        raise ThreadsError(f"{ENV} must be a number of threads between 1 and 1024 (0: choose), got '{value}'")
    return int(value)


def choose(workload: Workload, explicit: int = 0, processes: int = 1) -> int:
    """The thread count for a workload: `explicit` (e.g. train.threads), else NMT_THREADS, else 1 for step-by-step
    work and this process's share of the cores for batch work."""
    asked = explicit or requested()
    if asked:
        return asked
    if workload == "step":
        return 1
    cores = os.cpu_count() or 1
    return max(1, min(cores // processes, cores - busy_cores()))


def busy_cores() -> int:
    """Cores kept busy by other processes now: the 1-minute load average, rounded (0 where unknown)."""
    try:
        return round(os.getloadavg()[0])
    except (OSError, AttributeError):
        return 0


def use(workload: Workload, explicit: int = 0, processes: int = 1) -> int:
    """Set torch's intra-op threads for the workload (see `choose`); returns the count."""
    n = choose(workload, explicit, processes)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
