"""Memory settings for torch on the CPU, applied by the command line (before torch loads) and by training runs.

A training step allocates and frees the same large tensors every step: the (N, V) logits and their gradient,
the (B, S, A) attention energies, the per-step buffers of the decoder. torch's CPU allocator is glibc malloc,
which serves blocks over 32 MB (and smaller ones, early on) with fresh mmap'd pages and returns them to the OS
on free, so every step pays page faults and the kernel's zeroing of the same memory again. Two settings stop this:

- glibc keeps freed memory in the heap (no mmap for large blocks, no trimming), so blocks are reused;
- torch aligns large blocks to 2 MB and asks for transparent huge pages (THP_MEM_ALLOC_ENABLE), so memory that
  does come from the OS costs one fault per 2 MB instead of per 4 KB.

On the project's 2-core VM the two together take the reference translation model from about 1,700 to about
2,100 target tokens/s (bench/train_speed.py). The cost: the process keeps its peak memory until it exits, which
is why a library import does not apply them; a program that wants them calls `configure()` before importing torch
(`nmt.runs.start_run` calls it too, which still sets malloc but may be too late for the huge-page setting).
Set NMT_ALLOCATOR=system to leave both settings alone.
"""
from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # glibc mallopt parameters (malloc.h)


def configure() -> bool:
    """Apply both settings unless NMT_ALLOCATOR=system; True if glibc accepted them."""
    if os.environ.get("NMT_ALLOCATOR", "") == "system":
        return False
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))
    except (OSError, AttributeError):   # not glibc (macOS, musl): nothing to do
        return False
