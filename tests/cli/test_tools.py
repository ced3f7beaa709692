"""nmt/cli/tools.py: info, export (and --average), tokenizer train/encode/decode, data stats."""
import json

import torch

from nmt import checkpoint as ckpt_io
from nmt.runs import kept_checkpoints
from tests.toydata import WORDS


def test_info_and_export(cli, translate_model, tmp_path):
    released = tmp_path / "released.pt"
    result = cli.run("export", translate_model.checkpoint, released, "--score", "test_bleu=1.5")
    assert result.exit_code == 0, result.output
    assert released.stat().st_size < translate_model.checkpoint.stat().st_size
    info = json.loads(cli.run("info", released, "--json").stdout)
    assert info["task"] == "translate" and info["resumable"] is False
    assert info["weights"] == ["float16"] and info["scores"]["test_bleu"] == 1.5
    assert info["vocab"]["src"] == info["vocab"]["tgt"] > 4
    assert cli.run("translate", "-m", released, "der hund").exit_code == 0
    table = cli.run("info", translate_model.checkpoint)
    assert table.exit_code == 0 and "resumable" in table.stdout and "translate" in table.stdout


def test_info_of_every_task(cli, trained_models):
    for task, trained in trained_models.items():
        info = json.loads(cli.run("info", trained.checkpoint, "--json").stdout)
        assert info["task"] == task and info["resumable"] is True and info["parameters"] > 0


def test_export_averages_the_kept_validation_checkpoints(cli, translate_model, tmp_path):
    kept = kept_checkpoints(translate_model.run)            # one per validation (every 20 steps)
    assert [p.name for p in kept] == ["step-20.pt", "step-40.pt"]
    averaged = tmp_path / "averaged.pt"
    result = cli.run("export", translate_model.run / "step-40.pt", averaged, "--average", 2, "--fp32")
    assert result.exit_code == 0, result.output
    assert "averaged step-20.pt, step-40.pt" in result.stderr
    a, b = (ckpt_io.load(path).model for path in kept)
    out = ckpt_io.load(averaged)
    assert out.meta["averaged"] == 2
    for name, tensor in out.model.items():
        if tensor.is_floating_point():
            assert tensor.dtype == torch.float32 and torch.allclose(tensor, (a[name] + b[name]) / 2, atol=1e-6), name
    assert cli.run("translate", "-m", averaged, "der hund").exit_code == 0
    cli.one_line_error(cli.run("export", translate_model.run / "step-40.pt", tmp_path / "x.pt", "--average", 3),
                       "keeps 2 validation checkpoints up to step 40")


def test_tokenizer_commands(cli, parallel_files, tmp_path):
    model = tmp_path / "spm.pt"
    result = cli.run("tokenizer", "train", parallel_files / "train.src", parallel_files / "train.tgt",
                     "--vocab-size", 80, "--out", model)
    assert result.exit_code == 0, result.output
    ids = cli.run("tokenizer", "encode", "-m", model, "--ids", "der hund läuft").stdout.strip()
    assert ids and all(x.isdigit() for x in ids.split())
    pieces = cli.run("tokenizer", "encode", "-m", model, "der hund läuft").stdout.strip()
    assert pieces.replace(" ", "").replace("▁", " ").strip() == "der hund läuft"
    back = cli.run("tokenizer", "decode", "-m", model, "--side", "src", ids)
    assert back.stdout.strip() == "der hund läuft"
    cli.one_line_error(cli.run("tokenizer", "decode", "-m", model, "--side", "src", "99999"), "outside the vocabulary")
    cli.one_line_error(cli.run("tokenizer", "decode", "-m", model, "--side", "src", "1 x"), "integer ids")
    cli.one_line_error(cli.run("tokenizer", "encode", "-m", model, "--side", "tgt", "x"), "no 'tgt' tokenizer")
    cli.one_line_error(cli.run("tokenizer", "train", parallel_files / "train.src", "--vocab-size", 0, "--out", model),
                       "'vocab_size' must be >= 1")
    cli.one_line_error(cli.run("tokenizer", "train", parallel_files / "train.src", "--model-type", "word",
                               "--out", model), "'model_type' must be one of unigram, bpe")


def test_tokenizer_reads_one_line_per_input_line(cli, translate_model):
    """Input lines end at \\n or \\r\\n only: a line separator inside a line does not split it."""
    result = cli.run("tokenizer", "encode", "-m", translate_model.checkpoint, "--ids",
                     input="der hund\u2028läuft\r\nein\x0ckind\n\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 3 and result.stdout.endswith("\n\n")


def test_data_stats_on_file(cli, parallel_files):
    result = cli.run("data", "stats", parallel_files / "train.src", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["columns"]["text"]
    assert stats["count"] == 300 and 2 <= stats["p50"] <= 6 and stats["vocab"] <= len(WORDS)
    table = cli.run("data", "stats", parallel_files / "train.src")
    header, row = table.stdout.splitlines()                   # piped: tab-separated, whole numbers
    assert table.exit_code == 0 and header.split("\t")[:3] == ["column", "sentences", "tokens"]
    assert row.split("\t")[:2] == ["text", "300"] and int(row.split("\t")[2]) == stats["total"]


def test_data_stats_of_a_named_corpus_under_a_data_dir(cli, tmp_path):
    (tmp_path / "aeslc").mkdir()
    (tmp_path / "aeslc" / "dev.jsonl").write_text(
        json.dumps({"email_body": "a b c", "subject_line": "a b", "ann0": "a"}) + "\n", encoding="utf-8")
    result = cli.run("data", "stats", "aeslc", "--split", "dev", "--data-dir", tmp_path, "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["columns"]) == {"email_body", "subject_line"}
    cli.one_line_error(cli.run("data", "stats", "wnut17", "--data-dir", tmp_path), "corpus 'wnut17' not found")
