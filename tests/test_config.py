"""Config dataclasses from nested dicts: validation names the dotted key; overrides; dict round trips."""
import json

import pytest

from nmt.config import (CharLMConfig, ConfigError, DecodeConfig, OptimConfig, RNNConfig, Seq2SeqConfig,
                        TrainConfig, from_dict, override, to_dict)


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
    (Seq2SeqConfig, {"attention": 3}, "attention"),
    (DecodeConfig, {"beam": "5"}, "beam"),
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
