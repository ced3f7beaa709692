"""Each task's setup (everything a training run decides) and its named presets.

A setup gathers the component configs with the defaults that suit the task; a preset is a named set of dotted
overrides of those defaults (`train translate --preset multi30k`). Defaults live here and in components.py only:
command-line options default to None, meaning "the config's value".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nmt.config.components import (CharLMConfig, CharLMDataConfig, DecodeConfig, ForecastConfig, ForecastDataConfig,
                                   OptimConfig, Seq2SeqConfig, SummarizerConfig, SummaryDataConfig,
                                   SummaryDecodeConfig, TagDataConfig, TaggerConfig, TokenizerConfig, TrainConfig)
from nmt.config.components import (ClassifierConfig, ClassifyDataConfig, NameGenConfig,
                                   NameGenDataConfig)

Presets = dict[str, dict[str, Any]]


def train_defaults(optim: dict | None = None, **train: Any) -> Any:
    """A setup's `train` field: a TrainConfig with the task's own defaults (and those of its optimiser)."""
    return field(default_factory=lambda: TrainConfig(**train, optim=OptimConfig(**(optim or {}))))


@dataclass
class TranslationSetup:
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    decode: DecodeConfig = field(default_factory=lambda: DecodeConfig(beam=1))   # for validation


TRANSLATE_PRESETS: Presets = {
    # the project's reference configuration (see README, bench/train_speed.py)
    "base": {},
    # the shipped Multi30k model: base sizes, plateau schedule tuned for a 60-minute CPU budget
    "multi30k": {"tokenizer.vocab_size": 6000, "train.batch_tokens": 0, "train.batch_size": 64, "train.eval_every": 450,
                 "train.patience": 8, "train.optim.plateau_patience": 2, "train.max_minutes": 58.0,
                 "train.keep_checkpoints": 20},
    # the shipped everyday models (Multi30k + Tatoeba, one direction each, two runs side by side on one thread
    # each): base sizes, batches by tokens, the cosine schedule over the time budget
    "everyday": {"tokenizer.vocab_size": 6000, "train.batch_tokens": 2048, "train.eval_every": 500,
                 "train.patience": 100, "train.optim.schedule": "cosine", "train.optim.warmup_steps": 300,
                 "train.optim.min_lr": 5e-5, "train.max_minutes": 95.0, "train.keep_checkpoints": 20,
                 "train.threads": 1},
    # a few-minute model for trying the pipeline end to end
    "tiny": {"tokenizer.vocab_size": 2000, "model.embed_size": 64, "model.encoder.hidden_size": 64,
             "model.decoder_hidden": 128, "train.eval_every": 200},
}


@dataclass
class CharLMSetup:
    model: CharLMConfig = field(default_factory=CharLMConfig)
    data: CharLMDataConfig = field(default_factory=CharLMDataConfig)
    train: TrainConfig = train_defaults(dict(lr=2e-3, schedule="cosine", min_lr=1e-4), label_smoothing=0.0,
                                        eval_every=250)


CHARLM_PRESETS: Presets = {
    "base": {},
    # each member of the shipped tiny-Shakespeare ensemble (two runs side by side, one thread each, joined by
    # `export --ensemble`): bfloat16 where the CPU has it, the cosine schedule over the 56-minute budget
    "shakespeare": {"model.embed_size": 128, "model.weight_drop": 0.15, "model.dropout": 0.25,
                    "model.emb_dropout": 0.05, "train.optim.lr": 3e-3, "train.optim.schedule": "cosine",
                    "train.optim.warmup_steps": 100, "train.optim.min_lr": 1e-4, "train.eval_every": 200,
                    "train.patience": 100, "train.max_minutes": 56.0, "train.max_steps": 0,
                    "train.precision": "native"},
    # the tagger's contextual character LMs (models/context.py), on data/news_lm_text.py's text, one per direction
    "news": {"model.embed_size": 48, "model.rnn.hidden_size": 128, "model.rnn.num_layers": 1, "model.rnn.dropout": 0.0,
             "model.dropout": 0.1, "model.emb_dropout": 0.0, "train.optim.lr": 3e-3, "train.optim.schedule": "cosine",
             "train.optim.warmup_steps": 100, "train.optim.min_lr": 1e-4, "train.eval_every": 250,
             "train.patience": 100, "train.max_minutes": 25.0, "train.max_steps": 4000},
    "tiny": {"model.embed_size": 32, "model.rnn.hidden_size": 64, "model.rnn.num_layers": 1,
             "data.streams": 8, "data.unroll": 32, "train.eval_every": 50},
}


@dataclass
class TagSetup:
    model: TaggerConfig = field(default_factory=TaggerConfig)
    data: TagDataConfig = field(default_factory=TagDataConfig)
    train: TrainConfig = train_defaults(dict(lr=2e-3, clip_norm=5.0, plateau_patience=2), batch_tokens=0,
                                        batch_size=32, label_smoothing=0.0, eval_every=400, patience=8,
                                        max_epochs=60, max_len=0)


TAG_PRESETS: Presets = {
    "base": {},
    "conll2003": {"train.eval_every": 440, "train.max_minutes": 33.0, "model.unk_rate": 0.05,
                  "model.char_hidden": 100},
    "wnut17": {"train.eval_every": 106, "train.max_minutes": 12.0},
    "tiny": {"model.word_embed": 16, "model.char_embed": 8, "model.char_hidden": 8, "model.rnn.hidden_size": 16,
             "train.eval_every": 20},
}


@dataclass
class SummarySetup:
    model: SummarizerConfig = field(default_factory=SummarizerConfig)
    data: SummaryDataConfig = field(default_factory=SummaryDataConfig)
    train: TrainConfig = train_defaults(dict(clip_norm=2.0), batch_tokens=0, batch_size=32, label_smoothing=0.0,
                                        eval_every=450, max_len=0)
    decode: SummaryDecodeConfig = field(default_factory=lambda: SummaryDecodeConfig(beam=1))   # for validation


SUMMARIZE_PRESETS: Presets = {
    "base": {},
    "aeslc": {"data.max_src_len": 120, "train.max_minutes": 42.0},
    "tiny": {"model.seq2seq.embed_size": 16, "model.seq2seq.encoder.hidden_size": 16,
             "model.seq2seq.decoder_hidden": 32, "data.vocab_size": 500, "train.eval_every": 20},
}


@dataclass
class ForecastSetup:
    model: ForecastConfig = field(default_factory=ForecastConfig)
    data: ForecastDataConfig = field(default_factory=ForecastDataConfig)
    train: TrainConfig = train_defaults(dict(lr=1e-3, clip_norm=0.0, plateau_patience=1, plateau_factor=0.5),
                                        batch_tokens=0, batch_size=256, label_smoothing=0.0, max_epochs=30,
                                        patience=6, max_len=0, log_every=10)


FORECAST_PRESETS: Presets = {
    # SegRNN's recipe for L = 96 (segments of 24, GRU 512, dropout 0.5, each window minus its last value, Adam
    # 1e-3, batches of 256 windows); the learning rate halves whenever validation MSE does not improve
    "base": {},
    # the shipped ETTh1 models of H = 96 and 192 (add --horizon): SegRNN's recipe, at most 14 minutes
    "etth1": {"train.max_minutes": 14.0},
    # H = 336 and 720: the decoder's work grows with H x hidden size, so half the hidden size (256 and 512 tied on
    # validation at H = 192), and two validations an epoch (the best comes after 1-3 epochs at long horizons)
    "etth1-long": {"model.rnn.hidden_size": 256, "data.eval_per_epoch": 2, "train.max_minutes": 14.0},
    # step by step: one value per recurrent step, a smaller GRU (the ablation's recurrent multi-step forecaster)
    "seq2seq": {"model.kind": "seq2seq", "model.segment": 1, "model.rnn.hidden_size": 128},
    "tiny": {"model.lookback": 24, "model.horizon": 12, "model.segment": 6, "model.rnn.hidden_size": 16,
             "model.dropout": 0.0, "train.batch_size": 16, "data.period": 6, "data.eval_per_epoch": 0,
             "train.eval_every": 10},
}


@dataclass
class ClassifySetup:
    model: ClassifierConfig = field(default_factory=ClassifierConfig)
    data: ClassifyDataConfig = field(default_factory=ClassifyDataConfig)
    train: TrainConfig = train_defaults(dict(lr=1e-3, clip_norm=5.0, plateau_patience=2), batch_tokens=0,
                                        batch_size=32, label_smoothing=0.0, patience=6, max_epochs=40, max_len=0)


CLASSIFY_PRESETS: Presets = {
    "base": {},
    # the shipped SST-2 model (sizes and dropout chosen on dev among a few; see checkpoints/sst2-sentiment.md)
    "sst2": {"data.lowercase": True, "model.word_embed": 256, "model.char_hidden": 48, "model.rnn.hidden_size": 128,
             "model.attention_size": 64, "model.emb_dropout": 0.4, "model.word_dropout": 0.4,
             "data.eval_per_epoch": 2, "train.max_minutes": 10.0},
    # the shipped TREC-6 model (dev: a seeded, stratified 10% of the training questions)
    "trec": {"model.word_embed": 128, "model.char_hidden": 32, "model.rnn.hidden_size": 100,
             "model.attention_size": 64, "data.eval_per_epoch": 2, "train.max_minutes": 10.0},
    # the shipped surname -> language model: characters are the steps, beside a bag of hashed character 1-4-grams;
    # best.pt by dev macro F1 (Russian is half of the names, Vietnamese under 1%)
    "names": {"model.unit": "char", "model.char_embed": 64, "model.ngram_buckets": 65536, "model.rnn.cell": "gru",
              "model.rnn.hidden_size": 256,
              "model.pooling": "last", "model.emb_dropout": 0.2, "model.dropout": 0.5, "data.select": "macro_f1",
              "data.eval_per_epoch": 2, "train.batch_size": 64, "train.optim.lr": 3e-3,
              "train.optim.plateau_patience": 3, "train.patience": 10, "train.max_minutes": 10.0},
    "tiny": {"model.word_embed": 16, "model.char_embed": 8, "model.char_hidden": 8, "model.rnn.hidden_size": 16,
             "model.attention_size": 8, "data.eval_per_epoch": 0, "train.eval_every": 20},
}


@dataclass
class NameGenSetup:
    model: NameGenConfig = field(default_factory=NameGenConfig)
    data: NameGenDataConfig = field(default_factory=NameGenDataConfig)
    train: TrainConfig = train_defaults(dict(lr=2e-3, clip_norm=1.0, plateau_patience=1), batch_tokens=0,
                                        batch_size=64, label_smoothing=0.0, patience=4, max_epochs=60, max_len=0)


NAMEGEN_PRESETS: Presets = {
    "base": {},
    "names": {"train.max_minutes": 10.0},
    "unconditional": {"data.conditional": False, "train.max_minutes": 10.0},
    "tiny": {"model.embed_size": 8, "model.rnn.hidden_size": 16, "model.rnn.num_layers": 1,
             "data.eval_per_epoch": 0, "train.eval_every": 20},
}
