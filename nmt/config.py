"""Configuration dataclasses: the ONLY place where defaults live.

Every component takes its own sub-config (or plain arguments). Configs are built from nested dicts with
`from_dict`, which rejects unknown keys and wrong types and names the dotted key at fault, so a typo in a config
file or a checkpoint from a newer version fails loudly instead of being silently ignored.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, TypeVar


class ConfigError(ValueError):
    """A configuration value is unknown or has the wrong type."""


@dataclass
class TokenizerConfig:
    kind: str = "sentencepiece"   # sentencepiece | char | word
    model_type: str = "unigram"   # sentencepiece algorithm: unigram | bpe
    vocab_size: int = 8000        # sentencepiece vocabulary size (joint when joint=True)
    character_coverage: float = 1.0  # share of characters sentencepiece must cover
    joint: bool = True            # one model for source and target (allows tied embeddings)


@dataclass
class RNNConfig:
    cell: str = "gru"             # rnn | lstm | gru
    impl: str = "fused"           # fused: torch.nn.GRU/LSTM/RNN; scratch: nmt.models.cells (teaching, checks)
    hidden_size: int = 256        # H per direction
    num_layers: int = 1           # L
    bidirectional: bool = True
    dropout: float = 0.0          # between stacked layers


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int = 0       # filled in from the tokenizer
    tgt_vocab_size: int = 0
    embed_size: int = 256         # E
    encoder: RNNConfig = field(default_factory=lambda: RNNConfig(hidden_size=256, bidirectional=True))
    decoder_hidden: int = 512     # decoder H
    decoder_layers: int = 1
    attention: str = "bahdanau"   # bahdanau (additive) | dot | general (Luong)
    input_feeding: bool = False   # feed the previous attentional vector to the decoder (forces a step loop)
    bridge: bool = True           # initial decoder state from the final encoder states (else zeros)
    dropout: float = 0.3
    emb_dropout: float = 0.3
    tie_output: bool = True       # output projection shares the target embedding
    tie_src_tgt: bool = True      # source and target share embeddings (needs a joint vocabulary)
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2


@dataclass
class CharLMConfig:
    vocab_size: int = 0           # filled in from the tokenizer
    embed_size: int = 512         # E
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=512, num_layers=2,
                                                            bidirectional=False, dropout=0.25))
    dropout: float = 0.25         # on the RNN output
    emb_dropout: float = 0.1      # on the character embeddings
    weight_drop: float = 0.0      # DropConnect on the recurrent matrices (AWD-LSTM)
    tie_weights: bool = False     # output layer shares the embedding (through a projection if H != E)


@dataclass
class SummarizerConfig:
    seq2seq: Seq2SeqConfig = field(default_factory=lambda: Seq2SeqConfig(
        embed_size=128, encoder=RNNConfig(hidden_size=256, bidirectional=True), decoder_hidden=256,
        dropout=0.3, emb_dropout=0.2, tie_src_tgt=True, tie_output=True))
    pointer: bool = True          # copy source words through the attention (See et al. 2017)
    coverage: bool = True         # coverage vector into attention, plus the coverage loss
    coverage_weight: float = 1.0  # lambda of the coverage loss


@dataclass
class SummaryDataConfig:
    vocab_size: int = 20000       # words (lowercased), the rest copied or <unk>
    min_count: int = 2
    max_src_len: int = 200        # source words kept (longer documents are truncated)
    max_tgt_len: int = 30


@dataclass
class SummaryDecodeConfig:
    beam: int = 4
    min_len: int = 4              # words before </s> may end the summary (tuned on AESLC dev)
    max_len: int = 15
    length_penalty: float = 1.0
    no_repeat_ngram: int = 3      # block any repeated n-gram (0: off)
    batch_size: int = 32


@dataclass
class TaggerConfig:
    word_vocab_size: int = 0      # filled in from the tokenizer
    char_vocab_size: int = 0
    num_tags: int = 0
    word_embed: int = 100         # normalised (lowercased, digits as 0) word embeddings
    char_embed: int = 30
    char_features: str = "cnn"    # cnn | lstm | none: character features of each word
    char_hidden: int = 50         # CNN filters, or char-BiLSTM units per direction
    casing_embed: int = 8         # casing class of each word (all caps, capitalised, numeric, ...); 0: none
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=128, bidirectional=True))
    dropout: float = 0.5          # on the word representations and on the BiLSTM output
    word_dropout: float = 0.5     # training: a word seen once in training becomes <unk> with this probability
    output: str = "crf"           # crf | softmax
    constrain: bool = True        # CRF: forbid IOB2-invalid transitions (I-X after O or after B-Y)


@dataclass
class TagDataConfig:
    tag_column: int = -1          # column of the tags in the CoNLL files
    scheme: str = "auto"          # tagging scheme of the files: auto | iob1 | iob2 | iobes (converted to IOB2)
    eval_batch_size: int = 256


@dataclass
class CharLMTrainConfig:
    streams: int = 64             # B parallel streams over the text
    unroll: int = 128             # truncated BPTT length (steps per chunk)
    val_streams: int = 16
    val_unroll: int = 256


@dataclass
class OptimConfig:
    lr: float = 1e-3              # peak learning rate (AdamW)
    weight_decay: float = 0.0
    betas: tuple = (0.9, 0.999)
    clip_norm: float = 1.0        # gradient-norm clipping: the standard remedy for exploding gradients
    warmup_steps: int = 0
    schedule: str = "plateau"     # plateau | inverse_sqrt | cosine | constant
    plateau_factor: float = 0.5   # plateau: multiply lr by this when validation stalls
    plateau_patience: int = 1     # plateau: validations without improvement before decaying
    min_lr: float = 1e-5          # plateau / cosine floor


@dataclass
class TrainConfig:
    batch_tokens: int = 1600      # token budget per batch (source + target, padded); 0: use batch_size
    batch_size: int = 64          # sentences per batch when batch_tokens == 0
    label_smoothing: float = 0.1
    max_steps: int = 0            # 0: no limit
    max_minutes: float = 0.0      # 0: no limit
    max_epochs: int = 100
    eval_every: int = 500         # steps between validations
    patience: int = 6             # validations without improvement before stopping early
    log_every: int = 20
    seed: int = 1234
    threads: int = 0              # torch threads; 0: all cores (shared among the processes of a machine)
    device: str = "cpu"           # cpu | cuda | cuda:N | auto (bf16 mixed precision on GPUs that support it)
    accumulate: int = 1           # batches per update on each process (gradient accumulation)
    max_len: int = 100            # training pairs longer than this (in tokens) are skipped
    keep_checkpoints: int = 0     # also keep the weights of the last N validations (step-N.pt), for averaging
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class DecodeConfig:
    beam: int = 5
    length_penalty: float = 1.0   # GNMT-style alpha; 0 disables
    max_len_ratio: float = 2.0    # hypotheses stop at ratio * source length + 10
    n_best: int = 1
    batch_size: int = 128         # sentences per batch, as a budget of 32 (greedy) or 24 (beam) source tokens each


T = TypeVar("T")


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Build dataclass `cls` from a nested dict, naming the dotted key of any unknown or mistyped value."""
    if not isinstance(data, dict):
        if prefix:                                 # a nested section: name its dotted key, without the trailing dot
            raise ConfigError(f"config key '{prefix[:-1]}' expects a mapping, got {data!r}")
        raise ConfigError(f"config: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(f"unknown config key '{dotted}'")
        kwargs[key] = _coerce(hints[key], value, dotted)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, dotted: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return value if isinstance(value, hint) else from_dict(hint, value, dotted + ".")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is tuple and isinstance(value, list):
        return tuple(value)
    base = typing.get_origin(hint) or hint
    if isinstance(base, type) and not isinstance(base, types.GenericAlias):
        ok = isinstance(value, base) and not (base in (int, float) and isinstance(value, bool))
        if not ok:
            raise ConfigError(f"config key '{dotted}' expects {base.__name__}, got {value!r}")
    return value


def build_setup(cls: type[T], presets: dict, preset: str = "base", config_file: str | None = None,
                overrides: dict | None = None) -> T:
    """Defaults <- named preset <- JSON config file <- command-line overrides (dotted keys)."""
    import json
    from pathlib import Path
    if preset not in presets:
        raise ConfigError(f"unknown preset '{preset}' (known: {', '.join(presets)})")
    setup = cls()
    for key, value in presets[preset].items():
        setup = override(setup, key, value)
    if config_file:
        try:
            data = json.loads(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise ConfigError(f"cannot read config file {config_file}: {err}") from None
        setup = from_dict(cls, _merge(to_dict(setup), data))
    for key, value in (overrides or {}).items():
        setup = override(setup, key, value)
    return setup


def _merge(base: dict, update: dict) -> dict:
    out = dict(base)
    for key, value in update.items():
        nested = isinstance(value, dict) and isinstance(base.get(key), dict)
        out[key] = _merge(base[key], value) if nested else value
    return out


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly nested dict of a config dataclass."""
    return dataclasses.asdict(config)


def override(config: T, dotted: str, value: Any) -> T:
    """Return a copy of `config` with one dotted key (for example 'optim.lr') set to `value`."""
    data = to_dict(config)
    node = data
    *parents, last = dotted.split(".")
    for part in parents:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"unknown config key '{dotted}'")
        node = node[part]
    if last not in node:
        raise ConfigError(f"unknown config key '{dotted}'")
    node[last] = value
    return from_dict(type(config), data)


# Named presets for `train charlm --preset NAME`: dotted overrides of CharLMSetup defaults.
CHARLM_PRESETS: dict[str, dict[str, Any]] = {
    "base": {},
    # the shipped tiny-Shakespeare model
    "shakespeare": {"model.embed_size": 128, "model.weight_drop": 0.15, "model.dropout": 0.25,
                    "model.emb_dropout": 0.05, "train.optim.lr": 3e-3, "train.optim.schedule": "cosine",
                    "train.optim.warmup_steps": 100, "train.optim.min_lr": 1e-4, "train.eval_every": 200,
                    "train.patience": 100, "train.max_minutes": 56.0, "train.max_steps": 1800},
    "tiny": {"model.embed_size": 32, "model.rnn.hidden_size": 64, "model.rnn.num_layers": 1,
             "data.streams": 8, "data.unroll": 32, "train.eval_every": 50},
}

# Named presets for `train summarize --preset NAME`.
SUMMARIZE_PRESETS: dict[str, dict[str, Any]] = {
    "base": {},
    "aeslc": {"data.max_src_len": 120, "train.max_minutes": 42.0},
    "tiny": {"model.seq2seq.embed_size": 16, "model.seq2seq.encoder.hidden_size": 16,
             "model.seq2seq.decoder_hidden": 32, "data.vocab_size": 500, "train.eval_every": 20},
}

# Named presets for `train tag --preset NAME`.
TAG_PRESETS: dict[str, dict[str, Any]] = {
    "base": {},
    "conll2003": {"train.eval_every": 440, "train.max_minutes": 33.0},
    "wnut17": {"train.eval_every": 106, "train.max_minutes": 12.0},
    "tiny": {"model.word_embed": 16, "model.char_embed": 8, "model.char_hidden": 8, "model.rnn.hidden_size": 16,
             "train.eval_every": 20},
}

# Named presets for `train translate --preset NAME`: dotted overrides of TranslationSetup defaults.
TRANSLATE_PRESETS: dict[str, dict[str, Any]] = {
    # the project's reference configuration (see README, bench/train_speed.py)
    "base": {},
    # the shipped Multi30k model: base sizes, plateau schedule tuned for a 60-minute CPU budget
    "multi30k": {"tokenizer.vocab_size": 6000, "train.batch_tokens": 0, "train.batch_size": 64, "train.eval_every": 450,
                 "train.patience": 8, "train.optim.plateau_patience": 2, "train.max_minutes": 58.0,
                 "train.keep_checkpoints": 20},
    # a few-minute model for trying the pipeline end to end
    "tiny": {"tokenizer.vocab_size": 2000, "model.embed_size": 64, "model.encoder.hidden_size": 64,
             "model.decoder_hidden": 128, "train.eval_every": 200},
}
