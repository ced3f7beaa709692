"""Training speed of the translation model on Multi30k de-en: target tokens/s and share of the matmul rate.

    python bench/train_speed.py                      # the reference configuration (README), input feeding on
    python bench/train_speed.py --no-input-feeding   # the same sizes, decoder run as one fused call over T
    python bench/train_speed.py --preset multi30k    # the shipped model's configuration

Reference configuration: sentencepiece unigram 8k joint vocabulary, tied source/target/output embeddings of 256,
bidirectional GRU encoder 256 per direction, GRU decoder 512 with Bahdanau attention and input feeding, dropout
0.3, label smoothing 0.1, batches of 64 sentences, Adam 1e-3, clipping 1.0.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import count_flops, machine, matmul_gflops  # noqa: E402
import torch  # noqa: E402
from nmt.corpora import corpus_files  # noqa: E402
from nmt.data import read_parallel  # noqa: E402
from nmt.runs import set_threads  # noqa: E402
from nmt.training import Trainer  # noqa: E402
from nmt.tasks import make_setup  # noqa: E402
from nmt.tasks.translate import TranslationTask, build_model, train_tokenizers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="base")
    parser.add_argument("--input-feeding", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--steps", type=int, default=60, help="timed steps (after 5 warm-up steps)")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--device", default="cpu", help="cpu | cuda: on a GPU the matmul share is not measured")
    args = parser.parse_args()
    set_threads(args.threads)
    overrides = {"train.batch_tokens": 0, "train.batch_size": 64, "model.input_feeding": args.input_feeding,
                 "train.device": args.device}
    setup = make_setup("translate", args.preset, overrides=overrides)
    pairs = read_parallel(*corpus_files("multi30k", "train", args.data_dir)["paths"])
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    toks = train_tokenizers(pairs, setup.tokenizer)
    task = TranslationTask(setup, toks, pairs, pairs[:10])
    model = build_model(setup, toks)
    trainer = Trainer(model, task, setup.train, "/tmp/nmt-bench-train")
    batches = task.batches(0)
    for i in range(5):
        trainer._step([batches[i]])
    timed = [batches[i] for i in range(5, 5 + args.steps)]
    sync()
    start = time.perf_counter()
    tokens = sum(trainer._step([b])["tokens"] for b in timed)
    sync()
    seconds = time.perf_counter() - start
    flops = sum(count_flops(lambda b=b: trainer._step([b])) for b in timed[:5]) / sum(b.num_tgt_tokens for b in timed[:5])
    peak = matmul_gflops() if args.device == "cpu" else float("nan")
    rate = tokens / seconds
    device = torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu"
    result = {"machine": machine(), "device": device, "preset": args.preset, "input_feeding": args.input_feeding,
              "vocab": toks["tgt"].vocab_size, "target_tokens_per_s": round(rate),
              "epoch_minutes": round(sum(len(t) + 1 for t in task.train.take(range(len(task.train)))[1]) / rate / 60, 2),
              "gflop_per_token": round(flops / 1e9, 4), "model_gflops": round(flops * rate / 1e9, 1),
              "matmul_gflops": round(peak, 1), "share_of_matmul_rate": round(flops * rate / 1e9 / peak, 3)}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
