"""Configuration dataclasses of the components: the ONLY place where their defaults live.

Every component takes its own sub-config (or plain arguments). Choices are `Literal` types and numbers carry
their `Range`, both checked by `from_dict` (nmt/config/base.py) when a config is built.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal, get_args

from nmt.config.base import ConfigError, Count, Fraction, NonNegative, Range, Size

Cell = Literal["rnn", "lstm", "gru"]
# fused: torch's kernels, plus the project's hand-written shortcuts where they apply (the GRU's BPTT on the CPU,
#        the input-feeding decoder as one autograd function, the decoder's input table when decoding);
# torch: torch's kernels and autograd only (the reference the shortcuts are tested against);
# scratch: the cells from their equations (nmt/models/cells.py), for teaching and checks. Same weights in all three.
Impl = Literal["fused", "torch", "scratch"]
Dim = Annotated[int, Range(1, 16384)]           # embedding and hidden sizes
Vocab = Annotated[int, Range(0, 10_000_000)]     # vocabulary sizes (0: filled in from the tokenizer)
Beam = Annotated[int, Range(1, 64)]              # beam sizes (and n-best lists) beyond 64 buy nothing but time
Penalty = Annotated[float, Range(0, 10)]         # GNMT length-penalty alpha


@dataclass
class TokenizerConfig:
    model_type: Literal["unigram", "bpe"] = "unigram"   # sentencepiece algorithm
    vocab_size: Annotated[int, Range(1, 1_000_000)] = 8000   # sentencepiece vocabulary size (joint when joint=True)
    character_coverage: Fraction = 1.0  # share of characters sentencepiece must cover
    joint: bool = True            # one model for source and target (allows tied embeddings)


@dataclass
class RNNConfig:
    cell: Cell = "gru"
    impl: Impl = "fused"          # see Impl above
    hidden_size: Dim = 256      # H per direction
    num_layers: Annotated[int, Range(1, 64)] = 1   # L
    bidirectional: bool = True
    dropout: Fraction = 0.0       # between stacked layers


@dataclass
class Seq2SeqConfig:
    src_vocab_size: Vocab = 0      # filled in from the tokenizer
    tgt_vocab_size: Vocab = 0
    embed_size: Dim = 256       # E
    encoder: RNNConfig = field(default_factory=lambda: RNNConfig(hidden_size=256, bidirectional=True))
    decoder_hidden: Dim = 512   # decoder H
    decoder_layers: Annotated[int, Range(1, 64)] = 1
    attention: Literal["bahdanau", "dot", "general"] = "bahdanau"   # additive, or Luong's dot / general
    input_feeding: bool = False   # feed the previous attentional vector to the decoder (forces a step loop)
    bridge: bool = True           # initial decoder state from the final encoder states (else zeros)
    dropout: Fraction = 0.3
    emb_dropout: Fraction = 0.3
    tie_output: bool = True       # output projection shares the target embedding
    tie_src_tgt: bool = True      # source and target share embeddings (needs a joint vocabulary)
    pad_id: Size = 0


@dataclass
class CharLMConfig:
    vocab_size: Vocab = 0          # filled in from the tokenizer
    embed_size: Dim = 512       # E
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=512, num_layers=2,
                                                            bidirectional=False, dropout=0.25))
    dropout: Fraction = 0.25      # on the RNN output
    emb_dropout: Fraction = 0.1   # on the character embeddings
    weight_drop: Fraction = 0.0   # DropConnect on the recurrent matrices (AWD-LSTM)
    tie_weights: bool = False     # output layer shares the embedding (through a projection if H != E)
    members: Count = 1            # K > 1: K such models with their own weights, predicting the mean of their
    #                               distributions (models/charlm.CharLMEnsemble; `export --ensemble` joins runs)


@dataclass
class CharLMDataConfig:
    streams: Count = 64           # B parallel streams over the text
    unroll: Count = 128           # truncated BPTT length (steps per chunk)
    val_streams: Count = 16
    val_unroll: Count = 256
    eval_unroll: Count = 256      # `evaluate charlm`: one stream through the whole text, chunks of this length
    train_share: Fraction = 0.9   # one text file: the first 90% trains, the rest validates (nanoGPT's split)


@dataclass
class SampleConfig:
    """Sampling from a character model (`generate`)."""
    length: Annotated[int, Range(1, 1_000_000)] = 500      # characters to generate
    temperature: Annotated[float, Range(0, 100)] = 0.8      # 0 (or below 1e-4): greedy
    top_k: Size = 0               # sample among the K most likely (0: all)
    top_p: Annotated[float, Range(0, 1, open_low=True)] = 1.0   # nucleus mass in (0, 1]
    num_samples: Annotated[int, Range(1, 1000)] = 1
    prime: str = "\n"             # text the sample continues


@dataclass
class SummarizerConfig:
    seq2seq: Seq2SeqConfig = field(default_factory=lambda: Seq2SeqConfig(
        embed_size=128, encoder=RNNConfig(hidden_size=256, bidirectional=True), decoder_hidden=256,
        dropout=0.3, emb_dropout=0.2, tie_src_tgt=True, tie_output=True))
    pointer: bool = True          # copy source words through the attention (See et al. 2017)
    coverage: bool = True         # coverage vector into attention, plus the coverage loss
    coverage_weight: NonNegative = 1.0  # lambda of the coverage loss


@dataclass
class SummaryDataConfig:
    vocab_size: Count = 20000     # words (lowercased), the rest copied or <unk>
    min_count: Count = 2
    max_src_len: Count = 200      # source words kept (longer documents are truncated)
    max_tgt_len: Count = 30


@dataclass
class SummaryDecodeConfig:
    beam: Beam = 4
    min_len: Annotated[int, Range(0, 1000)] = 4   # words before </s> may end the summary (tuned on AESLC dev)
    max_len: Annotated[int, Range(1, 1000)] = 15
    length_penalty: Penalty = 1.0
    no_repeat_ngram: Annotated[int, Range(0, 10)] = 3    # block any repeated n-gram (0: off)
    batch_size: Count = 32

    def __post_init__(self):
        if self.min_len > self.max_len:
            raise ConfigError(f"min_len ({self.min_len}) must not exceed max_len ({self.max_len}): set both "
                              "(--min-len, --max-len)")


@dataclass
class TaggerConfig:
    word_vocab_size: Vocab = 0     # filled in from the tokenizer
    char_vocab_size: Vocab = 0
    num_tags: Size = 0
    word_embed: Dim = 100       # normalised (lowercased, digits as 0) word embeddings
    char_embed: Dim = 30
    char_features: Literal["cnn", "lstm", "none"] = "cnn"   # character features of each word
    char_hidden: Dim = 50       # CNN filters, or char-BiLSTM units per direction
    casing_embed: Size = 8        # casing class of each word (all caps, capitalised, numeric, ...); 0: none
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=128, bidirectional=True))
    dropout: Fraction = 0.5       # on the word representations and on the BiLSTM output
    shared_dropout: bool = False  # variational dropout: one mask per sentence, shared by all its words
    word_dropout: Fraction = 0.5  # training: a word seen once in training becomes <unk> with this probability
    unk_rate: Fraction = 0.0      # training: any word becomes <unk> with this probability (so that names are also
    #                               learnt from their characters and context, not only from their own vector)
    lm_weight: NonNegative = 0.0  # training: weight of an auxiliary language-model loss (Rei 2017): the forward
    #                               half of the BiLSTM predicts the next word, the backward half the previous one
    lm_vocab: Count = 7500        # words that loss predicts (the most frequent in training; the rest as one class)
    lm_hidden: Dim = 64           # tanh layer between the BiLSTM and each of the two LM softmaxes
    output: Literal["crf", "softmax"] = "crf"
    constrain: bool = True        # CRF: forbid IOB2-invalid transitions (I-X after O or after B-Y)
    context_forward: str = ""     # training: a forward charlm checkpoint whose states join each word's features
    context_backward: str = ""    # ... and its backward twin (trained on reversed text); see models/context.py
    context_vocab: Vocab = 0      # filled in from those checkpoints (0: no contextual features)
    context_embed: Dim = 48
    context_hidden: Dim = 128
    context_layers: Count = 1


@dataclass
class TagDataConfig:
    eval_batch_size: Count = 256  # sentences per batch when tagging
    max_word_chars: Count = 30    # characters of a word the character features read


@dataclass
class OptimConfig:
    lr: Annotated[float, Range(0, 10, open_low=True)] = 1e-3   # peak learning rate (AdamW)
    weight_decay: NonNegative = 0.0
    betas: tuple = (0.9, 0.999)   # AdamW's two decay rates, each in [0, 1)
    clip_norm: NonNegative = 1.0  # gradient-norm clipping, the remedy for exploding gradients (0: off)
    warmup_steps: Size = 0
    schedule: Literal["plateau", "inverse_sqrt", "cosine", "constant"] = "plateau"
    plateau_factor: Fraction = 0.5   # plateau: multiply lr by this when validation stalls
    plateau_patience: Count = 1   # plateau: validations without improvement before decaying
    min_lr: NonNegative = 1e-5    # plateau / cosine floor

    def __post_init__(self):
        ok = len(self.betas) == 2 and all(isinstance(b, (int, float)) and not isinstance(b, bool)
                                          and 0 <= b < 1 for b in self.betas)
        if not ok:
            raise ConfigError(f"config key 'optim.betas' must be two numbers in [0, 1), got {self.betas!r}")


@dataclass
class TrainConfig:
    batch_tokens: Size = 1600     # token budget per batch (source + target, padded); 0: use batch_size
    batch_size: Count = 64        # sentences per batch when batch_tokens == 0
    label_smoothing: Fraction = 0.1
    max_steps: Size = 0           # 0: no limit
    max_minutes: NonNegative = 0.0   # training minutes over all resumed parts; 0: no limit
    max_epochs: Count = 100
    eval_every: Count = 500       # steps between validations
    patience: Count = 6           # validations without improvement before stopping early
    log_every: Count = 20
    seed: Annotated[int, Range(0, 2**32 - 1)] = 1234
    threads: Annotated[int, Range(0, 1024)] = 0   # torch threads; 0: all cores (shared by a machine's processes)
    device: str = "cpu"           # cpu | cuda | cuda:N | auto
    precision: Literal["auto", "native", "bfloat16", "float32"] = "auto"   # mixed precision (nmt/precision.py):
    #                               auto bf16 on GPUs that support it; native also on CPUs with AVX512-BF16 / AMX
    accumulate: Count = 1         # batches per update on each process (gradient accumulation)
    max_len: Size = 100           # training pairs longer than this (in tokens) are skipped (0: no limit)
    keep_checkpoints: Size = 0    # also keep the weights of the last N validations (step-N.pt), for averaging
    max_nonfinite: Count = 5      # updates in a row with a non-finite loss or gradient norm before the run stops
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class DecodeConfig:
    beam: Beam = 5
    length_penalty: Penalty = 1.0  # GNMT-style alpha; 0 disables
    max_len_ratio: Annotated[float, Range(0, 10, open_low=True)] = 2.0   # hypotheses stop at ratio * source length + 10
    n_best: Beam = 1
    max_src_tokens: Count = 250   # longer source lines are truncated (and counted)
    greedy_batch_tokens: Count = 4096   # source tokens per decoding batch, greedy
    beam_batch_tokens: Count = 3072     # source tokens per decoding batch, beam search (K rows per sentence)
    warn_confidence: Annotated[float, Range(-100, 0)] = -1.0   # `translate` warns when an output's mean log-prob
    #                               per token is below this (the input is unlike the training data); 0: never.
    #                               everyday-de-en.pt at -1.0: 5% of captions, 9% of everyday sentences, 95% of
    #                               news, 70% of business e-mail (bench/translate_ood.py)

    def __post_init__(self):
        if self.n_best > self.beam:
            raise ConfigError(f"n_best ({self.n_best}) must not exceed the beam ({self.beam})")


@dataclass
class ForecastConfig:
    """A recurrent forecaster of L past values -> H future values, each channel on its own (channel-independent)."""
    kind: Literal["segment", "seq2seq"] = "segment"   # segment: SegRNN (segments in, all output segments at once);
    #                               seq2seq: an encoder, then a decoder that feeds back its own output step by step
    lookback: Count = 96          # L, past steps read
    horizon: Count = 96           # H, future steps forecast
    channels: Size = 0            # C, filled in from the data
    segment: Count = 24           # W, steps per recurrent step (1: point by point); L must be a multiple of W
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="gru", hidden_size=512, bidirectional=False))
    channel_embed: bool = True    # segment: half of each output segment's query names its channel (else position only)
    norm: Literal["revin", "last", "none"] = "last"   # instance normalisation of each window: subtract its last
    #                               value (SegRNN's choice at L = 96; best on ETTh1 val), its mean and std (RevIN
    #                               without the affine part), or nothing
    dropout: Fraction = 0.5       # before the output layer


@dataclass
class ForecastDataConfig:
    split_rows: tuple = ()        # (train, val, test) row counts, e.g. ETT's (8640, 2880, 2880); () = split_ratios
    split_ratios: tuple = (0.7, 0.1, 0.2)   # train, val, test shares of the rows when split_rows is ()
    columns: tuple = ()           # the channels by name; () = every column but the date
    target: str = ""              # univariate: this column alone (instead of columns)
    date_column: str = ""         # "" = a column named date/time/timestamp, or a first column that parses as dates
    missing: Literal["error", "interpolate", "drop"] = "error"   # what to do with empty or NaN cells
    period: Count = 24            # the seasonal-naive baseline repeats the last period (24 steps = a day of hours)
    eval_batch_size: Count = 512  # windows per batch when validating and evaluating
    eval_per_epoch: Size = 1      # validations per epoch (sets train.eval_every); 0: train.eval_every decides


@dataclass
class ClassifierConfig:
    """Many-to-one (`classify`): step inputs -> bidirectional RNN -> pooling over the steps -> softmax over labels."""
    word_vocab_size: Vocab = 0     # filled in from the tokenizer (unit=word)
    char_vocab_size: Vocab = 0     # filled in from the tokenizer
    unit: Literal["word", "char"] = "word"   # one encoder step reads a word (its embedding and character features)
    #                               or one character (for single words, e.g. surnames)
    word_embed: Size = 300        # unit=word: normalised-word embedding size (lowercased, digits as 0); 0: none
    char_embed: Dim = 32        # character embedding size
    char_features: Literal["cnn", "none"] = "cnn"   # unit=word: a max-pooled character CNN over each word
    char_hidden: Dim = 64       # character CNN filters
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="lstm", hidden_size=150, bidirectional=True))
    pooling: Literal["attention", "max", "mean", "last"] = "attention"   # steps -> one vector: additive attention,
    #                               max or mean over the steps, or the two directions' final states
    attention_size: Count = 128   # pooling=attention: hidden size of the scorer
    emb_dropout: Fraction = 0.3   # on the step inputs
    dropout: Fraction = 0.5       # on the pooled vector
    word_dropout: Fraction = 0.3  # training, unit=word: a word seen once becomes <unk> with this probability
    ngram_buckets: Size = 0       # > 0: add a bag of the text's hashed n-grams (fastText-style; characters of
    #                               ^name$ for unit=char, words for unit=word) hashed into this many rows; 0: off
    ngram_max: Count = 4          # n-grams of 1..ngram_max steps
    ngram_dim: Count = 64         # the bag's size: mean of the n-grams' vectors, beside the pooled RNN output


@dataclass
class ClassifyDataConfig:
    tokenize: Literal["ptb", "whitespace"] = "ptb"   # unit=word: words of a text (ptb: punctuation, n't and 's
    #                               split off, brackets as -lrb- / -rrb-, as SST-2 and TREC are written)
    lowercase: bool = False       # lowercase texts first (SST-2 is lowercased)
    max_tokens: Count = 256       # longer texts are cut to their first max_tokens steps (the command line says so)
    max_word_chars: Count = 20    # characters of a word the character CNN reads
    eval_batch_size: Count = 512  # texts per batch when classifying
    select: Literal["accuracy", "macro_f1"] = "accuracy"   # the dev score that picks best.pt and stops early
    eval_per_epoch: Size = 1      # validations per epoch (sets train.eval_every); 0: train.eval_every decides
    dev_share: Fraction = 0.1     # corpora without a dev split: the seeded share of train (names: of each label)
    #                               that validates
    test_share: Fraction = 0.1    # names: the seeded share of each language held out as the test split
    split_seed: int = 1           # seed of those splits


@dataclass
class NameGenConfig:
    """One-to-many (`namegen`): the condition x^0 (a language) is the input of step 0, with a zero previous state,
    so a^0 depends on the condition alone; each later step reads the previous character; the output is the next
    character, up to the end symbol."""
    vocab_size: Vocab = 0          # filled in from the tokenizer (characters and specials)
    embed_size: Dim = 64        # E: characters and conditions share one input table (conditions after the chars)
    rnn: RNNConfig = field(default_factory=lambda: RNNConfig(cell="gru", hidden_size=256, num_layers=2,
                                                            bidirectional=False, dropout=0.2))
    dropout: Fraction = 0.2       # on the RNN output


@dataclass
class NameGenDataConfig:
    conditional: bool = True      # False: every name gets the one condition <any> (the unconditional baseline)
    max_len: Count = 40           # names longer than this (characters) are left out of training
    dev_share: Fraction = 0.1     # as ClassifyDataConfig: the same seeded split as `classify --corpus names`
    test_share: Fraction = 0.1
    split_seed: int = 1
    eval_per_epoch: Size = 1      # validations per epoch (sets train.eval_every); 0: train.eval_every decides


Layer = Literal["rnn", "lstm", "gru", "conv", "attention"]   # `cost`: the cells, and two layers without recurrence


@dataclass
class CostConfig:
    """`cost` (nmt/cost.py): time and backward memory of one layer (B, T, H) -> (B, T, H) against the length T."""
    cells: tuple = ("rnn", "lstm", "gru", "conv", "attention")   # the layers measured, each a `Layer`
    lengths: tuple = (25, 50, 100, 200, 400, 800)   # T, positive and increasing; two or more for the fit
    hidden: Dim = 256             # H, the width of every layer (and of its input)
    batch: Count = 32             # B
    impl: Impl = "fused"          # the cells' implementation (see Impl above)
    repeats: Annotated[int, Range(1, 1000)] = 3   # timed runs after one warm-up; the median is reported
    tbptt: Size = 50              # K: also measure `tbptt_cell` in chunks of K steps, the state detached between
    #                               chunks (truncated BPTT, as the character model trains); 0: off
    tbptt_cell: Cell = "gru"
    max_memory_mb: NonNegative = 0.0   # refuse when the estimated saved activations of one run exceed this many
    #                               MiB; 0: half the memory available now
    seed: Size = 0                # seed of the weights and inputs

    def __post_init__(self):
        unknown = [c for c in self.cells if c not in get_args(Layer)]
        if unknown or not self.cells:
            raise ConfigError(f"unknown cell '{unknown[0]}' (expected rnn, lstm, gru, conv or attention)" if unknown
                              else "no cells to measure")
        lengths = list(self.lengths)
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in lengths) or min(lengths, default=0) < 1 \
                or any(a >= b for a, b in zip(lengths, lengths[1:])):
            raise ConfigError(f"lengths must be positive whole numbers in increasing order, got "
                              f"{','.join(map(str, lengths)) or 'none'}")
        if len(lengths) < 2:
            raise ConfigError(f"need two or more lengths to fit an exponent, got only {lengths[0]}")
