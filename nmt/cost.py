"""The course's cost claims, measured: backpropagation through time is O(T) in time and in memory, and recurrent
computation is slow because its T steps must run one after another.

Each layer maps (B, T, H) -> (B, T, H): a recurrent cell (rnn, lstm, gru, through `Recurrent`, any impl), a 1-D
convolution of kernel 3 over time (`conv`) and one head of self-attention (`attention`). For each length T we time
one forward (no graph) and one forward + backward (the median of `repeats` runs after a warm-up), and count the
memory backward needs: the bytes of the tensors autograd saves for it (`SavedTensors`). A least-squares line
through log cost against log T gives the exponent k of cost ~ T^k (`fit_exponent`).

Why the cells are slow: a^t needs a^{t-1}, so the critical path is T small steps in sequence, each too small to
keep the machine's parallel units busy, however many there are; the convolution and attention compute every
position in one large product (critical path 1). Attention pays for that with a (B, T, T) weight matrix: its time
and memory grow as T^2 once T is large. Truncated BPTT (chunks of K steps, the state detached between chunks)
keeps the memory of backward at one chunk's (flat in T) while the time stays O(T).
Shapes: B batch, T steps, H hidden (the width of every layer and its input), K chunk length.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from typing import Callable, Iterable

import torch
from torch import Tensor, nn

from nmt.config import CostConfig, RNNConfig
from nmt.models.cells import GATES
from nmt.models.rnn import Recurrent

RECURRENT = tuple(GATES)                 # rnn, lstm, gru
MEMORY_METHOD = ("bytes of the tensors autograd saves for backward (torch.autograd.graph.saved_tensors_hooks), each "
                 "storage counted once over the span its saved views reach; parameters excluded")


# --- the layers ---------------------------------------------------------------------------------------------------

class CellLayer(nn.Module):
    """One recurrent layer (unidirectional) of width H over an input of width H."""

    def __init__(self, cell: str, hidden: int, impl: str):
        super().__init__()
        self.rnn = Recurrent(RNNConfig(cell=cell, impl=impl, hidden_size=hidden, num_layers=1, bidirectional=False),
                             hidden)

    def forward(self, x: Tensor, state=None):
        """x: (B, T, H); state: (1, B, H) (LSTM: a pair) or None -> outputs (B, T, H) and the final state."""
        return self.rnn(x, hx=state)


class ConvLayer(nn.Module):
    """A 1-D convolution over time, kernel 3, H channels in and out: every position at once, no recurrence."""

    def __init__(self, hidden: int):
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel_size=3, padding=1)

    def forward(self, x: Tensor, state=None):
        """x: (B, T, H) -> (B, T, H), None."""
        return self.conv(x.transpose(1, 2)).transpose(1, 2), None                     # via (B, H, T)


class SelfAttention(nn.Module):
    """One head of scaled dot-product self-attention: softmax(q k^T / sqrt(H)) v, then an output projection."""

    def __init__(self, hidden: int):
        super().__init__()
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def forward(self, x: Tensor, state=None):
        """x: (B, T, H) -> (B, T, H), None."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)                                         # (B, T, H) each
        weights = torch.softmax((q / math.sqrt(q.size(-1))) @ k.transpose(1, 2), dim=-1)   # (B, T, T)
        return self.out(weights @ v), None


def build_layer(kind: str, hidden: int, impl: str = "fused") -> nn.Module:
    """A fresh layer of width H: a cell (rnn | lstm | gru, in `impl`), conv or attention."""
    if kind in RECURRENT:
        return CellLayer(kind, hidden, impl)
    if kind == "conv":
        return ConvLayer(hidden)
    if kind == "attention":
        return SelfAttention(hidden)
    raise ValueError(f"unknown cell '{kind}' (expected rnn, lstm, gru, conv or attention)")


def critical_path(kind: str, length: int) -> int:
    """Steps that must run one after another over T positions: T for a recurrence, 1 for conv and attention."""
    return length if kind in RECURRENT else 1


# --- memory -------------------------------------------------------------------------------------------------------

class SavedTensors:
    """While active, count the bytes of every tensor autograd saves for backward.

    A storage is counted once, over the span of bytes its saved views reach (so a chunk sliced from a longer input
    counts as the chunk); storages of `exclude` (the parameters, whose size does not depend on T) are left out.
    """

    def __init__(self, exclude: Iterable[Tensor] = ()):
        self.excluded = {p.untyped_storage().data_ptr() for p in exclude}
        self.spans: dict[int, tuple[int, int]] = {}
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, lambda t: t)

    def _pack(self, t: Tensor) -> Tensor:
        if t.numel() == 0 or t.layout != torch.strided:
            return t
        ptr = t.untyped_storage().data_ptr()
        if ptr not in self.excluded:
            start = t.storage_offset() * t.element_size()
            end = start + (1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride()))) * t.element_size()
            low, high = self.spans.get(ptr, (start, end))
            self.spans[ptr] = (min(low, start), max(high, end))
        return t

    @property
    def bytes(self) -> int:
        return sum(high - low for low, high in self.spans.values())

    def __enter__(self) -> "SavedTensors":
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)


def _chunks(x: Tensor, chunk: int) -> list[Tensor]:
    """x (B, T, H) -> the whole of it, or pieces (B, K, H) (the last may be shorter), each its own tensor as a
    data loader would hand them over."""
    if not chunk or chunk >= x.size(1):
        return [x]
    return [piece.contiguous() for piece in x.split(chunk, dim=1)]


def _detach(state):
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


def saved_bytes(layer: nn.Module, x: Tensor, chunk: int = 0) -> int:
    """Bytes backward needs for one forward over x (B, T, H): the saved activations of the graph, or with
    chunk = K the largest of the chunks' graphs (the state detached between chunks, each graph freed in turn)."""
    peak, state = 0, None
    for piece in _chunks(x, chunk):
        with SavedTensors(exclude=layer.parameters()) as saved:
            out, state = layer(piece, state)
        peak = max(peak, saved.bytes)
        del out
        state = _detach(state)
    return peak


# vectors of H that backward keeps per position and sequence, as `saved_bytes` counts them with torch 2.x (impl
# fused, else the second table; the tests hold the estimate to the count): the LSTM's fused CPU kernel (oneDNN)
# keeps a workspace of its gates and states; attention keeps x, q, k, v, the context, and a (T, T) row per position
SAVED_VECTORS = {"rnn": 2.0, "lstm": 18.0, "gru": 6.0, "conv": 1.0, "attention": 6.0}
SAVED_VECTORS_IMPL = {("gru", "torch"): 7.5, ("lstm", "scratch"): 8.0, ("gru", "scratch"): 7.0}
MARGIN = 1.25


def estimate_bytes(kind: str, impl: str, batch: int, length: int, hidden: int, chunk: int = 0) -> int:
    """An estimate of `saved_bytes` (float32) before anything runs, a quarter above the count:
    4 * B * T * (vectors * H), plus 4 * B * T * T for attention's weights; T is the chunk K with truncated BPTT."""
    steps = min(chunk, length) if chunk and kind in RECURRENT else length
    vectors = SAVED_VECTORS_IMPL.get((kind, impl), SAVED_VECTORS[kind])
    per_position = vectors * hidden + (steps if kind == "attention" else 0)
    return int(MARGIN * 4 * batch * steps * per_position)


def available_bytes() -> int:
    """Memory available to a new allocation now (MemAvailable; elsewhere the free physical pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return 1 << 62


def check_memory(config: CostConfig, available: int | None = None) -> None:
    """Refuse (ValueError) a run whose largest graph would not fit: its estimated saved activations above
    config.max_memory_mb, or (0) above half of `available` (default: the memory available now)."""
    limit = config.max_memory_mb * 2**20 or (available_bytes() if available is None else available) / 2
    rows = [(kind, 0) for kind in config.cells] + ([(config.tbptt_cell, config.tbptt)] if config.tbptt else [])
    t = config.lengths[-1]
    need, kind, chunk = max((estimate_bytes(k, config.impl, config.batch, t, config.hidden, c), k, c) for k, c in rows)
    if need > limit:
        name = f"{kind} with truncated BPTT (K={chunk})" if chunk else kind
        where = f"--max-memory {config.max_memory_mb:g} MiB" if config.max_memory_mb else "half the available memory"
        raise ValueError(f"{name} at T={t}, B={config.batch}, H={config.hidden} would save about "
                         f"{need / 2**20:,.0f} MiB of activations for backward, more than {where} "
                         f"({limit / 2**20:,.0f} MiB): give shorter --lengths, a smaller --batch or --hidden")


# --- time ---------------------------------------------------------------------------------------------------------

def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """The median wall time of `repeats` calls of fn, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forward(layer: nn.Module, x: Tensor, chunk: int = 0) -> None:
    """One forward over x (B, T, H) without a graph (in chunks of K when chunk = K, the state carried)."""
    state = None
    with torch.no_grad():
        for piece in _chunks(x, chunk):
            _, state = layer(piece, state)


def train_step(layer: nn.Module, x: Tensor, chunk: int = 0) -> None:
    """Forward and backward of the sum of the outputs over x (B, T, H); with chunk = K, truncated BPTT: forward
    and backward of each chunk in turn, the state detached between chunks. Gradients are dropped after."""
    state = None
    for piece in _chunks(x, chunk):
        out, state = layer(piece, state)
        out.sum().backward()
        state = _detach(state)
    layer.zero_grad(set_to_none=True)


# --- the fit ------------------------------------------------------------------------------------------------------

def fit_power(lengths: Iterable[float], values: Iterable[float]) -> tuple[float, float]:
    """Least squares of log(value) = k log(T) + log(c): -> (k, c) of value ~ c T^k."""
    xs, ys = [float(t) for t in lengths], [float(v) for v in values]
    if len(xs) != len(ys):
        raise ValueError(f"{len(xs)} lengths but {len(ys)} values")
    if len(set(xs)) < 2:
        raise ValueError("need two or more different lengths to fit an exponent")
    if min(xs) <= 0 or min(ys) <= 0 or not all(math.isfinite(v) for v in xs + ys):
        raise ValueError("lengths and values must be positive finite numbers to fit on log-log axes")
    lx, ly = [math.log(t) for t in xs], [math.log(v) for v in ys]
    mx, my = statistics.fmean(lx), statistics.fmean(ly)
    k = sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)
    return k, math.exp(my - k * mx)


def fit_exponent(lengths: Iterable[float], values: Iterable[float]) -> float:
    """The exponent k of value ~ c T^k, least squares on log-log axes (1: linear in T, 0: flat, 2: quadratic)."""
    return fit_power(lengths, values)[0]


# --- the measurement ----------------------------------------------------------------------------------------------

def layers(config: CostConfig) -> list[tuple[str, str, int]]:
    """(name, kind, chunk K or 0) of every row to measure: the cells asked for, then the truncated-BPTT row."""
    rows = [(kind, kind, 0) for kind in dict.fromkeys(config.cells)]
    if config.tbptt:
        rows.append((f"{config.tbptt_cell}+tbptt{config.tbptt}", config.tbptt_cell, config.tbptt))
    return rows


def measure_point(layer: nn.Module, kind: str, x: Tensor, repeats: int, chunk: int = 0) -> dict:
    """Time and memory of one layer over x (B, T, H)."""
    t = x.size(1)
    forward_s = median_seconds(lambda: forward(layer, x, chunk), repeats)
    train_s = median_seconds(lambda: train_step(layer, x, chunk), repeats)
    return {"T": t, "forward_ms": 1e3 * forward_s, "train_ms": 1e3 * train_s, "ms_per_position": 1e3 * train_s / t,
            "saved_bytes": saved_bytes(layer, x, chunk), "critical_path": critical_path(kind, t)}


def measure(config: CostConfig, report: Callable[[str, dict], None] | None = None) -> dict:
    """Measure every layer at every length and fit the exponents.

    Returns {"rows": [{"layer", "T", "forward_ms", "train_ms", "ms_per_position", "saved_bytes", "critical_path"}],
    "fits": {layer: {"forward", "train", "memory", "critical_path" (exponents), "lengths" (those fitted)}},
    "threads", "memory_method"}. A truncated row's exponents are fitted over the lengths T >= K where there are
    two or more (below K one chunk is the whole sequence). `report(layer, row)` is called after each point.
    """
    check_memory(config)
    rows, fits = [], {}
    for name, kind, chunk in layers(config):
        torch.manual_seed(config.seed)
        layer = build_layer(kind, config.hidden, config.impl)
        points = []
        for t in config.lengths:
            x = torch.randn(config.batch, t, config.hidden, generator=torch.Generator().manual_seed(config.seed + t))
            point = measure_point(layer, kind, x, config.repeats, chunk)
            points.append(point)
            rows.append({"layer": name, **point})
            if report:
                report(name, point)
        fitted = [p for p in points if p["T"] >= chunk]
        fitted = fitted if len(fitted) >= 2 else points
        ts = [p["T"] for p in fitted]
        fits[name] = {key: fit_exponent(ts, [p[column] for p in fitted])
                      for key, column in (("forward", "forward_ms"), ("train", "train_ms"),
                                          ("memory", "saved_bytes"), ("critical_path", "critical_path"))}
        fits[name]["lengths"] = ts
    return {"rows": rows, "fits": fits, "threads": torch.get_num_threads(), "memory_method": MEMORY_METHOD}
