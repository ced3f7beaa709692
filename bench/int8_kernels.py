"""The small measurements behind the int8 design choices, one thread, alternated in one sitting:

    tanh       torch.tanh against its sigmoid form 2 sigmoid(2x) - 1 (`cells.tanh`) by tensor size
    products   a float32 product (addmm) against `Int8Linear` (fbgemm int8) at the shapes the models use
    rnn        a 128-unit BiLSTM over 20 steps of 208 inputs (the fast tagger's) by batch size: torch's fused float
               LSTM, torch's dynamic int8 LSTM (`quantize_dynamic`) and `Int8RNN`'s step loop
    char_cnn   the character CNN over 2,000 words of 1-25 characters: the padded grid against the words end to end

    python bench/int8_kernels.py
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: E402


def micros(fns: dict, repeats: int, rounds: int = 3) -> dict[str, float]:
    """Best microseconds per call of each function, the functions alternated for `rounds` rounds."""
    best = {name: float("inf") for name in fns}
    for fn in fns.values():
        fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(repeats):
                fn()
            best[name] = min(best[name], 1e6 * (time.perf_counter() - start) / repeats)
    return {name: round(t, 1) for name, t in best.items()}


def tanh_sizes() -> dict:
    from nmt.models.cells import TANH_THROUGH_SIGMOID
    out = {}
    for n in (512, 2048, TANH_THROUGH_SIGMOID, 65536):
        x = torch.randn(n)
        out[n] = micros({"torch.tanh": lambda: torch.tanh(x),
                         "sigmoid form": lambda: torch.mul(x, 2).sigmoid_().mul_(2).sub_(1)}, 1000)
    return out


def products() -> dict:
    from nmt.quantize import Int8Linear, quantize_rows
    out = {}
    for rows, k, n in ((1, 512, 2048), (256, 128, 512), (256, 208, 1024), (640, 512, 1536)):
        w, b, x = torch.randn(n, k), torch.randn(n), torch.randn(rows, k)
        int8 = Int8Linear(*quantize_rows(w), b)
        out[f"({rows}, {k}) x ({k}, {n})"] = micros({"float32": lambda: torch.addmm(b, x, w.T),
                                                     "int8": lambda: int8(x)}, 50)
    return out


def rnn_batches() -> dict:
    from nmt.models.int8_rnn import Int8RNN
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import quantize_dynamic
        lstm = nn.LSTM(208, 128, batch_first=True, bidirectional=True).eval()
        dynamic = quantize_dynamic(nn.Sequential(lstm), {nn.LSTM}, dtype=torch.qint8)[0]
    ours = Int8RNN(lstm)
    out = {}
    for batch in (1, 8, 32, 128):
        x, lengths = torch.randn(batch, 20, 208), torch.randint(10, 21, (batch,))
        lengths[0] = 20
        mask = torch.arange(20)[None] < lengths[:, None]

        def packed(module):
            seq = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            return pad_packed_sequence(module(seq)[0], batch_first=True)[0]
        with torch.inference_mode():
            out[batch] = micros({"float (fused)": lambda: packed(lstm), "torch dynamic int8": lambda: packed(dynamic),
                                 "Int8RNN step loop": lambda: ours._loop(x, None, mask),
                                 "Int8RNN (as used)": lambda: ours(x, mask=mask)}, 5)
    return out


def char_cnn() -> dict:
    from nmt.models.tagger import CharCNN
    torch.manual_seed(0)
    cnn = CharCNN(88, 30, 100).eval()                     # the taggers' sizes
    lengths = torch.randint(1, 12, (2000,))
    lengths[::50] = 25
    chars = torch.randint(1, 88, (2000, 25)) * (torch.arange(25) < lengths[:, None])
    with torch.inference_mode():
        return micros({"padded grid": lambda: cnn.padded(chars), "words end to end": lambda: cnn.packed(chars)}, 10)


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    from bench.common import machine
    torch.set_num_threads(1)
    result = {"machine": machine(), "threads": 1, "unit": "microseconds per call (best of 3 alternated rounds)",
              "tanh": tanh_sizes(), "products": products(), "rnn_by_batch": rnn_batches(), "char_cnn": char_cnn()}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
