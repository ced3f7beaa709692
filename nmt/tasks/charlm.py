"""Character language modelling: truncated-BPTT training on a text stream, evaluation, and sampling.

Training reads the text as B parallel contiguous streams and walks them in chunks of `unroll` characters. The
hidden state is carried from one chunk to the next but detached: full backpropagation through time over a
1M-character text would cost O(T) time and memory per update (every a^t kept for the backward sweep), so the
gradient is truncated to the chunk while the state still carries information across chunk boundaries.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from nmt import checkpoint as ckpt_io
from nmt import metrics
from nmt.config import (CHARLM_PRESETS, CharLMConfig, CharLMSetup, ConfigError, SampleConfig)
from nmt.data import DataError
from nmt.decoding import GREEDY_BELOW, GumbelDraws, sample_logits
from nmt.models.charlm import CharLM, CharLMEnsemble, build, stepper
from nmt.tasks.base import Runner, Task, Validation
from nmt.tokenizers import CharTokenizer

TASK = "charlm"
SETUP, PRESETS = CharLMSetup, CHARLM_PRESETS
SPECIAL = 4     # ids below this (<pad>, <s>, </s>, <unk>) are never sampled


@dataclass
class Chunk:
    x: Tensor        # (B, T) input characters
    y: Tensor        # (B, T) the next characters
    reset: bool      # first chunk of an epoch: start from a zero state


def split_text(text: str, train_share: float = 0.9) -> tuple[str, str]:
    """The nanoGPT convention: first 90% train, last 10% validation."""
    cut = int(len(text) * train_share)
    return text[:cut], text[cut:]


def stream_chunks(ids: Tensor, streams: int, unroll: int, offset: int = 0) -> list[Chunk]:
    """Cut a 1-D id tensor into `streams` contiguous rows and walk them `unroll` steps at a time."""
    length, ids = ids.numel(), ids[offset:]
    per_stream = (ids.numel() - 1) // streams
    if per_stream < 1:
        raise DataError(f"a text of {length} characters is too short for {streams} streams of training or "
                        "validation (give a longer text, or fewer data.streams / data.val_streams)")
    x = ids[: streams * per_stream].view(streams, per_stream)                        # (B, N)
    y = ids[1: streams * per_stream + 1].view(streams, per_stream)                   # (B, N)
    return [Chunk(x[:, i:i + unroll], y[:, i:i + unroll], i == 0) for i in range(0, per_stream, unroll)]


def loss_scores(nll: float, count: int) -> dict:
    """Summed negative log-likelihood over `count` characters -> loss (nats/char), bits/char, perplexity."""
    loss = nll / count
    return {"loss": loss, "bpc": metrics.bits_per_char(loss), "perplexity": metrics.perplexity(loss),
            "characters": count}


@torch.inference_mode()
def evaluate_ids(model: CharLM, ids: Tensor, streams: int = 1, unroll: int = 256) -> dict:
    """Loss in nats per character with the hidden state carried through the text, bits per character, perplexity."""
    model.eval()
    state, nll, count = None, 0.0, 0
    for chunk in stream_chunks(ids, streams, unroll):
        logits, state = model(chunk.x, state)
        nll += float(F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), chunk.y.reshape(-1),
                                     reduction="sum"))
        count += chunk.y.numel()
    return loss_scores(nll, count)


def evaluate_dynamic(model: CharLM, ids: Tensor, lr: float, decay: float = 0.0, unroll: int = 50) -> dict:
    """Dynamic evaluation (Krause et al. 2018): one stream through the text in chunks of `unroll`; each chunk is
    scored first, then the model takes one SGD step on that chunk's mean loss (w <- w - lr * grad) and is pulled
    back towards its trained weights (w <- w + decay * (w_trained - w)), so it adapts to the text it has already
    read (recent names, the current scene). A different measure from `evaluate_ids`: the model changes as it
    reads. Works on a float32 copy; the given model is untouched. Returns what `evaluate_ids` returns."""
    state_dict = {k: v.float() for k, v in model.state_dict().items()}
    model = build(model.config).eval()                                 # eval: no dropout while adapting
    model.load_state_dict(state_dict)
    params = [p for p in model.parameters() if p.requires_grad]
    trained = [p.detach().clone() for p in params]
    state, nll, count = None, 0.0, 0
    for chunk in stream_chunks(ids, 1, unroll):
        with torch.enable_grad():
            logits, state = model(chunk.x, state)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), chunk.y.reshape(-1), reduction="sum")
            (loss / chunk.y.numel()).backward()
        nll, count, state = nll + float(loss.detach()), count + chunk.y.numel(), CharLM.detach(state)
        with torch.no_grad():
            for p, p0 in zip(params, trained):
                p.sub_(p.grad, alpha=lr).add_(p0 - p, alpha=decay)
                p.grad = None
    return loss_scores(nll, count)


class CharLMTask(Task):
    name = TASK
    shards_itself = True      # each stream's hidden state stays on one rank

    def __init__(self, setup: CharLMSetup, tokenizer: CharTokenizer, train_text: str, valid_text: str,
                 meta: dict | None = None):
        self.setup, self.tokenizer, self.meta = setup, tokenizer, meta or {}
        self.train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
        self.valid_ids = torch.tensor(tokenizer.encode(valid_text), dtype=torch.long)
        self.state = None
        self.rows = slice(None)       # the streams this process trains on (all of them without torchrun)

    def shard(self, rank: int, world: int) -> None:
        """Data parallelism splits the B streams, not the chunks: each stream's hidden state stays on one rank."""
        streams = self.setup.data.streams
        if streams % world:
            raise ConfigError(f"data.streams ({streams}) must be divisible by the number of processes ({world})")
        per = streams // world
        self.rows = slice(rank * per, (rank + 1) * per)

    def batches(self, epoch: int) -> list[Chunk]:
        d = self.setup.data
        offset = random.Random(self.setup.train.seed + epoch).randrange(d.unroll)   # new chunk borders each epoch
        chunks = stream_chunks(self.train_ids, d.streams, d.unroll, offset)
        if self.rows == slice(None):
            return chunks
        return [Chunk(c.x[self.rows], c.y[self.rows], c.reset) for c in chunks]

    def loss(self, model: CharLM | CharLMEnsemble, chunk: Chunk):
        """Cross-entropy per character; an ensemble's members each fit the data on their own (the mean of their
        losses), so that they stay distinct models rather than parts of one mixture."""
        state = None if chunk.reset else CharLM.detach(self.state)
        ensemble = isinstance(model, CharLMEnsemble)
        outputs = model.each(chunk.x, state) if ensemble else [model(chunk.x, state)]  # [((B, T, V), state)]
        self.state = tuple(s for _, s in outputs) if ensemble else outputs[0][1]
        losses = [F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), chunk.y.reshape(-1))
                  for logits, _ in outputs]
        loss = sum(losses) / len(losses)
        return loss, {"tokens": chunk.y.numel(), "nll": float(loss.detach()) * chunk.y.numel()}

    def validate(self, model: CharLM) -> Validation:
        d = self.setup.data
        result = evaluate_ids(model, self.valid_ids, d.val_streams, d.val_unroll)
        text = "".join(generate(model, self.tokenizer, "\n", 160, temperature=0.8, seed=0))
        metrics = {"valid_loss": result["loss"], "valid_bpc": result["bpc"]}
        return Validation(metrics, -result["loss"], [(text.replace("\n", " / "),)])

    def make_checkpoint(self, model: CharLM) -> ckpt_io.Checkpoint:
        return self.checkpoint_of(model, model.config, {"chars": self.tokenizer})


@torch.inference_mode()
def generate_batch(model: CharLM, tokenizer: CharTokenizer, prime: str, length: int, temperature: float = 0.8,
                   top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                   num_samples: int = 1) -> Iterator[list[str]]:
    """Yield, for each new step, the next character of each of `num_samples` samples (one-to-many sampling).

    The prime is read once (one batched forward), then each step feeds the sampled characters back in.
    temperature 0 is greedy (deterministic); the same seed gives the same text.
    """
    model.eval()
    generator = torch.Generator().manual_seed(seed if seed is not None else random.randrange(2 ** 31))
    ids = tokenizer.encode(prime) or [tokenizer.encode("\n")[0]]
    x = torch.tensor([ids] * num_samples)                                             # (B, P)
    logits, state = model(x)
    # one or a few streams are bound by reading the weights: float16 matrices halve the bytes (for larger batches
    # the products are compute-bound and float32 is faster on CPUs without float16 arithmetic)
    step = stepper(model, half=num_samples <= 4)
    layers = step.split(state)
    last = logits[:, -1].float()                                                      # (B, V)
    plain = not top_k and top_p >= 1.0 and temperature >= GREEDY_BELOW
    draw = GumbelDraws(num_samples, last.size(-1), generator, barred=SPECIAL) if plain else None
    for _ in range(length):
        if draw is not None:                      # the same distribution as sample_logits, in fewer calls
            token = draw(last, temperature)                                           # (B,)
        else:
            last[:, :SPECIAL] = float("-inf")
            token = sample_logits(last, temperature, top_k, top_p, generator)        # (B,)
        yield [tokenizer.itos[i] for i in token.tolist()]
        last = step(token, layers).float()


def generate(model, tokenizer, prime: str, length: int, **kw) -> Iterator[str]:
    """One sample, character by character."""
    for chars in generate_batch(model, tokenizer, prime, length, num_samples=1, **kw):
        yield chars[0]


class TextGenerator(Runner):
    """A character model and its alphabet: sampling (one-to-many) and scoring text."""
    task, parts = TASK, (build, CharLMConfig, "chars", CharLMSetup)
    model: CharLM | CharLMEnsemble
    tokenizer: CharTokenizer
    setup: CharLMSetup

    def unknown(self, text: str) -> set[str]:
        """Characters of `text` the model never saw (read as <unk>)."""
        return self.tokenizer.unknown(text)

    def sample(self, options: SampleConfig, seed: int | None = None) -> Iterator[list[str]]:
        """For each new step, the next character of each of `options.num_samples` samples."""
        return generate_batch(self.model, self.tokenizer, options.prime, options.length, options.temperature,
                              options.top_k, options.top_p, seed, options.num_samples)

    def evaluate(self, text: str, dynamic_lr: float = 0.0, dynamic_decay: float = 0.0) -> dict:
        """Loss (nats/char), bits per character and perplexity of `text`, read as one stream; with dynamic_lr >
        0, by dynamic evaluation (`evaluate_dynamic`: the model learns from each chunk after scoring it)."""
        ids = torch.tensor(self.tokenizer.encode(text))
        if dynamic_lr > 0:
            return evaluate_dynamic(self.model, ids, dynamic_lr, dynamic_decay)
        return evaluate_ids(self.model, ids, streams=1, unroll=self.setup.data.eval_unroll)


def train(setup: CharLMSetup, train_text: str, valid_text: str, run_dir: str | Path, callbacks=(),
          meta: dict | None = None):
    """Train (or resume) on `train_text`, validating on `valid_text`; returns (state, run_dir)."""
    from nmt.runs import fit_run, start_run
    setup, toks = start_run(setup, run_dir, TASK, SETUP, callbacks)
    tokenizer = toks["chars"] if toks else CharTokenizer.train([train_text])
    setup.model.vocab_size = tokenizer.vocab_size
    task = CharLMTask(setup, tokenizer, train_text, valid_text, meta)
    return fit_run(build(setup.model), task, setup.train, run_dir, callbacks)


RUNNER = TextGenerator
