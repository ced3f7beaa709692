"""Run an ONNX export folder (nmt/onnx/__init__.py) on ONNX Runtime, through the tasks' own Runners.

`load(path, task, threads)` reads the folder's companion checkpoint and opens its graphs, then builds the task's
usual Runner (Translator, NERTagger, TextClassifier, TextGenerator, Forecast) around an adapter that offers the
methods that Runner calls on its model, with torch tensors in and out:

- `OnnxSeq2Seq`: encode / decode / reorder_encoder / reorder_state (what greedy and beam search use), and the
  teacher-forced call the translator's confidence uses (one decoder step per target position);
- `OnnxTagger`: the emissions, then the CRF's Viterbi decoding in Python (its weights are in the companion);
- `OnnxClassifier`: label scores and attention weights of a padded batch;
- `OnnxCharLM`: logits and state for a chunk of characters, and a stepper for sampling one at a time;
- `OnnxForecaster`: windows in, forecasts out.

onnxruntime is imported when a folder is loaded, never before.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from nmt import checkpoint as ckpt_io
from nmt.onnx import COMPANION, GRAPHS, INSTALL, OnnxError


class Session:
    """One graph on ONNX Runtime: named torch tensors in, a dict of named torch tensors out."""

    def __init__(self, path: Path, threads: int = 1):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3                 # no notes on dynamic shapes
        if not path.is_file():
            raise OnnxError(f"{path} is missing: the ONNX export is incomplete (export it again)")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:                       # onnxruntime's own error types, one per failure
            reason = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise OnnxError(f"{path} is not a readable ONNX model ({reason})") from None
        self.inputs = {i.name for i in self.session.get_inputs()}
        self.outputs = [o.name for o in self.session.get_outputs()]

    def __call__(self, **tensors: Tensor) -> dict[str, Tensor]:
        feed = {k: np.ascontiguousarray(v.detach().cpu().numpy()) for k, v in tensors.items() if k in self.inputs}
        return dict(zip(self.outputs, map(torch.from_numpy, self.session.run(None, feed))))


def load(path: str | Path, task: str | None = None, threads: int = 1):
    """The Runner of an ONNX export folder (or of a graph file inside one), its graphs on ONNX Runtime with
    `threads` intra-op threads. With `task`, a folder of another task is refused. One-line OnnxError otherwise."""
    from nmt.onnx import missing
    if missing("onnxruntime"):
        raise OnnxError(f"running ONNX exports needs onnxruntime: {INSTALL}")
    folder = _folder(Path(path))
    ckpt = ckpt_io.load(folder / COMPANION)
    if task is not None and ckpt.task != task:
        raise OnnxError(f"{folder} is the ONNX export of a '{ckpt.task}' model, not a '{task}' one")
    files = ckpt.meta.get("onnx")
    if ckpt.task not in GRAPHS or not isinstance(files, str):
        raise OnnxError(f"{folder} is not an ONNX export of a task that has one")
    sessions = {Path(f).stem: Session(folder / f, threads) for f in files.split()}
    if set(sessions) != set(GRAPHS[ckpt.task]):
        raise OnnxError(f"{folder} holds the graphs {', '.join(sessions)}, not those of a '{ckpt.task}' export")
    try:
        runner = RUNNERS[ckpt.task](ckpt, sessions)
    except (KeyError, TypeError, ValueError) as exc:
        raise OnnxError(f"{folder} is not a usable '{ckpt.task}' ONNX export ({exc})") from None
    runner.checkpoint = ckpt
    return runner


def _folder(path: Path) -> Path:
    """The export folder of `path`: itself, or the folder of a graph file in it."""
    if path.is_file() and path.suffix == ".onnx" and (path.parent / COMPANION).is_file():
        return path.parent
    if path.is_dir() and (path / COMPANION).is_file():
        return path
    if not path.exists():
        raise OnnxError(f"ONNX export not found: {path}")
    if path.is_file():
        try:
            ckpt_io.load(path)
        except ckpt_io.CheckpointError:
            raise OnnxError(f"{path} is not an ONNX export folder (nmt export CHECKPOINT OUT --format onnx "
                            "writes one)") from None
        raise OnnxError(f"{path} is an nmt checkpoint, not an ONNX export: run it without --runtime onnx, or "
                        f"write one with nmt export {path} OUT --format onnx")
    raise OnnxError(f"{path} is not an ONNX export folder (it has no {COMPANION})")


def _setup(cls, ckpt: ckpt_io.Checkpoint):
    from nmt.config import from_dict
    return from_dict(cls, ckpt.config["setup"])


# --- translation ----------------------------------------------------------------------------------------------

class OnnxSeq2Seq:
    """A Seq2Seq's decoding interface over its encoder and decoder-step graphs (nmt/models/seq2seq.py has the
    shapes). The state is what the model's is: (rnn state (L, B, H) or an LSTM pair, feed (B, 1, E) or None)."""

    def __init__(self, encoder: Session, step: Session, config):
        from nmt.models.seq2seq import Seq2Seq
        self.encoder, self.step, self.config = encoder, step, config
        self.is_lstm = config.encoder.cell == "lstm"
        self.reorder_encoder, self.reorder_state = Seq2Seq.reorder_encoder, Seq2Seq.reorder_state

    def eval(self) -> "OnnxSeq2Seq":
        return self

    def encode(self, src: Tensor, lengths: Tensor):
        """src (B, S), lengths (B,) -> EncoderOut and the initial decoder state."""
        from nmt.models.seq2seq import EncoderOut
        out = self.encoder(src=src, lengths=lengths)
        mask = torch.arange(src.size(1))[None, :] < lengths[:, None]                     # (B, S)
        rnn_state = (out["h"], out["c"]) if self.is_lstm else out["h"]
        return EncoderOut(out["memory"], out["keys"], mask, lengths), (rnn_state, None)

    def decode(self, enc, y: Tensor, state):
        """y (B, T) -> logits (B, T, V), the new state, weights (B, T, S): one graph call per step."""
        rnn_state, feed = state
        logits, weights = [], []
        for t in range(y.size(1)):
            inputs = {"memory": enc.memory, "keys": enc.keys, "mask": enc.mask, "y": y[:, t:t + 1]}
            inputs.update(zip(("h", "c"), rnn_state) if self.is_lstm else [("h", rnn_state)])
            if self.config.input_feeding:
                inputs["feed"] = feed if feed is not None else enc.memory.new_zeros(y.size(0), 1,
                                                                                     self.config.embed_size)
            out = self.step(**inputs)
            rnn_state = (out["new_h"], out["new_c"]) if self.is_lstm else out["new_h"]
            feed = out.get("new_feed")
            logits.append(out["logits"])
            weights.append(out["weights"])
        return torch.cat(logits, 1), (rnn_state, feed), torch.cat(weights, 1)

    def __call__(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, select: Tensor | None = None) -> Tensor:
        """Teacher-forced logits (B, T, V), or (N, V) of the `select`ed positions, as Seq2Seq.forward."""
        enc, state = self.encode(src, src_lengths)
        logits, _, _ = self.decode(enc, tgt_in, state)
        return logits if select is None else logits[select]


def _translator(ckpt, sessions):
    from nmt.config import Seq2SeqConfig, from_dict
    from nmt.tasks.translate import Translator
    from nmt.tokenizers import tokenizer_from_state
    toks = {k: tokenizer_from_state(v) for k, v in ckpt.tokenizers.items()}
    model = OnnxSeq2Seq(sessions["encoder"], sessions["decoder"], from_dict(Seq2SeqConfig, ckpt.config["model"]))
    return Translator(model, toks["src"], toks["tgt"])


# --- tagging --------------------------------------------------------------------------------------------------

class OnnxTagger:
    """Emissions from the graph; the best tags by the CRF (its weights from the companion) or by argmax."""

    def __init__(self, session: Session, tags: list[str], config, crf_weights: dict):
        from nmt.models.crf import CRF, iob2_constraints
        self.session, self.tags, self.config = session, list(tags), config
        self.crf = None
        if config.output == "crf":
            self.crf = CRF(config.num_tags, iob2_constraints(self.tags) if config.constrain else None)
            self.crf.load_state_dict({k.removeprefix("crf."): v for k, v in ckpt_io.state_dict_float(crf_weights)
                                      .items()})

    def eval(self) -> "OnnxTagger":
        return self

    def __call__(self, words, chars, casings, lengths, char_index=None, context=None) -> Tensor:
        """As Tagger.forward (chars (U, W) with char_index (B, S)) -> emissions (B, S, K)."""
        if char_index is None:
            b, s, w = chars.shape
            chars, char_index = chars.view(b * s, w), torch.arange(b * s).view(b, s)
        inputs = dict(words=words, chars=chars, char_index=char_index, casings=casings, lengths=lengths)
        if context is not None:
            inputs.update(zip(("fwd", "bwd", "fwd_at", "bwd_at"), context))
        return self.session(**inputs)["emissions"]

    def decode(self, emissions: Tensor, mask: Tensor) -> Tensor:
        """Best tags (B, S), zero past each sentence's end (as Tagger.decode)."""
        if self.crf is not None:
            return self.crf.decode(emissions.float(), mask)
        return emissions.argmax(-1) * mask


def _tagger(ckpt, sessions):
    from nmt.config import TaggerConfig, TagSetup, from_dict
    from nmt.tasks.tag import NERTagger
    from nmt.tokenizers import tokenizer_from_state
    config = from_dict(TaggerConfig, ckpt.config["model"])
    model = OnnxTagger(sessions["emissions"], ckpt.config["tags"], config, ckpt.model)
    context = ckpt.tokenizers.get("context")
    return NERTagger(model, tokenizer_from_state(ckpt.tokenizers["words"]), _setup(TagSetup, ckpt),
                     tokenizer_from_state(context) if context else None)


# --- classification -------------------------------------------------------------------------------------------

class OnnxClassifier:
    """Label scores (B, C) and attention weights (B, S) (or None) of a padded batch. Its config says impl=torch:
    the runner then sends whole batches through the model rather than its per-word input-term tables."""

    def __init__(self, session: Session, config):
        self.session = session
        self.config = dataclasses.replace(config, rnn=dataclasses.replace(config.rnn, impl="torch"))

    def eval(self) -> "OnnxClassifier":
        return self

    def __call__(self, tokens, lengths, chars=None, char_index=None, ngrams=None):
        inputs = dict(tokens=tokens, lengths=lengths)
        if chars is not None:
            inputs.update(chars=chars, char_index=char_index)
        if ngrams is not None:
            inputs.update(ngrams=ngrams[0], offsets=ngrams[1])
        out = self.session(**inputs)
        return out["scores"], out.get("weights")


def _classifier(ckpt, sessions):
    from nmt.config import ClassifierConfig, ClassifySetup, from_dict
    from nmt.tasks.classify import TextClassifier
    from nmt.tokenizers import tokenizer_from_state
    setup = _setup(ClassifySetup, ckpt)
    tokenizer = tokenizer_from_state(ckpt.tokenizers["chars" if setup.model.unit == "char" else "words"])
    model = OnnxClassifier(sessions["classifier"], from_dict(ClassifierConfig, ckpt.config["model"]))
    return TextClassifier(model, tokenizer, setup, [str(label) for label in ckpt.config["labels"]])


# --- character models -----------------------------------------------------------------------------------------

class OnnxCharLM:
    """A character model (or ensemble) over its chunk graph. The state is a tuple of the graph's state tensors
    (each member's h (L, B, H) and, for an LSTM, c); None starts from zeros."""

    def __init__(self, session: Session, config):
        self.session, self.config = session, config
        self.names = sorted((n for n in session.inputs if n != "x"), key=lambda n: (int(n[1:]), n[0] == "c"))

    def eval(self) -> "OnnxCharLM":
        return self

    def __call__(self, x: Tensor, state: tuple | None = None) -> tuple[Tensor, tuple]:
        """x (B, T) -> logits (B, T, V) (an ensemble: log-probabilities), the new state."""
        if state is None:
            state = tuple(torch.zeros(self.config.rnn.num_layers, x.size(0), self.config.rnn.hidden_size)
                          for _ in self.names)
        out = self.session(x=x, **dict(zip(self.names, state)))
        return out["logits"], tuple(out[f"new_{n}"] for n in self.names)

    def stepper(self) -> "_Stepper":
        return _Stepper(self)

    def state_dict(self):
        raise OnnxError("dynamic evaluation trains the model: run it without --runtime onnx")


class _Stepper:
    """nmt/models/charlm.Stepper's interface: split a state into a mutable list, step one token at a time."""

    def __init__(self, model: OnnxCharLM):
        self.model = model

    @staticmethod
    def split(state) -> list:
        return list(state)

    def __call__(self, token: Tensor, layers: list) -> Tensor:
        """token (B,) -> logits (B, V); `layers` is updated in place."""
        logits, layers[:] = self.model(token[:, None], tuple(layers))
        return logits[:, 0]


def _generator(ckpt, sessions):
    from nmt.config import CharLMConfig, CharLMSetup, from_dict
    from nmt.tasks.charlm import TextGenerator
    from nmt.tokenizers import tokenizer_from_state
    model = OnnxCharLM(sessions["step"], from_dict(CharLMConfig, ckpt.config["model"]))
    return TextGenerator(model, tokenizer_from_state(ckpt.tokenizers["chars"]), _setup(CharLMSetup, ckpt))


# --- forecasting ----------------------------------------------------------------------------------------------

class OnnxForecaster:
    """x (B, L, C) z-scored windows -> forecasts (B, H, C)."""

    def __init__(self, session: Session, config):
        self.session, self.config = session, config

    def eval(self) -> "OnnxForecaster":
        return self

    def __call__(self, x: Tensor) -> Tensor:
        return self.session(x=x.float())["forecast"]


def _forecaster(ckpt, sessions):
    import pandas as pd

    from nmt.config import ForecastConfig, ForecastSetup, from_dict
    from nmt.tasks.forecast import Forecast, Scaler
    series = ckpt.config["series"]
    step = pd.Timedelta(series["step"]) if series.get("step") else None
    model = OnnxForecaster(sessions["forecast"], from_dict(ForecastConfig, ckpt.config["model"]))
    return Forecast(model, _setup(ForecastSetup, ckpt), list(series["columns"]), Scaler.from_dict(series), step)


RUNNERS = {"translate": _translator, "tag": _tagger, "classify": _classifier, "charlm": _generator,
           "forecast": _forecaster}
