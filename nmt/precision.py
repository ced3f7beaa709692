"""Numeric precision of training and inference: where bfloat16 pays, and the autocast context for it.

bfloat16 halves the bytes each product reads and, on hardware that multiplies it natively (GPUs that support it,
CPUs with AVX512-BF16 or AMX), runs the matrix products about 1.6-2x faster; the weights, the optimizer and the
loss stay in float32 (mixed precision). Elsewhere bfloat16 is emulated and slower than float32.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

import torch

PRECISIONS = ("auto", "native", "bfloat16", "float32")


@functools.lru_cache(maxsize=1)
def cpu_bfloat16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def uses_bfloat16(device: torch.device, precision: str = "auto") -> bool:
    """auto: bfloat16 on GPUs that support it, float32 on CPUs; native: bfloat16 wherever the device has it
    natively (CPUs with AVX512-BF16 or AMX too); bfloat16: always; float32: never."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision '{precision}' (expected one of {', '.join(PRECISIONS)})")
    gpu_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if precision == "auto":
        return gpu_bf16
    if precision == "native":
        return gpu_bf16 or (device.type == "cpu" and cpu_bfloat16())
    return precision == "bfloat16"


def autocast(device: torch.device, precision: str = "auto"):
    """Mixed precision for a forward pass (and the backward that follows it) under `precision`."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                          enabled=uses_bfloat16(device, precision))
