"""Configs (nmt/config/): nested dicts to dataclasses, choices, ranges and finite numbers checked with the dotted
key named; make; overrides; cross-field checks; presets and setups; dict round trips."""
import dataclasses
import json
import math

import pytest

from nmt import tasks
from nmt.config import (
    CharLMConfig,
    ConfigError,
    DecodeConfig,
    OptimConfig,
    RNNConfig,
    SampleConfig,
    Seq2SeqConfig,
    SummaryDecodeConfig,
    TagDataConfig,
    TokenizerConfig,
    TrainConfig,
    build_setup,
    from_dict,
    make,
    override,
    to_dict,
)


def test_from_dict_builds_nested_dataclasses():
    config = from_dict(TrainConfig, {"batch_size": 8, "optim": {"lr": 0.01, "schedule": "cosine"}})
    assert isinstance(config.optim, OptimConfig)
    assert (config.batch_size, config.optim.lr, config.optim.schedule) == (8, 0.01, "cosine")
    assert config.optim.clip_norm == OptimConfig().clip_norm            # unspecified keys keep their defaults
    model = from_dict(Seq2SeqConfig, {"encoder": {"cell": "lstm", "num_layers": 2}})
    assert isinstance(model.encoder, RNNConfig)
    assert (model.encoder.cell, model.encoder.num_layers) == ("lstm", 2)


def test_from_dict_accepts_dataclass_instances():
    optim = OptimConfig(lr=0.5)
    assert from_dict(TrainConfig, {"optim": optim}).optim == optim


def test_empty_dict_gives_defaults():
    assert from_dict(TrainConfig, {}) == TrainConfig()
    assert from_dict(CharLMConfig, {}) == CharLMConfig()


@pytest.mark.parametrize("cls, data, key", [
    (TrainConfig, {"optim": {"lrr": 0.1}}, "optim.lrr"),
    (TrainConfig, {"batch_sizes": 3}, "batch_sizes"),
    (Seq2SeqConfig, {"encoder": {"hidden": 3}}, "encoder.hidden"),
])
def test_unknown_key_names_dotted_key(cls, data, key):
    with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
        from_dict(cls, data)


@pytest.mark.parametrize("cls, data, key", [
    (TrainConfig, {"optim": {"lr": "fast"}}, "optim.lr"),
    (TrainConfig, {"max_epochs": 2.5}, "max_epochs"),
    (Seq2SeqConfig, {"encoder": {"bidirectional": "yes"}}, "encoder.bidirectional"),
    (DecodeConfig, {"beam": "5"}, "beam"),
    (SampleConfig, {"prime": 5}, "prime"),
])
def test_wrong_type_names_dotted_key(cls, data, key):
    with pytest.raises(ConfigError, match=f"config key '{key}' expects"):
        from_dict(cls, data)


def test_section_that_is_not_a_mapping_names_its_key():
    with pytest.raises(ConfigError) as err:
        from_dict(TrainConfig, {"optim": 0.1})
    assert "'optim'" in str(err.value) and "optim." not in str(err.value)
    with pytest.raises(ConfigError, match="mapping"):
        from_dict(TrainConfig, [("optim", {})])


def test_ints_accepted_for_floats():
    config = from_dict(TrainConfig, {"label_smoothing": 0, "optim": {"lr": 1}})
    assert config.label_smoothing == 0.0 and isinstance(config.label_smoothing, float)
    assert isinstance(config.optim.lr, float)


def test_bools_rejected_for_numbers():
    with pytest.raises(ConfigError, match="'batch_size'"):
        from_dict(TrainConfig, {"batch_size": True})
    with pytest.raises(ConfigError, match="'optim.lr'"):
        from_dict(TrainConfig, {"optim": {"lr": False}})
    with pytest.raises(ConfigError, match="'bidirectional'"):
        from_dict(RNNConfig, {"bidirectional": 1})                 # and ints are not bools


def test_list_accepted_for_tuple():
    config = from_dict(OptimConfig, {"betas": [0.8, 0.99]})
    assert config.betas == (0.8, 0.99)


def test_override_dotted_key():
    base = TrainConfig()
    changed = override(base, "optim.lr", 0.05)
    assert changed.optim.lr == 0.05
    assert base.optim.lr == OptimConfig().lr                         # the original is not modified
    assert override(base, "batch_size", 7).batch_size == 7
    assert override(Seq2SeqConfig(), "encoder.cell", "lstm").encoder.cell == "lstm"


@pytest.mark.parametrize("key", ["optim.lrr", "optimizer.lr", "batch_size.x", "nothing"])
def test_override_unknown_key(key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        override(TrainConfig(), key, 1)


def test_override_wrong_type():
    with pytest.raises(ConfigError, match="'optim.warmup_steps'"):
        override(TrainConfig(), "optim.warmup_steps", "many")


@pytest.mark.parametrize("config", [TrainConfig(), Seq2SeqConfig(), CharLMConfig(), DecodeConfig(),
                                    override(TrainConfig(), "optim.betas", (0.5, 0.6))],
                         ids=["train", "seq2seq", "charlm", "decode", "train-betas"])
def test_dict_round_trip(config):
    data = to_dict(config)
    assert isinstance(data, dict)
    assert from_dict(type(config), data) == config
    assert from_dict(type(config), json.loads(json.dumps(data))) == config   # as stored in a JSON config file


# --- choices, ranges, finite numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("cls, data, message", [
    (TrainConfig, {"optim": {"schedule": "foo"}},
     "config key 'optim.schedule' must be one of plateau, inverse_sqrt, cosine, constant; got 'foo'"),
    (Seq2SeqConfig, {"attention": 3}, "config key 'attention' must be one of bahdanau, dot, general; got 3"),
    (Seq2SeqConfig, {"encoder": {"cell": "cnn"}}, "config key 'encoder.cell' must be one of rnn, lstm, gru; got 'cnn'"),
    (RNNConfig, {"impl": "cudnn"}, "config key 'impl' must be one of fused, torch, scratch; got 'cudnn'"),
    (TokenizerConfig, {"model_type": "word"}, "config key 'model_type' must be one of unigram, bpe; got 'word'"),
])
def test_choice_outside_its_literal_names_key_and_choices(cls, data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(cls, data)
    assert str(err.value) == message


@pytest.mark.parametrize("cls, data, key, bound, got", [
    (TrainConfig, {"batch_size": 0}, "batch_size", ">= 1", 0),
    (TrainConfig, {"keep_checkpoints": -1}, "keep_checkpoints", ">= 0", -1),
    (TrainConfig, {"optim": {"lr": 0.0}}, "optim.lr", "> 0", 0.0),
    (TrainConfig, {"label_smoothing": 1.5}, "label_smoothing", ">= 0 and <= 1", 1.5),
    (Seq2SeqConfig, {"encoder": {"dropout": -0.1}}, "encoder.dropout", ">= 0 and <= 1", -0.1),
    (SampleConfig, {"temperature": -1.0}, "temperature", ">= 0", -1.0),
    (SampleConfig, {"top_p": 0}, "top_p", "> 0 and <= 1", 0.0),
    (DecodeConfig, {"max_len_ratio": 0}, "max_len_ratio", "> 0", 0.0),
])
def test_number_outside_its_range_names_key_and_range(cls, data, key, bound, got):
    """"config key 'KEY' must be BOUNDS, got VALUE" (an upper bound, where a field has one, follows the lower)."""
    with pytest.raises(ConfigError) as err:
        from_dict(cls, data)
    message = str(err.value)
    assert message.startswith(f"config key '{key}' must be {bound}") and message.endswith(f", got {got!r}")


def test_range_bounds_themselves_are_accepted():
    assert from_dict(TrainConfig, {"batch_size": 1, "label_smoothing": 1, "keep_checkpoints": 0}).batch_size == 1
    assert from_dict(SampleConfig, {"temperature": 0, "top_p": 1}).top_p == 1.0


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(value):
    with pytest.raises(ConfigError, match="config key 'optim.lr' must be a finite number"):
        from_dict(TrainConfig, {"optim": {"lr": value}})
    with pytest.raises(ConfigError, match="config key 'temperature' must be a finite number"):
        from_dict(SampleConfig, {"temperature": value})


def test_setup_overrides_name_the_full_dotted_key():
    with pytest.raises(ConfigError, match="config key 'train.optim.schedule' must be one of"):
        tasks.make_setup("translate", overrides={"train.optim.schedule": "foo"})
    with pytest.raises(ConfigError, match="config key 'model.rnn.hidden_size' must be >= 1 and <= 16,384, got 0"):
        tasks.make_setup("charlm", "tiny", overrides={"model.rnn.hidden_size": 0})


def test_make_checks_options_and_ignores_none():
    assert make(SampleConfig) == SampleConfig()
    sample = make(SampleConfig, temperature=None, length=5, top_k=None)
    assert sample.length == 5 and sample.temperature == SampleConfig().temperature
    assert make(DecodeConfig, beam=2, n_best=None) == DecodeConfig(beam=2)
    with pytest.raises(ConfigError, match="config key 'beam' must be >= 1.*, got 0$"):
        make(DecodeConfig, beam=0)
    with pytest.raises(ConfigError, match="config key 'temperature' must be a finite number"):
        make(SampleConfig, temperature=math.nan)
    with pytest.raises(ConfigError, match="unknown config key 'beams'"):
        make(DecodeConfig, beams=2)


# --- checks across fields ---------------------------------------------------------------------------------------

def test_decode_n_best_must_not_exceed_the_beam():
    with pytest.raises(ConfigError, match=r"n_best \(3\) must not exceed the beam \(2\)"):
        make(DecodeConfig, beam=2, n_best=3)
    with pytest.raises(ConfigError, match="n_best"):
        tasks.make_setup("translate", overrides={"decode.n_best": 2})        # validation decodes with beam 1
    assert make(DecodeConfig, beam=3, n_best=3).n_best == 3


def test_summary_decode_min_len_must_not_exceed_max_len():
    with pytest.raises(ConfigError, match=r"min_len \(5\) must not exceed max_len \(3\)"):
        make(SummaryDecodeConfig, min_len=5, max_len=3)
    with pytest.raises(ConfigError, match="min_len"):
        from_dict(SummaryDecodeConfig, {"max_len": 2})                     # against the default min_len 4
    assert make(SummaryDecodeConfig, min_len=3, max_len=3).max_len == 3


# --- dead keys, setups and presets --------------------------------------------------------------------------------

@pytest.mark.parametrize("cls, key", [(TokenizerConfig, "kind"), (TagDataConfig, "tag_column"),
                                      (TagDataConfig, "scheme"), (Seq2SeqConfig, "bos_id"),
                                      (Seq2SeqConfig, "eos_id"), (DecodeConfig, "batch_size")])
def test_retired_keys_are_gone(cls, key):
    assert key not in {f.name for f in dataclasses.fields(cls)}
    with pytest.raises(ConfigError, match=f"unknown config key '{key}'"):
        from_dict(cls, {key: 1})


@pytest.mark.parametrize("task", list(tasks.TASKS))
def test_every_preset_of_every_task_builds(task):
    module = tasks.module(task)
    assert {"base", "tiny"} <= set(module.PRESETS)
    for preset, values in module.PRESETS.items():
        setup = tasks.make_setup(task, preset)
        assert isinstance(setup, module.SETUP)
        data = to_dict(setup)
        for dotted, value in values.items():                            # each preset key landed where it says
            node = data
            for part in dotted.split("."):
                node = node[part]
            assert node == value, (preset, dotted)
    assert to_dict(tasks.make_setup(task)) == to_dict(module.SETUP())      # "base" is the defaults


def test_build_setup_order_defaults_preset_file_overrides(tmp_path):
    config = tmp_path / "setup.json"
    config.write_text(json.dumps({"train": {"eval_every": 7, "optim": {"lr": 0.5}}, "model": {"embed_size": 48}}))
    setup = tasks.make_setup("translate", "tiny", config, {"train.optim.lr": 0.25})
    assert setup.model.embed_size == 48                                  # the file over the preset's 64
    assert setup.train.eval_every == 7 and setup.train.optim.lr == 0.25  # the override over the file
    assert setup.model.decoder_hidden == 128                             # the preset where the file is silent
    assert setup.train.optim.schedule == "plateau"                       # the default where both are


def test_build_setup_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown preset 'huge' .*known: base, multi30k, everyday, tiny"):
        tasks.make_setup("translate", "huge")
    missing = tmp_path / "missing.json"
    with pytest.raises(ConfigError, match="cannot read config file"):
        tasks.make_setup("translate", config_file=missing)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="must hold a JSON object, got list"):
        tasks.make_setup("translate", config_file=listed)
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"train": {"optim": {"lrr": 1}}}))
    with pytest.raises(ConfigError, match="unknown config key 'train.optim.lrr'"):
        tasks.make_setup("translate", config_file=typo)
    with pytest.raises(ConfigError, match="unknown task 'weather'"):
        tasks.make_setup("weather")
    with pytest.raises(ConfigError, match="unknown preset"):
        build_setup(TrainConfig, {"base": {}}, "tiny")
