"""nmt/cli/generate.py: train charlm (the session's run), generate and evaluate charlm."""
import json

import pytest
import torch

from nmt import checkpoint as ckpt_io
from tests.toydata import TEXT


def test_train_writes_metrics(charlm_model):
    records = [json.loads(x) for x in (charlm_model.run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert [r["step"] for r in valid] == [10, 20]
    assert all(r["valid_bpc"] > 0 and r["score"] == -r["valid_loss"] for r in valid)


def test_generate_and_evaluate(cli, charlm_model):
    model = charlm_model.checkpoint
    out = cli.run("generate", "-m", model, "--length", 30, "--seed", 1, "--prime", "to be")
    assert out.exit_code == 0 and out.stdout.startswith("to be") and len(out.stdout) >= 35
    again = cli.run("generate", "-m", model, "--length", 30, "--seed", 1, "--prime", "to be")
    assert again.stdout == out.stdout
    many = cli.run("generate", "-m", model, "--length", 10, "--num-samples", 3, "--json")
    samples = json.loads(many.stdout)["samples"]
    assert len(samples) == 3 and all(len(s) == 11 for s in samples)          # the default prime "\n" + 10
    table = cli.run("generate", "-m", model, "--length", 5, "--num-samples", 2)
    assert table.exit_code == 0 and "sample 2" in table.stdout
    unseen = cli.run("generate", "-m", model, "--length", 5, "--prime", "Ωmega")
    assert unseen.exit_code == 0 and "<unk>" in unseen.stderr
    newline = cli.run("generate", "-m", model, "--length", 3, "--prime", "to\\nbe", "--temperature", 0)
    assert newline.stdout.startswith("to\nbe")                                # \n in a prime is a newline
    scores = json.loads(cli.run("evaluate", "charlm", "-m", model, "--text-file", charlm_model.data / "text.txt",
                                "--json").stdout)
    assert set(scores) == {"loss", "bpc", "perplexity"} and scores["loss"] > 0


def test_options_default_to_the_sample_config(cli, charlm_model, monkeypatch):
    from nmt.config import SampleConfig
    from nmt.tasks.charlm import TextGenerator
    seen = []
    original = TextGenerator.sample

    def spy(self, options, seed=None):
        seen.append((options, seed))
        return original(self, options, seed)

    monkeypatch.setattr(TextGenerator, "sample", spy)
    assert cli.run("generate", "-m", charlm_model.checkpoint, "--length", 4).exit_code == 0
    assert cli.run("generate", "-m", charlm_model.checkpoint, "-n", 4, "-t", 0.5, "--top-k", 3, "--top-p", 0.9,
                   "--seed", 7).exit_code == 0
    assert seen[0] == (SampleConfig(length=4), None)
    assert seen[1] == (SampleConfig(length=4, temperature=0.5, top_k=3, top_p=0.9), 7)


@pytest.mark.parametrize("args,needle", [(["--temperature", "-1"], "config key 'temperature' must be >= 0"),
                                         (["--temperature", "nan"], "config key 'temperature' must be a finite"),
                                         (["--top-p", "0"], "config key 'top_p' must be > 0"),
                                         (["--top-p", "1.5"], "config key 'top_p' must be > 0 and <= 1"),
                                         (["--length", "0"], "config key 'length' must be >= 1"),
                                         (["--num-samples", "0"], "config key 'num_samples' must be >= 1"),
                                         (["--top-k", "-2"], "config key 'top_k' must be >= 0")])
def test_generate_rejects_bad_values(cli, charlm_model, args, needle):
    cli.one_line_error(cli.run("generate", "-m", charlm_model.checkpoint, *args), needle)


def test_wrong_task_checkpoint_and_empty_text(cli, charlm_model, tmp_path):
    cli.one_line_error(cli.run("translate", "-m", charlm_model.checkpoint, "hallo"), "'charlm' checkpoint")
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "charlm", "-m", charlm_model.checkpoint, "--text-file", empty), "empty")
    cli.one_line_error(cli.run("evaluate", "charlm", "-m", charlm_model.checkpoint), "--text-file")


def test_evaluate_a_named_corpus_scores_its_last_tenth(cli, charlm_model, tmp_path):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(TEXT, encoding="utf-8")
    result = cli.run("evaluate", "charlm", "-m", charlm_model.checkpoint, "--corpus", "tinyshakespeare",
                     "--data-dir", tmp_path)
    assert result.exit_code == 0, result.output
    assert f"{len(TEXT) - int(len(TEXT) * 0.9) - 1:,} characters" in result.stdout


def test_train_on_a_text_too_short_is_one_error_line(cli, tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("hello world\n", encoding="utf-8")
    cli.one_line_error(cli.run("train", "charlm", "--text-file", short, "--preset", "tiny", "--max-steps", 2,
                               "--out", tmp_path / "run"), "too short", "data.streams")
    cli.one_line_error(cli.run("train", "charlm", "--text-file", short, "--preset", "tiny", "--max-steps", 2,
                               "--set", "data.streams=1", "--set", "data.train_share=1.0", "--out", tmp_path / "run2"),
                       "too short")                             # nothing left to validate on


def test_export_joins_runs_into_an_ensemble(cli, charlm_model, translate_model, tmp_path):
    """`export A --ensemble B`: one model predicting the mean of A's and B's distributions; it scores no worse than
    the mean of its members' losses (Jensen), generates and dynamically evaluates like any character model."""
    a, b, joined = charlm_model.run / "last.pt", tmp_path / "member-b.pt", tmp_path / "joined.pt"
    other = ckpt_io.load(a)
    other.model = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in other.model.items()}
    ckpt_io.save(b, other)
    result = cli.run("export", a, joined, "--ensemble", b)
    assert result.exit_code == 0, result.output
    assert "joined 2 models" in result.stderr
    info = json.loads(cli.run("info", joined, "--json").stdout)
    assert info["config"]["model"]["members"] == 2
    text = charlm_model.data / "text.txt"

    def loss(model, *extra):
        run = cli.run("evaluate", "charlm", "-m", model, "--text-file", text, "--json", *extra)
        assert run.exit_code == 0, run.output
        return json.loads(run.stdout)["loss"]
    assert loss(joined) <= (loss(a) + loss(b)) / 2 + 1e-3                       # float16 release: a little slack
    assert loss(joined, "--dynamic-lr", 0.1) > 0
    out = cli.run("generate", "-m", joined, "--length", 20, "--seed", 1)
    assert out.exit_code == 0 and len(out.stdout) >= 20
    cli.one_line_error(cli.run("export", translate_model.checkpoint, tmp_path / "x.pt", "--ensemble",
                               translate_model.checkpoint), "joins character models")
    cli.one_line_error(cli.run("export", joined, tmp_path / "y.pt", "--ensemble", a), "already an ensemble")
