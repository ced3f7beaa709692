"""ONNX export of the trained models, and running them on ONNX Runtime.

`nmt export best.pt OUT --format onnx` (nmt/onnx/export.py) writes a folder (conventionally named NAME.onnx):

    OUT/nmt.pt          the checkpoint without the weights the graphs hold: task, config, tokenizers, scores, meta
                        (meta "onnx": the graph files, "onnx_opset"); the tagger keeps its CRF's few weights here,
                        since Viterbi decoding stays in Python
    OUT/<graph>.onnx    one file per graph, weights inside:
        translate       encoder.onnx (src, lengths -> memory, keys, h [, c]) and decoder.onnx (ONE decoder step
                        with the state as explicit inputs and outputs: memory, keys, mask, y, h [, c] [, feed] ->
                        logits, h [, c] [, feed], weights)
        tag             emissions.onnx (words, chars, char_index, casings, lengths [, context LMs' inputs] ->
                        emissions)
        classify        classifier.onnx (tokens, lengths [, chars, char_index] [, ngrams, offsets] -> scores
                        [, weights])
        charlm          step.onnx (x (B, T), h0 [, c0], h1, ... -> logits, the new state): T = 1 is one step
        forecast        forecast.onnx (x (B, L, C) -> forecast (B, H, C))

Everything but the graphs is read back with nmt's own checkpoint reader (no pickled code), so the tokenizers and
settings travel with the graphs. `--runtime onnx` (translate, tag, classify, generate, forecast) loads such a
folder (nmt/onnx/runtime.py) into the task's usual Runner, whose model is an adapter over ONNX Runtime sessions
offering the methods the Runner calls (the translator's encode / decode / reorder_encoder / reorder_state), so
greedy and beam search (nmt/decoding.py) run unchanged. Batch and length axes are dynamic.

Limits: the graphs are float32 (an int8 checkpoint is refused: export its float one); the summariser and the names
generator have no export; a contextual tagger's character LMs run in float32 here where torch runs them in bfloat16
(emissions differ by about 1e-2, tags alike); sampling one stream runs in float32 where torch's stepper reads float16
copies of the matrices.

onnx (for exporting) and onnxruntime (for running) are an optional extra (`pip install -e '.[onnx]'`), imported only
by nmt/onnx and only when used.
"""
from __future__ import annotations

from nmt.checkpoint import CheckpointError

COMPANION = "nmt.pt"                 # the checkpoint without the graphs' weights, in the export folder
OPSET = 17
# the graph files of each task, in the order the runtime opens them
GRAPHS = {"translate": ("encoder", "decoder"), "tag": ("emissions",), "classify": ("classifier",),
          "charlm": ("step",), "forecast": ("forecast",)}
INSTALL = "pip install -e '.[onnx]'"


class OnnxError(CheckpointError):
    """An export that cannot be written, or a folder that is not a readable ONNX export (one line)."""


def missing(module: str) -> str | None:
    """The name of `module` if it is not installed (None when it is)."""
    import importlib.util
    return None if importlib.util.find_spec(module) is not None else module
