"""The shipped models on ONNX Runtime beside torch: agreement, largest output difference and speed.

Each model is exported (`nmt export M OUT --format onnx`) to a temporary folder and run by both runtimes on the
same inputs, one thread each (or --threads): the translator greedy and with beam 5 on Multi30k test_2016 (the
first --sentences), with the share of outputs equal token for token, the largest difference of teacher-forced
logits and sentences/s; the taggers on CoNLL-2003 dev sentences (tags equal, largest emission difference); the
classifiers on their test texts; the character model (a chunk's logits, a greedy sample); the forecaster (a
window). Models or data that are absent are skipped.

    python bench/onnx_parity.py [--sentences 200] [--threads 1] [--only translate,tag]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CKPT = ROOT / "checkpoints"


def both(path: Path, task: str, folder: Path, threads: int):
    from nmt import checkpoint as ckpt_io
    from nmt import tasks
    from nmt.onnx.export import export
    from nmt.onnx.runtime import load
    ckpt = ckpt_io.load(path)
    export(ckpt, folder / path.stem, str(path))
    return tasks.module(task).RUNNER.build(ckpt, str(path)), load(folder / path.stem, task, threads)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def translator(folder: Path, threads: int, n: int) -> dict:
    import torch
    from nmt.config import DecodeConfig
    from nmt.corpora import corpus_files
    from nmt.data import pad, read_lines
    lines = read_lines(corpus_files("multi30k", "test_2016_flickr")["paths"][0])[:n]
    pt, ox = both(CKPT / "multi30k-de-en.pt", "translate", folder, threads)
    result = {"sentences": len(lines)}
    for beam in (1, 5):
        decode = DecodeConfig(beam=beam)
        pt.translate_hyps(lines[:16], decode), ox.translate_hyps(lines[:16], decode)      # warm-up
        want, t_pt = timed(lambda: pt.translate_hyps(lines, decode))
        got, t_ox = timed(lambda: ox.translate_hyps(lines, decode))
        same = sum(g[0].tokens == w[0].tokens for g, w in zip(got, want))
        result[f"beam{beam}"] = {"same_tokens": f"{same}/{len(lines)}", "torch_sent_per_s": round(len(lines) / t_pt, 1),
                                 "onnx_sent_per_s": round(len(lines) / t_ox, 1)}
    ids = [pt.src_tok.encode(line) for line in lines[:64]]
    outs = [[1] + w[0].tokens for w in want[:64]]
    src, lengths = pad(ids)
    tgt, _ = pad(outs)
    with torch.inference_mode():
        result["max_abs_logit_diff"] = float((pt.model(src, lengths, tgt) - ox.model(src, lengths, tgt)).abs().max())
    return result


def tagger(folder: Path, threads: int, n: int) -> dict:
    from nmt.corpora import corpus_files
    from nmt.tasks.tag import encode, make_batch, read_tagged
    import torch
    sentences = [w for w, _ in read_tagged(corpus_files("conll2003", "dev")["paths"][0])][:n]
    result = {}
    for name in ("conll2003-ner-fast", "conll2003-ner"):
        if not (CKPT / f"{name}.pt").exists():
            continue
        pt, ox = both(CKPT / f"{name}.pt", "tag", folder, threads)
        want, t_pt = timed(lambda: pt.tag(sentences))
        got, t_ox = timed(lambda: ox.tag(sentences))
        items = [encode(pt.tokenizer, s, max_word_chars=pt.setup.data.max_word_chars, context=pt.context)
                 for s in sentences[:64]]
        b = make_batch(items, list(range(len(items))))
        with torch.inference_mode():
            diff = (pt.model(b.words, b.chars, b.casings, b.lengths, b.char_index, b.context)
                    - ox.model(b.words, b.chars, b.casings, b.lengths, b.char_index, b.context)).abs().max()
        result[name] = {"same_tags": f"{sum(g == w for g, w in zip(got, want))}/{len(sentences)}",
                        "max_abs_emission_diff": float(diff), "torch_s": round(t_pt, 2), "onnx_s": round(t_ox, 2)}
    return result


def classifiers(folder: Path, threads: int, n: int) -> dict:
    from nmt.tasks.classify import corpus_pairs
    result = {}
    for name, corpus in (("sst2-sentiment", "sst2"), ("names-language", "names"), ("trec-questions", "trec")):
        if not (CKPT / f"{name}.pt").exists():
            continue
        pt, ox = both(CKPT / f"{name}.pt", "classify", folder, threads)
        texts = [t for _, t in corpus_pairs(corpus, "dev", pt.setup.data)][:n]
        (want, _, _), t_pt = timed(lambda: pt.run(texts))
        (got, _, _), t_ox = timed(lambda: ox.run(texts))
        same = (want.argmax(-1) == got.argmax(-1)).float().mean()
        result[name] = {"same_labels": float(same), "max_abs_prob_diff": float((want - got).abs().max()),
                        "torch_s": round(t_pt, 2), "onnx_s": round(t_ox, 2)}
    return result


def charlm(folder: Path, threads: int, n: int) -> dict:
    import torch
    from nmt.config import SampleConfig
    pt, ox = both(CKPT / "shakespeare-charlm.pt", "charlm", folder, threads)
    x = torch.tensor([pt.tokenizer.encode("ROMEO:\nWhat light through yonder window breaks?")])
    with torch.inference_mode():
        diff = float((pt.model(x)[0] - ox.model(x)[0]).abs().max())
    greedy = SampleConfig(prime="ROMEO:", length=n, temperature=0.0, num_samples=5)
    want, t_pt = timed(lambda: list(pt.sample(greedy, seed=0)))
    got, t_ox = timed(lambda: list(ox.sample(greedy, seed=0)))
    return {"max_abs_logit_diff": diff, "same_greedy_chars": f"{sum(g == w for g, w in zip(got, want))}/{n}",
            "torch_chars_per_s": round(n / t_pt), "onnx_chars_per_s": round(n / t_ox)}


def forecaster(folder: Path, threads: int, n: int) -> dict:
    import torch
    pt, ox = both(CKPT / "etth1-h96.pt", "forecast", folder, threads)
    x = torch.randn(64, pt.lookback, len(pt.columns))
    with torch.inference_mode():
        return {"max_abs_diff": float((pt.model(x) - ox.model(x)).abs().max())}


BENCHES = {"translate": translator, "tag": tagger, "classify": classifiers, "charlm": charlm, "forecast": forecaster}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=200, help="Inputs per model (characters for charlm).")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--only", default=",".join(BENCHES))
    args = parser.parse_args()
    import torch
    from bench.common import machine
    torch.set_num_threads(args.threads)
    result = {"machine": machine()}
    with tempfile.TemporaryDirectory() as folder:
        for name in args.only.split(","):
            try:
                result[name] = BENCHES[name](Path(folder), args.threads, args.sentences)
            except Exception as exc:              # an absent model or corpus: say so, go on
                result[name] = {"skipped": f"{type(exc).__name__}: {exc}"[:200]}
            print(json.dumps({name: result[name]}), flush=True)


if __name__ == "__main__":
    main()
