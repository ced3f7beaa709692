"""The one checkpoint format of every task, and the only module that saves or loads weights.

A checkpoint is a torch zip file holding one dict of plain data and tensors:

    format "nmt-checkpoint", version, task, config (nested dict), tokenizers (name -> state dict),
    model (state dict), scores (name -> number), meta (free-form strings), train_state (optional, for resume)

It is read with `torch.load(weights_only=True)`, which executes no pickled code, and written to a temporary file
in the same folder and then renamed, so a crash mid-write never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

FORMAT = "nmt-checkpoint"
VERSION = 2
# config keys that version 1 wrote and version 2 no longer has (dead settings), dropped when a v1 file is read
RETIRED_V1 = {
    "translate": ("setup.tokenizer.kind", "model.bos_id", "model.eos_id", "setup.model.bos_id",
                  "setup.model.eos_id", "setup.decode.batch_size"),
    "summarize": ("model.seq2seq.bos_id", "model.seq2seq.eos_id", "setup.model.seq2seq.bos_id",
                  "setup.model.seq2seq.eos_id"),
    "tag": ("setup.data.tag_column", "setup.data.scheme"),
}


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, foreign, too new or of another task."""


@dataclass
class Checkpoint:
    task: str
    config: dict
    model: dict                                        # state dict
    tokenizers: dict = field(default_factory=dict)     # name -> tokenizer state
    scores: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    train_state: dict | None = None

    def num_parameters(self) -> int:
        seen, total = set(), 0
        for name, tensor in self.model.items():
            if name.endswith(".int8_scale"):           # an int8 matrix's row scales (nmt/quantize.py)
                continue
            key = (tensor.data_ptr(), tensor.shape)
            if key not in seen:                        # tied weights count once
                seen.add(key)
                total += tensor.numel()
        return total


def save(path: str | Path, ckpt: Checkpoint) -> None:
    """Write atomically (see `write_atomic`)."""
    payload = {"format": FORMAT, "version": VERSION, "task": ckpt.task, "config": ckpt.config,
               "model": ckpt.model, "tokenizers": ckpt.tokenizers, "scores": ckpt.scores, "meta": ckpt.meta,
               "train_state": ckpt.train_state}
    write_atomic(path, lambda f: torch.save(payload, f))


def write_atomic(path: str | Path, content) -> None:
    """Write bytes (or call `content(file)`) to a temp file in the target folder, fsync, rename: a crash mid-write
    never leaves a half-written file behind (a `.NAME.*.tmp` at worst, which the next run start removes)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:                       # name the file asked for, not the temporary one
        raise OSError(exc.errno, f"cannot write there ({exc.strerror})", str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            content(f) if callable(content) else f.write(content)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, task: str | None = None) -> Checkpoint:
    """Read a checkpoint; with `task`, refuse a checkpoint of another task. Errors are one-line CheckpointErrors."""
    path = Path(path)
    if not path.is_file():
        from nmt.data import what_is
        kind = what_is(path)
        raise CheckpointError(f"checkpoint not found: {path}" if kind == "no such file"
                              else f"{path} is {kind}, not a checkpoint")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # zip, pickle and unpickler errors all mean the same to a user
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path} is not a readable nmt checkpoint (truncated or foreign file: {reason[:120]})")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an nmt checkpoint")
    kinds = {"task": str, "config": dict, "model": dict}
    wrong = [k for k, kind in kinds.items() if not isinstance(data.get(k), kind)]
    if wrong:
        raise CheckpointError(f"{path} is a damaged nmt checkpoint: '{wrong[0]}' is missing or malformed")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} has format version {data['version']}; this nmt reads up to {VERSION}, "
                              "please upgrade nmt")
    if task is not None and data["task"] != task:
        raise CheckpointError(f"{path} is a '{data['task']}' checkpoint, not a '{task}' one")
    if data.get("version", 0) < 2:
        _drop_keys(data["config"], RETIRED_V1.get(data["task"], ()))
    return Checkpoint(task=data["task"], config=data["config"], model=data["model"],
                      tokenizers=data.get("tokenizers") or {}, scores=data.get("scores") or {},
                      meta=data.get("meta") or {}, train_state=data.get("train_state"))


def describe(ckpt: Checkpoint) -> dict:
    """Task, parameter count, weight types, vocabulary sizes, scores, meta and config of a checkpoint."""
    from nmt.tokenizers import tokenizer_from_state
    return {"task": ckpt.task, "parameters": ckpt.num_parameters(),
            "weights": sorted({str(t.dtype).replace("torch.", "") for t in ckpt.model.values()}),
            "vocab": {k: tokenizer_from_state(v).vocab_size for k, v in ckpt.tokenizers.items()},
            "scores": ckpt.scores, "meta": ckpt.meta, "resumable": ckpt.train_state is not None,
            "config": ckpt.config}


def _drop_keys(config: dict, dotted_keys) -> None:
    for dotted in dotted_keys:
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)


def check_finite(model: dict[str, Any]) -> None:
    """Refuse weights holding NaN or infinity (a diverged run): they would only ever produce garbage."""
    bad = [name for name, t in model.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise CheckpointError(f"weights are not finite (NaN or infinity) in {len(bad)} tensor(s), e.g. {bad[0]}: "
                              "the run diverged; use an earlier checkpoint")


def release(ckpt: Checkpoint, half: bool = True) -> Checkpoint:
    """A copy for shipping: no training state, floating weights in float16 (models cast back on load). Refuses
    weights that are not finite, or that float16 cannot hold."""
    check_finite(ckpt.model)
    cast: dict[tuple, torch.Tensor] = {}             # tied weights stay one tensor, stored once
    model = {}
    for name, tensor in ckpt.model.items():
        if half and tensor.is_floating_point():
            # tied = same address *and* layout: a view of the first rows starts at the same address too
            key = (tensor.data_ptr(), tensor.shape, tensor.stride(), tensor.dtype)
            if key not in cast:
                cast[key] = tensor.half()
            tensor = cast[key]
        model[name] = tensor
    if half and any(not bool(torch.isfinite(t).all()) for t in cast.values()):
        raise CheckpointError("some weights exceed float16's range (65504): export with --fp32")
    return Checkpoint(ckpt.task, ckpt.config, model, ckpt.tokenizers, ckpt.scores, dict(ckpt.meta), None)


def average(ckpts: list[Checkpoint]) -> Checkpoint:
    """The element-wise mean of the weights of several checkpoints of one run (Polyak averaging over its last
    validations), with the config, tokenizers and scores of the last one and no training state. Checkpoints of
    different tasks, models or tokenizers are refused."""
    if not ckpts:
        raise CheckpointError("nothing to average")
    last = ckpts[-1]
    for ckpt in ckpts[:-1]:
        if ckpt.task != last.task or ckpt.config.get("model") != last.config.get("model"):
            raise CheckpointError("cannot average checkpoints of different tasks or models")
        if ckpt.model.keys() != last.model.keys() or not _same_tokenizers(ckpt.tokenizers, last.tokenizers):
            raise CheckpointError("cannot average checkpoints with different weights or tokenizers")
    model, done = {}, {}                               # tied weights: average once, share the result
    for name, tensor in last.model.items():
        key = (tensor.data_ptr(), tensor.shape, tensor.stride())
        if key not in done:
            if tensor.is_floating_point():
                total = sum(c.model[name].double() for c in ckpts)
                done[key] = (total / len(ckpts)).to(tensor.dtype)
            else:
                done[key] = tensor
        model[name] = done[key]
    meta = dict(last.meta, averaged=len(ckpts))
    return Checkpoint(last.task, last.config, model, last.tokenizers, dict(last.scores), meta, None)


def ensemble(ckpts: list[Checkpoint]) -> Checkpoint:
    """Several runs' checkpoints of one model shape and tokenizers joined into one model of `members` K, whose
    weights are theirs under `members.k.` (models/charlm.CharLMEnsemble), with the config and tokenizers of the
    first and no scores (they were the members' own) or training state."""
    first = ckpts[0]
    for ckpt in ckpts:
        if ckpt.config.get("model", {}).get("members", 1) != 1:
            raise CheckpointError("cannot join a checkpoint that is already an ensemble")
        if ckpt.task != first.task or ckpt.config.get("model") != first.config.get("model"):
            raise CheckpointError("cannot join checkpoints of different tasks or model configurations")
        if not _same_tokenizers(ckpt.tokenizers, first.tokenizers):
            raise CheckpointError("cannot join checkpoints with different tokenizers")
    model = {f"members.{k}.{name}": t for k, ckpt in enumerate(ckpts) for name, t in ckpt.model.items()}
    config = dict(first.config, model=dict(first.config["model"], members=len(ckpts)))
    return Checkpoint(first.task, config, model, first.tokenizers, {}, dict(first.meta, members=len(ckpts)), None)


def _same_tokenizers(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(same_state(a[name], b[name]) for name in a)


def same_state(a: dict, b: dict) -> bool:
    """Whether two state dicts (a tokenizer's, say) hold equal values: tensors compared by value."""
    if a.keys() != b.keys():
        return False
    return all(a[k].equal(b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


def state_dict_float(state: dict[str, Any]) -> dict[str, Any]:
    """Cast float16 weights of a released checkpoint back to float32 for CPU inference."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}

