"""Write a checkpoint as an ONNX export folder (the layout is in nmt/onnx/__init__.py).

Each task's graphs are traced with torch's TorchScript-based exporter (`dynamo=False`: it exports torch's GRU and
LSTM layers as ONNX's own GRU / LSTM ops and is quick) from an `exportable` copy of the model (nmt/onnx/graphs.py),
on small example inputs of two rows of different lengths; batch and length axes are dynamic. The folder is written
beside its destination and renamed into place, so a failed export leaves no half-written folder.
"""
from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt.onnx import COMPANION, GRAPHS, INSTALL, OPSET, OnnxError, graphs


@dataclass
class Graph:
    name: str                  # the file's stem
    module: nn.Module          # tensors in, tensors out
    example: tuple             # example inputs for tracing
    inputs: list[str]
    outputs: list[str]
    axes: dict                 # name -> {axis: symbolic name}


def export(ckpt: ckpt_io.Checkpoint, out: str | Path, source: str = "the checkpoint") -> list[Path]:
    """Write the ONNX export of a checkpoint (float32) to the folder `out`, replacing an earlier export there.
    Returns the files written. OnnxError for a task without an ONNX export or a missing package."""
    from nmt import tasks
    from nmt.onnx import missing
    if missing("onnx"):                # torch's exporter writes through it (the legacy one needs no onnxscript)
        raise OnnxError(f"--format onnx needs onnx: {INSTALL}")
    if ckpt.task not in GRAPHS:
        raise OnnxError(f"'{ckpt.task}' models have no ONNX export (there is one for {', '.join(GRAPHS)})")
    from nmt.quantize import is_int8
    if is_int8(ckpt):                  # its int8 products are torch's own (fbgemm) kernels
        raise OnnxError(f"{source} is quantised (int8); export its float checkpoint to ONNX")
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / COMPANION).exists())):
        raise OnnxError(f"{out} exists and is not an ONNX export: give a new folder")
    runner = tasks.module(ckpt.task).RUNNER.build(ckpt, source)
    specs, kept = BUILDERS[ckpt.task](runner)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        for spec in specs:
            _trace(spec, tmp / f"{spec.name}.onnx")
        meta = dict(ckpt.meta, onnx=" ".join(f"{s.name}.onnx" for s in specs), onnx_opset=str(OPSET))
        companion = ckpt_io.Checkpoint(ckpt.task, ckpt.config, kept, ckpt.tokenizers, dict(ckpt.scores), meta)
        ckpt_io.save(tmp / COMPANION, companion)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out / COMPANION, *(out / f"{s.name}.onnx" for s in specs)]


def _trace(spec: Graph, path: Path) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")          # the tracer's notes on Python values it keeps as constants
        torch.onnx.export(spec.module, spec.example, str(path), dynamo=False, opset_version=OPSET,
                          input_names=spec.inputs, output_names=spec.outputs, dynamic_axes=spec.axes,
                          do_constant_folding=True)


# --- each task's graphs ---------------------------------------------------------------------------------------

def _translate(runner) -> tuple[list[Graph], dict]:
    model = graphs.exportable(runner.model)
    src = torch.tensor([[5, 6, 7, 8, 9], [9, 8, 7, 0, 0]]) % model.config.src_vocab_size
    lengths = torch.tensor([5, 3])
    encoder = graphs.TranslatorEncoder(model)
    memory, keys, *state = encoder(src, lengths)
    names = graphs.translator_state_names(model)
    rnn_names = names[:len(state)]                  # the encoder gives the RNN state; feed starts as zeros
    if model.config.input_feeding:
        state.append(memory.new_zeros(2, 1, model.config.embed_size))
    mask = torch.arange(5)[None, :] < lengths[:, None]
    y = torch.tensor([[1], [1]])
    batch = {0: "batch"}
    enc_graph = Graph("encoder", encoder, (src, lengths), ["src", "lengths"], ["memory", "keys", *rnn_names],
                      {"src": {0: "batch", 1: "source"}, "lengths": batch, "memory": {0: "batch", 1: "source"},
                       "keys": {0: "batch", 1: "source"}, **{n: {1: "batch"} for n in rnn_names}})
    state_axes = {n: ({0: "batch"} if n == "feed" else {1: "batch"}) for n in names}
    step = Graph("decoder", graphs.TranslatorStep(model), (memory, keys, mask, y, *state),
                 ["memory", "keys", "mask", "y", *names], ["logits", *[f"new_{n}" for n in names], "weights"],
                 {"memory": {0: "batch", 1: "source"}, "keys": {0: "batch", 1: "source"},
                  "mask": {0: "batch", 1: "source"}, "y": batch, **state_axes,
                  **{f"new_{n}": axes for n, axes in state_axes.items()}, "logits": batch,
                  "weights": {0: "batch", 2: "source"}})
    return [enc_graph, step], {}


def _tag(runner) -> tuple[list[Graph], dict]:
    from nmt.tasks.tag import encode, make_batch
    model = graphs.exportable(runner.model)
    d = runner.setup.data
    items = [encode(runner.tokenizer, words, max_word_chars=d.max_word_chars, context=runner.context)
             for words in (["The", "Cat", "sat", "in", "Paris"], ["on", "1999", "mats"])]
    batch = make_batch(items, [0, 1])
    names = ["words", "chars", "char_index", "casings", "lengths"]
    example = [batch.words, batch.chars, batch.char_index, batch.casings, batch.lengths]
    axes = {"words": {0: "batch", 1: "words"}, "chars": {0: "distinct", 1: "chars"},
            "char_index": {0: "batch", 1: "words"}, "casings": {0: "batch", 1: "words"}, "lengths": {0: "batch"},
            "emissions": {0: "batch", 1: "words"}}
    if batch.context is not None:
        names += ["fwd", "bwd", "fwd_at", "bwd_at"]
        example += list(batch.context)
        axes.update({"fwd": {0: "batch", 1: "string"}, "bwd": {0: "batch", 1: "string"},
                     "fwd_at": {0: "batch", 1: "words"}, "bwd_at": {0: "batch", 1: "words"}})
    kept = {k: v for k, v in runner.checkpoint.model.items() if k.startswith("crf.")}
    return [Graph("emissions", graphs.TaggerEmissions(model), tuple(example), names, ["emissions"], axes)], kept


def _classify(runner) -> tuple[list[Graph], dict]:
    from nmt.tasks.classify import make_batch
    model = graphs.exportable(runner.model)
    steps = runner.steps
    items = [steps.encode(steps.split(text)) for text in ("a good film , really", "bad")]
    batch = make_batch(items, [0, 1])
    names, example = ["tokens", "lengths"], [batch.tokens, batch.lengths]
    axes = {"tokens": {0: "batch", 1: "steps"}, "lengths": {0: "batch"}, "scores": {0: "batch"}}
    if model.chars is not None:
        names += ["chars", "char_index"]
        example += [batch.chars, batch.char_index]
        axes.update({"chars": {0: "distinct", 1: "chars"}, "char_index": {0: "batch", 1: "steps"}})
    if model.ngrams is not None:
        names += ["ngrams", "offsets"]
        example += list(batch.ngrams)
        axes.update({"ngrams": {0: "ngrams"}, "offsets": {0: "batch"}})
    outputs = ["scores"]
    if model.attention is not None:
        outputs.append("weights")
        axes["weights"] = {0: "batch", 1: "steps"}
    return [Graph("classifier", graphs.ClassifierScores(model), tuple(example), names, outputs, axes)], {}


def _charlm(runner) -> tuple[list[Graph], dict]:
    model = graphs.exportable(runner.model)
    c = model.config
    if c.rnn.bidirectional:
        raise OnnxError("a bidirectional character model cannot generate, so it has no ONNX export")
    names = graphs.charlm_state_names(model)
    state = [torch.zeros(c.rnn.num_layers, 2, c.rnn.hidden_size) for _ in names]
    x = torch.tensor([[4, 5, 6], [6, 5, 4]]) % c.vocab_size
    axes = {"x": {0: "batch", 1: "steps"}, "logits": {0: "batch", 1: "steps"},
            **{n: {1: "batch"} for n in names}, **{f"new_{n}": {1: "batch"} for n in names}}
    outputs = ["logits", *[f"new_{n}" for n in names]]
    return [Graph("step", graphs.CharLMChunk(model), (x, *state), ["x", *names], outputs, axes)], {}


def _forecast(runner) -> tuple[list[Graph], dict]:
    model = graphs.exportable(runner.model)
    c = model.config
    x = torch.randn(2, c.lookback, max(1, c.channels))
    return [Graph("forecast", model, (x,), ["x"], ["forecast"], {"x": {0: "batch"}, "forecast": {0: "batch"}})], {}


BUILDERS = {"translate": _translate, "tag": _tag, "classify": _classify, "charlm": _charlm, "forecast": _forecast}
