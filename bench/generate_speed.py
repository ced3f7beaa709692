"""Generation and training speed of the character model.

    python bench/generate_speed.py [--model checkpoints/shakespeare-charlm.pt]

Generation: characters/s for one stream at temperature 0.8 and for 32 streams in a batch. One stream reads every
weight once per character, so its rate is bounded by (memory bandwidth / weight bytes); the bound is printed with
the bandwidth measured here for arrays far larger than the caches, and with the weights in cache where they fit;
`step_breakdown` splits one stream's time per character into the stepper alone, its matrix products and its
other operators.
Training: characters/s of the model's training configuration (float32, and bfloat16 mixed precision where the CPU
has it natively, alternating) and the float32 rate's share of the measured float32 matmul rate.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import copy_bandwidth_gbs, machine, matmul_gflops  # noqa: E402
from nmt.precision import autocast, cpu_bfloat16  # noqa: E402
from nmt.tasks import charlm  # noqa: E402
import torch  # noqa: E402


def generation_rate(model, tok, streams: int, length: int) -> float:
    list(charlm.generate_batch(model, tok, "\n", 20, 0.8, seed=0, num_samples=streams))   # warm-up
    start = time.perf_counter()
    for _ in charlm.generate_batch(model, tok, "\n", length, 0.8, seed=0, num_samples=streams):
        pass
    return streams * length / (time.perf_counter() - start)


def step_breakdown(model, steps: int = 2000) -> dict:
    """Where one stream's character goes: the stepper alone (no sampling) in microseconds per character, and how
    much of it the operator profiler finds in the matrix products (float addmm/mm or int8 linear_dynamic) and in
    all of torch's operators; the rest of the step is Python and dispatch."""
    from nmt.models.charlm import stepper
    step = stepper(model, half=True)
    with torch.inference_mode():
        _, state = model(torch.tensor([[3]]))
        layers, token = step.split(state), torch.tensor([5])
        for _ in range(100):
            step(token, layers)
        start = time.perf_counter()
        for _ in range(steps):
            step(token, layers)
        seconds = time.perf_counter() - start
        with torch.profiler.profile() as prof:
            for _ in range(steps // 4):
                step(token, layers)
    events = prof.key_averages()
    products = sum(e.self_cpu_time_total for e in events if e.key in ("aten::addmm", "aten::mm", "aten::mv",
                                                                       "aten::addmv_", "quantized::linear_dynamic"))
    ops = sum(e.self_cpu_time_total for e in events)
    return {"step_only_us_per_char": round(1e6 * seconds / steps, 1),
            "products_us_per_char": round(products / (steps // 4), 1),
            "all_ops_us_per_char": round(ops / (steps // 4), 1)}


def cached_bandwidth_gbs(nbytes: int, repeats: int = 200) -> float:
    """Copy bandwidth for an array of the weights' size (it stays in cache where it fits)."""
    src = torch.empty(max(1, nbytes // 4))
    dst = torch.empty_like(src)
    for _ in range(5):
        dst.copy_(src)
    start = time.perf_counter()
    for _ in range(repeats):
        dst.copy_(src)
    return 2 * src.numel() * 4 * repeats / (time.perf_counter() - start) / 1e9


def training_rate(model, setup, steps: int = 10, precision: str = "float32") -> tuple[float, float]:
    """Characters/s of training steps (forward, backward, AdamW) at the run's streams x unroll; `precision` as
    train.precision (nmt/precision.py)."""
    d = setup.data
    x = torch.randint(4, model.config.vocab_size, (d.streams, d.unroll))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step():
        with autocast(torch.device("cpu"), precision):
            logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), x.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    rate = steps * x.numel() / (time.perf_counter() - start)
    return rate, train_flops_per_char(model.config)


def train_flops_per_char(c) -> float:
    """Matrix-multiply FLOPs per character of one training step, counted analytically (torch's FlopCounterMode
    does not see the fused CPU RNN kernels): forward 2 * G*H*(I + H) per layer plus 2 * V * H for the output
    layer; the backward pass costs twice the forward (gradients of inputs and of weights)."""
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[c.rnn.cell]
    h, forward, width = c.rnn.hidden_size, 0, c.embed_size
    for _ in range(c.rnn.num_layers):
        forward += 2 * gates * h * (width + h)
        width = h
    forward += 2 * c.vocab_size * (c.embed_size if c.tie_weights else h)
    return 3 * forward * c.members                    # an ensemble of K members: K times one member's


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "checkpoints" / "shakespeare-charlm.pt"))
    parser.add_argument("--length", type=int, default=1000)
    parser.add_argument("--skip-training", action="store_true", help="Measure generation only.")
    args = parser.parse_args()
    generator = charlm.TextGenerator.load(args.model)
    model, tok = generator.model, generator.tokenizer
    # weights read per generated character by charlm.Stepper: the recurrent matrices, the input matrices above
    # the first layer, the output layer (the first layer's input product is one row of a precomputed table)
    # (generation keeps the LSTM's matrices in float16: 2 bytes each; biases and the output layer in float32)
    # (an int8 checkpoint, export --quantize int8, samples on int8 matrices: 1 byte each, biases in float32)
    half = model.config.rnn.cell == "lstm"
    int8 = any(getattr(m, "int8", False) for m in model.modules())
    # (an ensemble's members are read one after the other: their bytes add up)
    weight_bytes = sum(p.numel() * (1 if int8 and "weight" in n else 2 if half and "weight_" in n and "rnn." in n
                                    else 4)
                       for n, p in model.named_parameters() if "embed." not in n and "ih_l0" not in n)
    dram = copy_bandwidth_gbs()
    cached = cached_bandwidth_gbs(weight_bytes)
    one = generation_rate(model, tok, 1, args.length)
    batch = generation_rate(model, tok, 32, args.length // 4)
    breakdown = step_breakdown(model)
    rates, flops = {"float32": [], "bfloat16": []}, 0
    for _ in range(0 if args.skip_training else 2):     # alternating, so that both see the same machine
        for precision in rates if cpu_bfloat16() else ["float32"]:
            rate, flops = training_rate(model, generator.setup, precision=precision)
            rates[precision].append(round(rate))
    train_rate = max(rates["float32"], default=0)
    peak = matmul_gflops()
    print(json.dumps({
        "machine": machine(), "model": args.model, "weight_mb": round(weight_bytes / 1e6, 2),
        "one_stream_chars_per_s": round(one), "bound_dram_chars_per_s": round(dram * 1e9 / weight_bytes),
        "bound_cached_chars_per_s": round(cached * 1e9 / weight_bytes), "copy_bandwidth_gbs": round(dram, 1),
        "cached_bandwidth_gbs": round(cached, 1), "one_stream_us_per_char": round(1e6 / one, 1),
        "bound_dram_us_per_char": round(weight_bytes / dram / 1e3, 1)} | breakdown | {
        "streams32_chars_per_s": round(batch),
        "train_chars_per_s": rates["float32"], "train_chars_per_s_bfloat16": rates["bfloat16"] or "no native bf16",
        "train_gflop_per_char": round(flops / 1e9, 5),
        "matmul_gflops": round(peak, 1), "train_share_of_matmul_rate": round(flops * train_rate / 1e9 / peak, 3),
    }, indent=1))


if __name__ == "__main__":
    main()
