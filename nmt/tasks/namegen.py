"""Conditional name generation, the course's one-to-many shape: one input (a language) -> a name, character by
character (nmt/models/namegen.py has the unfolded formulation). Training reads (language, name) pairs of the same
seeded split as `classify --corpus names`; the NameSampler runner samples names, scores held-out names (negative
log-likelihood per character, </s> included) and marks samples that copy a training name.

The unconditional baseline (`data.conditional=false`) is the same model with one condition, <any>, for every name.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt import checkpoint as ckpt_io
from nmt.config import NAMEGEN_PRESETS, ConfigError, NameGenConfig, NameGenSetup, SampleConfig, from_dict
from nmt.data import DataError, bucket_batches, pad
from nmt.decoding import sample_logits
from nmt.models.namegen import NameGenerator, name_hash
from nmt.tasks.base import Runner, Task, Validation, model_weights
from nmt.tokenizers import EOS, UNK, CharTokenizer, tokenizer_from_state

TASK = "namegen"
SETUP, PRESETS = NameGenSetup, NAMEGEN_PRESETS
ANY = "<any>"        # the one condition of an unconditional model


@dataclass
class NameBatch:
    inputs: Tensor       # (B, T) the condition's row, then the name's characters
    targets: Tensor      # (B, T) the name's characters, then </s>; 0 on padding
    lengths: Tensor      # (B,) name length + 1


def encode_names(model_rows: int, tokenizer: CharTokenizer, pairs, condition_ids: dict) -> list[tuple[int, list]]:
    """(condition, name) pairs -> (row of the condition in the input table, character ids)."""
    return [(model_rows + condition_ids[c], tokenizer.encode(name)) for c, name in pairs]


def make_batch(items: list[tuple[int, list]], index: list[int]) -> NameBatch:
    inputs, lengths = pad([[items[i][0]] + items[i][1] for i in index])
    targets, _ = pad([items[i][1] + [EOS] for i in index])
    return NameBatch(inputs, targets, lengths)


class NameGenTask(Task):
    name = TASK

    def __init__(self, setup: NameGenSetup, tokenizer: CharTokenizer, conditions: list[str], train, valid,
                 meta: dict | None = None):
        self.setup, self.tokenizer, self.conditions, self.meta = setup, tokenizer, list(conditions), meta or {}
        ids = {c: i for i, c in enumerate(conditions)}
        rows = setup.model.vocab_size
        self.train = [x for x in encode_names(rows, tokenizer, train, ids) if len(x[1]) <= setup.data.max_len]
        self.valid = list(valid)
        self.known = sorted({name_hash(name) for _, name in train})

    def batches(self, epoch: int) -> list[NameBatch]:
        c = self.setup.train
        groups = bucket_batches([len(x[1]) + 1 for x in self.train], 0, c.batch_size, True, c.seed + epoch)
        return [make_batch(self.train, g) for g in groups]

    def loss(self, model: NameGenerator, batch: NameBatch):
        logits, _ = model(batch.inputs, batch.lengths)                                # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), ignore_index=0)
        chars = int(batch.lengths.sum())
        return loss, {"tokens": chars, "nll": float(loss.detach()) * chars}

    def validate(self, model: NameGenerator) -> Validation:
        sampler = NameSampler(model, self.tokenizer, self.setup, self.conditions)
        nll = sampler.nll(self.valid)
        samples = [(c, ", ".join(sampler.sample(c, SampleConfig(num_samples=4, temperature=0.8), seed=0)))
                   for c in self.conditions[:: max(1, len(self.conditions) // 3)][:3]]
        return Validation({"valid_nll": nll, "valid_ppl": math.exp(nll)}, -nll, samples)

    def make_checkpoint(self, model: NameGenerator) -> ckpt_io.Checkpoint:
        return self.checkpoint_of(model, model.config, {"chars": self.tokenizer}, conditions=list(self.conditions),
                                  known=len(self.known))


def train(setup: NameGenSetup, train_pairs, valid_pairs, run_dir: str | Path, callbacks=(), meta: dict | None = None):
    """Train (or resume) on (language, name) pairs, validating on NLL per character; returns (state, run_dir)."""
    from nmt.runs import fit_run, start_run
    if not setup.data.conditional:
        train_pairs, valid_pairs = [(ANY, n) for _, n in train_pairs], [(ANY, n) for _, n in valid_pairs]
    conditions = sorted({c for c, _ in train_pairs})
    unseen = sorted({c for c, _ in valid_pairs} - set(conditions))
    if unseen:
        raise DataError(f"dev conditions never seen in training: {', '.join(unseen[:5])}")
    if setup.data.eval_per_epoch:
        setup.train.eval_every = max(1, math.ceil(len(train_pairs) / setup.train.batch_size)
                                     // setup.data.eval_per_epoch)
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    tokenizer = toks["chars"] if toks else CharTokenizer.train(name for _, name in train_pairs)
    setup.model.vocab_size = tokenizer.vocab_size
    task = NameGenTask(setup, tokenizer, conditions, train_pairs, valid_pairs, meta)
    model = NameGenerator(setup.model, len(conditions), len(task.known))
    model.known.copy_(torch.tensor(task.known, dtype=torch.long))
    return fit_run(model, task, setup.train, run_dir, callbacks)


class NameSampler(Runner):
    """A conditional character model: names sampled for a condition, and the likelihood of given names."""
    task = TASK
    model: NameGenerator
    tokenizer: CharTokenizer
    setup: NameGenSetup

    def __init__(self, model: NameGenerator, tokenizer: CharTokenizer, setup: NameGenSetup, conditions: list[str]):
        super().__init__(model, tokenizer, setup)
        self.conditions = list(conditions)

    @classmethod
    def from_checkpoint(cls, ckpt: ckpt_io.Checkpoint) -> "NameSampler":
        conditions = [str(c) for c in ckpt.config["conditions"]]
        model = model_weights(ckpt, NameGenerator, NameGenConfig, len(conditions), int(ckpt.config["known"]))
        return cls(model, tokenizer_from_state(ckpt.tokenizers["chars"]), from_dict(NameGenSetup, ckpt.config["setup"]),
                   conditions)

    @property
    def conditional(self) -> bool:
        return self.conditions != [ANY]

    def condition(self, name: str | None) -> int:
        """The number of a condition, matched without regard to case; a ConfigError lists the valid ones."""
        if not self.conditional:
            return 0
        found = {c.lower(): i for i, c in enumerate(self.conditions)}.get((name or "").lower())
        if found is None:
            what = f"unknown condition '{name}'" if name else "this model needs a --condition"
            raise ConfigError(f"{what} (valid: {', '.join(self.conditions)})")
        return found

    @torch.inference_mode()
    def sample(self, condition: str | None, options: SampleConfig, seed: int | None = None) -> list[str]:
        """`options.num_samples` names for the condition, each up to </s> or `options.length` characters; a
        non-blank `options.prime` is the start of every name."""
        self.model.eval()
        k, n = self.condition(condition), options.num_samples
        generator = torch.Generator().manual_seed(seed if seed is not None else random.randrange(2 ** 31))
        logits, state = self.model.start(torch.full((n,), k))                          # step 0: (B, V)
        start = options.prime.strip()
        if start:
            logits, state = self.model(torch.tensor([self.tokenizer.encode(start)] * n), state=state)
            logits = logits[:, -1]
        names, done = [[] for _ in range(n)], torch.zeros(n, dtype=torch.bool)
        for _ in range(options.length - len(start)):
            logits = logits.float()
            logits[:, :EOS] = float("-inf")                  # <pad>, <s>: never; </s> ends a name
            logits[:, UNK] = float("-inf")
            chars = sample_logits(logits, options.temperature, options.top_k, options.top_p, generator)   # (B,)
            done |= chars == EOS
            if bool(done.all()):
                break
            for i in (~done).nonzero().flatten().tolist():
                names[i].append(int(chars[i]))
            logits, state = self.model.step(chars, state)
        return [start + self.tokenizer.decode(ids) for ids in names]

    def nll(self, pairs: list[tuple[str, str]], condition: str | None = None) -> float:
        """Negative log-likelihood per character (nats, </s> counted) of (condition, name) pairs, each read with
        its own condition or, when given, with `condition`."""
        nats = self.nats(pairs, condition)
        return float(nats.sum()) / max(1, sum(len(name) + 1 for _, name in pairs))

    @torch.inference_mode()
    def nats(self, pairs: list[tuple[str, str]], condition: str | None = None, batch_size: int = 512) -> Tensor:
        """The negative log-likelihood (nats) of each name (N,), read as `nll` says."""
        self.model.eval()
        fixed = None if condition is None else self.condition(condition)
        rows = self.model.config.vocab_size
        items = [(rows + (self.condition(c) if fixed is None else fixed), self.tokenizer.encode(name))
                 for c, name in pairs]
        result = torch.zeros(len(items))
        for group in bucket_batches([len(x[1]) for x in items], 0, batch_size, shuffle=False):
            batch = make_batch(items, group)
            logits, _ = self.model(batch.inputs, batch.lengths)                        # (B, T, V)
            per_char = F.cross_entropy(logits.transpose(1, 2).float(), batch.targets, ignore_index=0,
                                       reduction="none")                              # (B, T)
            result[group] = per_char.sum(dim=1)
        return result

    def unknown(self, text: str) -> set[str]:
        return self.tokenizer.unknown(text)


def conditioning(sampler: NameSampler, pairs: list[tuple[str, str]], baseline: NameSampler | None = None) -> dict:
    """What the condition buys on held-out (language, name) pairs: NLL per character with the right language,
    with each wrong language (the mean over them, and the best of them), and under an unconditional `baseline`;
    {"languages": {lang: row}, "all": row} ("all": over every character of every name)."""
    langs = [c for c, _ in pairs]
    chars = torch.tensor([len(n) + 1 for _, n in pairs], dtype=torch.float64)           # </s> counts

    def per_char(nats: Tensor, keep: Tensor) -> float:
        return float(nats[keep].double().sum() / chars[keep].sum())

    right = sampler.nats(pairs)
    read_as = {w: sampler.nats(pairs, w) for w in sampler.conditions} if sampler.conditional else {}
    base = baseline.nats(pairs) if baseline is not None else None
    rows = {}
    for lang in sorted(set(langs)) + ["all"]:
        mine = torch.tensor([lang in ("all", c) for c in langs])
        row = {"names": int(mine.sum()), "right": per_char(right, mine)}
        others = {w: mine & torch.tensor([c != w for c in langs]) for w in read_as}
        wrong = [per_char(read_as[w], keep) for w, keep in others.items() if keep.any()]
        if wrong:
            row.update(wrong_mean=sum(wrong) / len(wrong), wrong_best=min(wrong))
        if base is not None:
            row["unconditional"] = per_char(base, mine)
        rows[lang] = row
    return {"languages": {k: v for k, v in rows.items() if k != "all"}, "all": rows["all"]}


def recognised(sampler: NameSampler, classifier, pairs: list[tuple[str, str]], per_language: int, seed: int = 1,
               temperature: float = 1.0) -> dict:
    """The share (%) of `per_language` sampled names per language that the language classifier assigns to that
    language, beside the same share for the real held-out names; per language and macro (equal weight), plus
    the share of samples that copy a training name."""
    rows, copies = {}, 0
    for k, lang in enumerate(sampler.conditions):
        names = sampler.sample(lang, SampleConfig(num_samples=per_language, temperature=temperature), seed + k)
        copies += sum(sampler.model.is_known(names))
        real = [n for c, n in pairs if c == lang]
        rows[lang] = {"generated": 100 * sum(p == lang for p in classifier.predict(names)) / len(names),
                      "real": 100 * sum(p == lang for p in classifier.predict(real)) / max(1, len(real)),
                      "real_names": len(real)}
    macro = {k: sum(r[k] for r in rows.values()) / len(rows) for k in ("generated", "real")}
    return {"languages": rows, "macro": macro, "copied": 100 * copies / (per_language * len(rows))}


RUNNER = NameSampler
