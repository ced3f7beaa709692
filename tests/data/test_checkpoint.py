"""Checkpoints: round trips, one-line errors for bad files, atomic writes, release copies with tied weights."""
import random

import pytest
import torch
from torch import nn

from nmt import checkpoint as ckpt_io
from nmt.checkpoint import Checkpoint, CheckpointError
from nmt.config import Seq2SeqConfig, to_dict
from nmt.tokenizers import CharTokenizer, SentencePieceTokenizer, tokenizer_from_state

SENTENCES = [f"the {a} {b} the {c}" for a in ("dog", "cat", "man") for b in ("runs", "sits") for c in ("park", "house")]


class Tied(nn.Module):
    """Embedding and output projection share one weight; an integer buffer rides along."""

    def __init__(self, vocab=11, dim=5):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.hidden = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, vocab, bias=False)
        self.out.weight = self.embed.weight
        self.register_buffer("steps", torch.tensor([3, 4], dtype=torch.long))


@pytest.fixture
def ckpt():
    model = Tied()
    tokenizers = {"src": SentencePieceTokenizer.train(iter(SENTENCES * 5), vocab_size=40).to_state(),
                  "chars": CharTokenizer.train(["héllo wörld 漢字"]).to_state()}
    return Checkpoint(task="translate", config={"model": to_dict(Seq2SeqConfig())}, model=model.state_dict(),
                      tokenizers=tokenizers, scores={"bleu": 12.5, "loss": 3.25}, meta={"corpus": "toy"},
                      train_state={"step": 7, "optimizer": {"lr": 0.001}})


def files_in(folder):
    return sorted(p.name for p in folder.iterdir())


def one_line_error(path, **kw) -> str:
    with pytest.raises(CheckpointError) as err:
        ckpt_io.load(path, **kw)
    message = str(err.value)
    assert message and "\n" not in message
    return message


def test_round_trip(tmp_path, ckpt):
    path = tmp_path / "model.pt"
    ckpt_io.save(path, ckpt)
    loaded = ckpt_io.load(path, task="translate")
    assert loaded.task == "translate"
    assert loaded.config == ckpt.config
    assert loaded.model.keys() == ckpt.model.keys()
    for name, tensor in ckpt.model.items():
        assert loaded.model[name].dtype == tensor.dtype and torch.equal(loaded.model[name], tensor)
    assert loaded.scores == ckpt.scores and loaded.meta == ckpt.meta and loaded.train_state == ckpt.train_state
    assert loaded.tokenizers.keys() == ckpt.tokenizers.keys()
    for name in ("src", "chars"):                       # the checkpoint alone can encode again
        before, after = tokenizer_from_state(ckpt.tokenizers[name]), tokenizer_from_state(loaded.tokenizers[name])
        for text in SENTENCES[:3] + ["héllo"]:
            assert after.encode(text) == before.encode(text)


def test_round_trip_into_model(tmp_path, ckpt):
    path = tmp_path / "model.pt"
    ckpt_io.save(path, ckpt)
    model = Tied()
    model.load_state_dict(ckpt_io.load(path).model)
    ids = torch.tensor([[1, 2, 3]])
    reference = Tied()
    reference.load_state_dict(ckpt.model)
    assert torch.equal(model.out(model.hidden(model.embed(ids))), reference.out(reference.hidden(reference.embed(ids))))
    assert model.out.weight is model.embed.weight


def test_wrong_task_names_both(tmp_path, ckpt):
    path = tmp_path / "model.pt"
    ckpt_io.save(path, ckpt)
    message = one_line_error(path, task="charlm")
    assert "'translate'" in message and "'charlm'" in message


def test_truncated_file(tmp_path, ckpt):
    path = tmp_path / "model.pt"
    ckpt_io.save(path, ckpt)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    assert str(path) in one_line_error(path)


def test_foreign_random_bytes(tmp_path):
    rng = random.Random(0)
    path = tmp_path / "noise.pt"
    path.write_bytes(bytes(rng.getrandbits(8) for _ in range(4096)))
    assert str(path) in one_line_error(path)


def test_foreign_text_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a checkpoint\nat all\n")
    one_line_error(path)


@pytest.mark.parametrize("payload", [torch.zeros(3), {"model": {}}, {"format": "other", "version": 1}],
                         ids=["tensor", "dict", "other-format"])
def test_foreign_torch_file(tmp_path, payload):
    path = tmp_path / "foreign.pt"
    torch.save(payload, path)
    assert "not an nmt checkpoint" in one_line_error(path)


def test_missing_file(tmp_path):
    path = tmp_path / "missing.pt"
    message = one_line_error(path)
    assert "not found" in message and str(path) in message


def test_directory_is_not_a_checkpoint(tmp_path):
    assert str(tmp_path) in one_line_error(tmp_path)


def test_newer_version(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({"format": "nmt-checkpoint", "version": 999, "task": "translate", "config": {}, "model": {}}, path)
    message = one_line_error(path)
    assert "999" in message and "upgrade" in message


def test_save_leaves_no_temp_files(tmp_path, ckpt):
    folder = tmp_path / "runs" / "new"                  # created on demand
    ckpt_io.save(folder / "model.pt", ckpt)
    ckpt_io.save(folder / "model.pt", ckpt)              # overwriting also goes through a temp file
    assert files_in(folder) == ["model.pt"]


@pytest.mark.parametrize("partial", [False, True], ids=["fails-before-writing", "fails-mid-write"])
def test_failed_save_keeps_previous_file(tmp_path, ckpt, monkeypatch, partial):
    path = tmp_path / "model.pt"
    ckpt_io.save(path, ckpt)
    before = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):
        if partial:
            f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        ckpt_io.save(path, Checkpoint("translate", {}, {"w": torch.ones(2)}))
    assert path.read_bytes() == before
    assert files_in(tmp_path) == ["model.pt"]
    monkeypatch.undo()
    assert ckpt_io.load(path).scores == ckpt.scores


def test_release(tmp_path, ckpt):
    released = ckpt_io.release(ckpt)
    assert released.train_state is None
    assert released.task == ckpt.task and released.scores == ckpt.scores and released.tokenizers == ckpt.tokenizers
    for name, tensor in ckpt.model.items():
        small = released.model[name]
        assert small.shape == tensor.shape
        if tensor.is_floating_point():
            assert small.dtype == torch.float16 and tensor.dtype == torch.float32   # the original is untouched
            assert torch.allclose(small.float(), tensor, atol=1e-2, rtol=1e-2)
        else:
            assert small.dtype == tensor.dtype and torch.equal(small, tensor)
    full = ckpt_io.state_dict_float(released.model)
    assert all(not t.is_floating_point() or t.dtype == torch.float32 for t in full.values())
    assert ckpt_io.release(ckpt, half=False).model["hidden.weight"].dtype == torch.float32


def test_release_keeps_tied_tensors_shared(tmp_path, ckpt):
    assert ckpt.model["embed.weight"] is not ckpt.model["out.weight"]           # state_dict() detaches each entry
    assert ckpt.model["embed.weight"].data_ptr() == ckpt.model["out.weight"].data_ptr()
    released = ckpt_io.release(ckpt)
    assert released.model["embed.weight"] is released.model["out.weight"]
    path = tmp_path / "release.pt"
    ckpt_io.save(path, released)
    loaded = ckpt_io.load(path)
    embed, out = loaded.model["embed.weight"], loaded.model["out.weight"]
    assert embed.untyped_storage().data_ptr() == out.untyped_storage().data_ptr()   # stored once


def test_release_stores_tied_weight_once(tmp_path):
    weight = torch.randn(200, 100)
    tied = Checkpoint("translate", {}, {"a": weight, "b": weight.detach()})
    untied = Checkpoint("translate", {}, {"a": weight, "b": weight.clone()})
    ckpt_io.save(tmp_path / "tied.pt", ckpt_io.release(tied))
    ckpt_io.save(tmp_path / "untied.pt", ckpt_io.release(untied))
    half_bytes = weight.numel() * 2
    saved = (tmp_path / "untied.pt").stat().st_size - (tmp_path / "tied.pt").stat().st_size
    assert saved >= 0.9 * half_bytes


def test_release_keeps_views_of_one_storage_apart():
    """Two entries can start at the same address without being the same tensor (a view of the first rows)."""
    weight = torch.randn(6, 4)
    ckpt = Checkpoint("translate", {}, {"weight": weight, "head": weight[:2], "flat": weight.view(-1)})
    released = ckpt_io.release(ckpt)
    for name, tensor in ckpt.model.items():
        assert released.model[name].shape == tensor.shape
        assert torch.equal(released.model[name], tensor.half())


def test_num_parameters_counts_tied_once(ckpt):
    vocab, dim = 11, 5
    assert ckpt.num_parameters() == vocab * dim + dim * dim + dim + 2        # embed/out once, hidden, buffer
    untied = Checkpoint("translate", {}, {k: v.clone() for k, v in ckpt.model.items()})
    assert untied.num_parameters() == ckpt.num_parameters() + vocab * dim
    assert ckpt_io.release(ckpt).num_parameters() == ckpt.num_parameters()


def test_average_is_the_mean_and_keeps_ties(ckpt):
    other = Checkpoint(ckpt.task, ckpt.config, {k: v * 3 if v.is_floating_point() else v for k, v in ckpt.model.items()},
                       ckpt.tokenizers, {}, {})
    other.model["out.weight"] = other.model["embed.weight"]                   # tied, as in the model
    averaged = ckpt_io.average([ckpt, other])
    assert torch.allclose(averaged.model["hidden.weight"], ckpt.model["hidden.weight"] * 2)
    assert averaged.model["out.weight"] is averaged.model["embed.weight"]
    assert torch.equal(averaged.model["steps"], ckpt.model["steps"]) and averaged.meta["averaged"] == 2


def test_average_refuses_other_models_and_tokenizers(ckpt):
    with pytest.raises(CheckpointError, match="different tasks or models"):
        ckpt_io.average([ckpt, Checkpoint("tag", ckpt.config, ckpt.model, ckpt.tokenizers)])
    with pytest.raises(CheckpointError, match="weights or tokenizers"):
        ckpt_io.average([ckpt, Checkpoint(ckpt.task, ckpt.config, {"x": torch.zeros(1)}, ckpt.tokenizers)])
    with pytest.raises(CheckpointError, match="nothing"):
        ckpt_io.average([])


# --- format versions --------------------------------------------------------------------------------------------

def test_saved_checkpoints_are_the_current_version(tmp_path, ckpt):
    ckpt_io.save(tmp_path / "model.pt", ckpt)
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["format"] == "nmt-checkpoint" and payload["version"] == ckpt_io.VERSION == 2


def as_version_1(path, out, dead: dict) -> None:
    """Rewrite a checkpoint file as format version 1 with the retired config keys (dotted) that v1 wrote."""
    payload = torch.load(path, weights_only=True)
    payload["version"] = 1
    for dotted, value in dead.items():
        *parents, last = dotted.split(".")
        node = payload["config"]
        for part in parents:
            node = node[part]
        node[last] = value
    torch.save(payload, out)


def test_version_1_keys_are_dropped_on_load_and_nothing_else(tmp_path):
    config = {"setup": {"tokenizer": {"kind": "sentencepiece", "vocab_size": 60},
                        "model": {"bos_id": 1, "eos_id": 2, "embed_size": 8}, "decode": {"batch_size": 32, "beam": 5}},
              "model": {"bos_id": 1, "eos_id": 2, "embed_size": 8}}
    torch.save({"format": "nmt-checkpoint", "version": 1, "task": "translate", "config": config, "model": {}},
               tmp_path / "v1.pt")
    loaded = ckpt_io.load(tmp_path / "v1.pt")
    assert loaded.config == {"setup": {"tokenizer": {"vocab_size": 60}, "model": {"embed_size": 8},
                                       "decode": {"beam": 5}}, "model": {"embed_size": 8}}
    assert set(ckpt_io.RETIRED_V1) <= {"translate", "charlm", "tag", "summarize"}


def test_version_2_config_is_read_as_written(tmp_path):
    config = {"setup": {"tokenizer": {"kind": "sentencepiece"}}}
    torch.save({"format": "nmt-checkpoint", "version": 2, "task": "translate", "config": config, "model": {}},
               tmp_path / "v2.pt")
    assert ckpt_io.load(tmp_path / "v2.pt").config == config


@pytest.mark.parametrize("task, dead", [
    ("translate", {"setup.tokenizer.kind": "sentencepiece", "model.bos_id": 1, "model.eos_id": 2,
                   "setup.model.bos_id": 1, "setup.model.eos_id": 2, "setup.decode.batch_size": 32}),
    ("tag", {"setup.data.tag_column": -1, "setup.data.scheme": "auto"}),
    ("summarize", {"model.seq2seq.bos_id": 1, "model.seq2seq.eos_id": 2, "setup.model.seq2seq.bos_id": 1,
                   "setup.model.seq2seq.eos_id": 2}),
])
def test_a_version_1_model_still_runs(tmp_path, trained_models, task, dead):
    """A v1 file of each task, with the keys v1 wrote, loads into its runner (whose config no longer has them)."""
    from nmt import tasks
    old = tmp_path / "v1.pt"
    as_version_1(trained_models[task].checkpoint, old, dead)
    runner = tasks.load(old)
    assert isinstance(runner, tasks.module(task).RUNNER)
    config = ckpt_io.load(old).config
    for dotted in dead:
        node = config
        for part in dotted.split(".")[:-1]:
            node = node[part]
        assert dotted.split(".")[-1] not in node, dotted
