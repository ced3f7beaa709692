"""The command line through Typer's CliRunner: a real short training run, then every command on its output."""
import json
import random

import pytest
import torch
from typer.testing import CliRunner

from nmt.cli import app

runner = CliRunner()
WORDS = "der die das ein eine hund katze mann frau kind läuft sitzt spielt im park haus garten".split()


def run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A tiny synthetic parallel corpus: the target is the source reversed and upper-cased."""
    root = tmp_path_factory.mktemp("corpus")
    rng = random.Random(0)
    for split, n in (("train", 300), ("valid", 20)):
        src = [" ".join(rng.choices(WORDS, k=rng.randint(2, 6))) for _ in range(n)]
        (root / f"{split}.src").write_text("\n".join(src) + "\n", encoding="utf-8")
        (root / f"{split}.tgt").write_text("\n".join(" ".join(reversed(s.split())).upper() for s in src) + "\n",
                                           encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def trained(corpus):
    out = corpus / "run"
    result = run("train", "translate", "--train-src", corpus / "train.src", "--train-tgt", corpus / "train.tgt",
                 "--valid-src", corpus / "valid.src", "--valid-tgt", corpus / "valid.tgt", "--preset", "tiny",
                 "--max-steps", 40, "--set", "train.eval_every=20", "--set", "tokenizer.vocab_size=120",
                 "--set", "train.keep_checkpoints=5", "--out", out)
    assert result.exit_code == 0, result.output
    return out


def test_train_writes_run_folder(trained):
    assert (trained / "best.pt").exists() and (trained / "last.pt").exists()
    records = [json.loads(line) for line in (trained / "metrics.jsonl").read_text().splitlines()]
    assert {r["type"] for r in records} == {"train", "valid"}
    assert [r["step"] for r in records if r["type"] == "valid"] == [20, 40]


def test_train_resumes(trained, corpus):
    result = run("train", "translate", "--train-src", corpus / "train.src", "--train-tgt", corpus / "train.tgt",
                 "--valid-src", corpus / "valid.src", "--valid-tgt", corpus / "valid.tgt", "--preset", "tiny",
                 "--max-steps", 60, "--set", "train.eval_every=20", "--out", trained)
    assert result.exit_code == 0, result.output
    valid = [json.loads(x) for x in (trained / "metrics.jsonl").read_text().splitlines() if '"valid"' in x]
    assert [r["step"] for r in valid] == [20, 40, 60]


def test_translate_keeps_lines_and_blanks(trained, corpus):
    model = trained / "best.pt"
    result = run("translate", "-m", model, "der hund läuft", "", "ein kind")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    piped = run("translate", "-m", model, input="der hund\n\nein kind\n")
    assert piped.exit_code == 0 and piped.stdout.count("\n") == 3
    nbest = run("translate", "-m", model, "--beam", 3, "--n-best", 2, "--json", "der hund")
    rows = json.loads(nbest.stdout)
    assert len(rows) == 1 and len(rows[0]["translations"]) == 2


def test_evaluate_json(trained, corpus):
    result = run("evaluate", "translate", "-m", trained / "best.pt", "-i", corpus / "valid.src",
                 "-r", corpus / "valid.tgt", "--beam", 2, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert 0 <= scores["bleu"]["score"] <= 100 and "nrefs:1" in scores["bleu"]["signature"]
    assert "chrf" in scores


def test_info_and_export(trained, tmp_path):
    released = tmp_path / "released.pt"
    assert run("export", trained / "best.pt", released, "--score", "test_bleu=1.5").exit_code == 0
    assert released.stat().st_size < (trained / "best.pt").stat().st_size
    info = json.loads(run("info", released, "--json").stdout)
    assert info["task"] == "translate" and info["resumable"] is False
    assert info["weights"] == ["float16"] and info["scores"]["test_bleu"] == 1.5
    assert info["vocab"]["src"] == info["vocab"]["tgt"] > 4
    assert run("translate", "-m", released, "der hund").exit_code == 0


def test_export_averages_the_kept_validation_checkpoints(trained, tmp_path):
    from nmt import checkpoint as ckpt_io
    from nmt.training import kept_checkpoints
    kept = kept_checkpoints(trained)            # one per validation (every 20 steps; other tests resume the run)
    assert [p.name for p in kept[:2]] == ["step-20.pt", "step-40.pt"]
    averaged = tmp_path / "averaged.pt"
    result = run("export", trained / "step-40.pt", averaged, "--average", 2, "--fp32")
    assert result.exit_code == 0, result.output
    a, b = (ckpt_io.load(path).model for path in kept[:2])
    out = ckpt_io.load(averaged)
    assert out.meta["averaged"] == 2
    for name, tensor in out.model.items():
        if tensor.is_floating_point():
            assert torch.allclose(tensor, (a[name] + b[name]) / 2, atol=1e-6), name
    assert run("translate", "-m", averaged, "der hund").exit_code == 0
    result = run("export", trained / "step-40.pt", tmp_path / "x.pt", "--average", 3)
    assert result.exit_code != 0 and "keeps 2 validation checkpoints up to step 40" in result.output
    assert "Traceback" not in result.output


def test_tokenizer_commands(corpus, tmp_path):
    model = tmp_path / "spm.pt"
    result = run("tokenizer", "train", corpus / "train.src", corpus / "train.tgt", "--vocab-size", 80, "--out", model)
    assert result.exit_code == 0, result.output
    ids = run("tokenizer", "encode", "-m", model, "--ids", "der hund läuft").stdout.strip()
    assert all(x.isdigit() for x in ids.split())
    back = run("tokenizer", "decode", "-m", model, "--side", "src", ids)
    assert back.stdout.strip() == "der hund läuft"
    assert run("tokenizer", "decode", "-m", model, "--side", "src", "99999").exit_code == 1


def test_data_stats_on_file(corpus):
    result = run("data", "stats", corpus / "train.src", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["columns"]["text"]
    assert stats["count"] == 300 and 2 <= stats["p50"] <= 6 and stats["vocab"] <= len(WORDS)


def one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    message = result.stderr.strip()
    assert message.startswith("error:") and "Traceback" not in result.output
    for needle in needles:
        assert needle in message, message


def test_bad_input_errors(trained, corpus, tmp_path):
    model = trained / "best.pt"
    one_line_error(run("translate", "-m", tmp_path / "missing.pt", "x"), "not found")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(model.read_bytes()[:1000])
    one_line_error(run("translate", "-m", truncated, "x"), "not a readable")
    tokenizer = tmp_path / "spm.pt"
    run("tokenizer", "train", corpus / "train.src", "--vocab-size", 60, "--out", tokenizer)
    one_line_error(run("translate", "-m", tokenizer, "x"), "'tokenizer' checkpoint")
    one_line_error(run("translate", "-m", model, "--beam", 0, "x"), "--beam")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"gut\n\xff\xfe kaputt\n")
    one_line_error(run("translate", "-m", model, "--input", bad), "line 2", "UTF-8")
    short = tmp_path / "short.tgt"
    short.write_text("a\n", encoding="utf-8")
    one_line_error(run("evaluate", "translate", "-m", model, "-i", corpus / "valid.src", "-r", short),
                   "20 lines", "has 1 line")
    one_line_error(run("train", "translate", "--set", "train.optim.lrr=1", "--out", tmp_path / "r"), "train.optim.lrr")


def test_unusual_inputs_translate(trained):
    model = trained / "best.pt"
    long_line = " ".join(["hund"] * 5000)
    result = run("translate", "-m", model, "--beam", 2, long_line, "ÆØÅ 🙂 漢字", "   ")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 3 and "truncated" in result.stderr
