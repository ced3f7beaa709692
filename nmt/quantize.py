"""Int8 weights: per-row symmetric quantisation of a checkpoint's matrices, and int8 matrix products for the
layers that dominate inference.

An int8 checkpoint stores each quantised matrix W (R, C) under its own name as int8 values q (R, C) and, under
`name + SCALE`, one float32 scale per row (R,), with W ~ q * scale[:, None] and scale = max |W_row| / 127.
Loading dequantises, so every model builds and runs exactly as before with the int8 rounding in its weights (the
quality an int8 model reaches is that of these weights); models that have a `use_int8(parts)` method then swap
their hot products for `Int8Linear`, which multiplies the very same int8 values on fbgemm's int8 kernels (about
4x a float32 product of the same shape on one AVX2 core), quantising the activations row by row on the fly
(dynamic quantisation, 7 bits so that AVX2's 16-bit pair sums cannot saturate).
"""
from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

SCALE = ".int8_scale"        # suffix of a quantised matrix's per-row scales in a state dict
MIN_ELEMENTS = 4096          # smaller matrices (a CRF's transitions, tiny heads) stay float


def quantize_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A copy of a state dict with every float matrix of MIN_ELEMENTS or more as int8 + per-row scales. Tied
    weights (one tensor under several names) stay one tensor."""
    done: dict[tuple, tuple[Tensor, Tensor]] = {}
    out = {}
    for name, t in state.items():
        if t.is_floating_point() and t.dim() == 2 and t.numel() >= MIN_ELEMENTS:
            key = (t.data_ptr(), t.shape, t.stride(), t.dtype)
            if key not in done:
                done[key] = quantize_rows(t.float())
            out[name], out[name + SCALE] = done[key]
        else:
            out[name] = t
    return out


def quantize_rows(w: Tensor) -> tuple[Tensor, Tensor]:
    """w (R, C) float -> int8 values (R, C) and float32 scales (R,): symmetric, one scale per row."""
    scale = (w.abs().amax(dim=1) / 127).clamp(min=1e-12)                        # (R,)
    q = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)        # (R, C)
    return q, scale


def is_quantized(state: dict) -> bool:
    """Whether a state dict holds int8 matrices."""
    return any(name.endswith(SCALE) for name in state)


def is_int8(ckpt) -> bool:
    """Whether a checkpoint was exported with --quantize int8 (even a model too small to hold an int8 matrix)."""
    return is_quantized(ckpt.model) or str(ckpt.meta.get("quantized", "")).startswith("int8")


def int8_parts(state: dict[str, Tensor]) -> dict[str, tuple[Tensor, Tensor]]:
    """name -> (int8 values, scales) of each quantised matrix."""
    return {name[: -len(SCALE)]: (state[name[: -len(SCALE)]], t) for name, t in state.items() if name.endswith(SCALE)}


def dequantize_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """The state dict a float model loads: int8 matrices as float32 q * scale, the scales dropped, tied weights
    still one tensor."""
    done: dict[tuple, Tensor] = {}
    out = {}
    for name, t in state.items():
        if name.endswith(SCALE):
            continue
        scale = state.get(name + SCALE)
        if scale is not None:
            key = (t.data_ptr(), t.shape)
            if key not in done:
                done[key] = t.float() * scale.float()[:, None]
            t = done[key]
        out[name] = t
    return out


def _packed(q: Tensor, scale: Tensor, bias: Tensor | None):
    """fbgemm's prepacked int8 weight of values q (R, C) with row scales (R,)."""
    with warnings.catch_warnings():     # torch marks quantised tensors as deprecated; its int8 kernels remain
        warnings.simplefilter("ignore")
        weight = torch._make_per_channel_quantized_tensor(q.contiguous(), scale.double(),
                                                          torch.zeros(q.size(0), dtype=torch.long), 0)
        return torch.ops.quantized.linear_prepack(weight, None if bias is None else bias.float())


class Int8Linear(nn.Module):
    """y = x W^T + b with W in int8 (per-row scales) and x quantised on the fly; x (..., C) -> (..., R).
    Inference only (no gradient)."""

    def __init__(self, q: Tensor, scale: Tensor, bias: Tensor | None = None):
        super().__init__()
        self.out_features, self.in_features = q.shape
        self._packed = _packed(q, scale, bias)

    @classmethod
    def of(cls, linear: nn.Linear, parts: dict[str, tuple[Tensor, Tensor]], name: str) -> nn.Module:
        """An Int8Linear for `linear` from the checkpoint's int8 values of `name + '.weight'`; the float layer
        itself when that weight was not quantised."""
        if name + ".weight" not in parts:
            return linear
        return cls(*parts[name + ".weight"], linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:                        # (N, C) as it comes: a sampling step calls this per character
            return torch.ops.quantized.linear_dynamic(x, self._packed, True)
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, self.in_features), self._packed, True)  # (N, R)
        return y.view(*x.shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, int8"


def size_report(state: dict[str, Tensor]) -> dict[str, int]:
    """Bytes of the distinct tensors of a state dict, and how many of them are int8."""
    seen, total, int8 = set(), 0, 0
    for t in state.values():
        key = (t.data_ptr(), t.shape)
        if key not in seen:
            seen.add(key)
            total += t.numel() * t.element_size()
            int8 += t.numel() if t.dtype == torch.int8 else 0
    return {"bytes": total, "int8_bytes": int8}
