"""nmt/cli/translate.py: train translate (the session's run), translate and evaluate translate."""
import json

import pytest


def records(run_dir, kind):
    return [r for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines()) if r["type"] == kind]


def test_train_writes_run_folder(translate_model):
    run = translate_model.run
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    assert {r["type"] for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())} == {"train", "valid"}
    assert [r["step"] for r in records(run, "valid")] == [20, 40]
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


def test_train_resumes(cli, translate_model, tmp_path):
    run = translate_model.copy_to(tmp_path / "run")
    d = translate_model.data
    result = cli.run("train", "translate", "--train-src", d / "train.src", "--train-tgt", d / "train.tgt",
                     "--valid-src", d / "valid.src", "--valid-tgt", d / "valid.tgt", "--preset", "tiny",
                     "--max-steps", 60, "--set", "train.eval_every=20", "--set", "tokenizer.vocab_size=120",
                     "--set", "train.threads=1", "--out", run)
    assert result.exit_code == 0, result.output
    assert [r["step"] for r in records(run, "valid")] == [20, 40, 60]
    assert "stopped (max_steps) at step 60" in result.stderr


def test_translate_keeps_lines_and_blanks(cli, translate_model):
    model = translate_model.checkpoint
    result = cli.run("translate", "-m", model, "der hund läuft", "", "ein kind")
    assert result.exit_code == 0, result.output
    lines = result.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""
    piped = cli.run("translate", "-m", model, input="der hund\n\nein kind\n")
    assert piped.exit_code == 0 and piped.stdout.count("\n") == 3
    nbest = cli.run("translate", "-m", model, "--beam", 3, "--n-best", 2, "--json", "der hund")
    rows = json.loads(nbest.stdout)
    assert len(rows) == 1 and len(rows[0]["translations"]) == 2
    assert rows[0]["translations"][0]["score"] >= rows[0]["translations"][1]["score"]
    tabbed = cli.run("translate", "-m", model, "--beam", 3, "--n-best", 2, "der hund", "")
    assert tabbed.exit_code == 0 and [len(x.split("\t")) for x in tabbed.stdout.split("\n")] == [2, 2, 1, 1]


def test_translate_confidence_and_out_of_domain_warning(cli, translate_model):
    model = translate_model.checkpoint
    rows = json.loads(cli.run("translate", "-m", model, "--json", "der hund", "").stdout)
    assert rows[0]["confidence"] <= 0 and rows[1]["confidence"] is None
    sure = rows[0]["confidence"]
    quiet = cli.run("translate", "-m", model, "--warn-confidence", max(-100, sure - 1), "der hund", "")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    warned = cli.run("translate", "-m", model, "--warn-confidence", sure / 2 if sure < 0 else -1e-9, "der hund", "")
    assert warned.exit_code == 0 and warned.stdout.count("\n") == 2          # the output itself is unchanged
    assert warned.stderr.startswith("warning: 1 of 1 line(s)") and "line 1" in warned.stderr
    off = cli.run("translate", "-m", model, "--warn-confidence", 0, "der hund")
    assert off.stderr == ""


def test_translate_splits_input_at_newlines_only(cli, translate_model, tmp_path):
    """A form feed, NEL or line separator inside a line keeps it one line: one output line per input line."""
    path = tmp_path / "in.txt"
    path.write_text("der hund\u2028läuft\nein\x0ckind\r\ndie katze\x85sitzt\n", encoding="utf-8")
    result = cli.run("translate", "-m", translate_model.checkpoint, "--beam", 1, "--input", path)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 3
    piped = cli.run("translate", "-m", translate_model.checkpoint, "--beam", 1,
                    input="der hund\u2028läuft\r\nein kind\n")
    assert piped.exit_code == 0 and piped.stdout.count("\n") == 2


def test_options_default_to_the_config(cli, translate_model, monkeypatch):
    """Options not given are None, so the decode config's own defaults apply (beam 5, n-best 1, ...)."""
    from nmt.config import DecodeConfig
    from nmt.tasks.translate import Translator
    seen = []
    original = Translator.translate_hyps

    def spy(self, lines, decode, keep_attention=False):
        seen.append(decode)
        return original(self, lines, decode, keep_attention)

    monkeypatch.setattr(Translator, "translate_hyps", spy)
    assert cli.run("translate", "-m", translate_model.checkpoint, "der hund").exit_code == 0
    assert cli.run("translate", "-m", translate_model.checkpoint, "-b", 2, "--length-penalty", 0,
                   "der hund").exit_code == 0
    assert seen[0] == DecodeConfig()
    assert seen[1] == DecodeConfig(beam=2, length_penalty=0.0)


def test_show_attention_and_plot(cli, translate_model, tmp_path):
    from tests.cli.test_pictures import png_size
    result = cli.run("translate", "-m", translate_model.checkpoint, "--beam", 2, "--show-attention", "--plot",
                     tmp_path / "a.png", "der hund", "ein kind")
    assert result.exit_code == 0, result.output
    assert "</s>" in result.stdout and png_size(tmp_path / "a.png")[0] > 200
    assert png_size(tmp_path / "a-2.png")[0] > 200 and "wrote" in result.stderr


@pytest.mark.parametrize("beam", [1, 3])
def test_shipped_model_draws_its_attention(cli, shipped, tmp_path, beam):
    shipped("translate")
    result = cli.run("translate", "--beam", beam, "--show-attention", "--plot", tmp_path / "a.png",
                     "Ein Mann fährt Fahrrad.")
    assert result.exit_code == 0, result.output
    assert "▁Mann" in result.stdout and (tmp_path / "a.png").exists()


def test_evaluate_json(cli, translate_model):
    d = translate_model.data
    result = cli.run("evaluate", "translate", "-m", translate_model.checkpoint, "-i", d / "valid.src",
                     "-r", d / "valid.tgt", "--beam", 2, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert 0 <= scores["bleu"]["score"] <= 100 and "nrefs:1" in scores["bleu"]["signature"]
    assert "chrf" in scores and scores["sentences"] == 20 and scores["beam"] == 2


def test_evaluate_writes_the_output_and_shows_a_table(cli, translate_model, tmp_path):
    d = translate_model.data
    result = cli.run("evaluate", "translate", "-m", translate_model.checkpoint, "-i", d / "valid.src",
                     "-r", d / "valid.tgt", "--beam", 1, "--output", tmp_path / "hyps.txt")
    assert result.exit_code == 0, result.output
    assert "BLEU" in result.stdout and "chrF" in result.stdout
    assert len((tmp_path / "hyps.txt").read_text(encoding="utf-8").splitlines()) == 20


def test_bad_input_errors(cli, translate_model, tmp_path):
    model, d = translate_model.checkpoint, translate_model.data
    cli.one_line_error(cli.run("translate", "-m", tmp_path / "missing.pt", "x"), "not found")
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(model.read_bytes()[:1000])
    cli.one_line_error(cli.run("translate", "-m", truncated, "x"), "not a readable")
    tokenizer = tmp_path / "spm.pt"
    cli.run("tokenizer", "train", d / "train.src", "--vocab-size", 60, "--out", tokenizer)
    cli.one_line_error(cli.run("translate", "-m", tokenizer, "x"), "'tokenizer' checkpoint")
    cli.one_line_error(cli.run("translate", "-m", model, "--beam", 0, "x"), "config key 'beam' must be >= 1", "got 0")
    cli.one_line_error(cli.run("translate", "-m", model, "--beam", 2, "--n-best", 3, "x"), "n_best (3)", "beam (2)")
    cli.one_line_error(cli.run("translate", "-m", model, "--length-penalty", "inf", "x"), "'length_penalty'", "finite")
    cli.one_line_error(cli.run("translate", "-m", model, "--max-len-ratio", 0, "x"), "'max_len_ratio' must be > 0")
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"gut\n\xff\xfe kaputt\n")
    cli.one_line_error(cli.run("translate", "-m", model, "--input", bad), "line 2", "UTF-8")
    cli.one_line_error(cli.run("translate", "-m", model, input=b"gut\n\xff kaputt\n"), "stdin: line 2", "UTF-8")
    short = tmp_path / "short.tgt"
    short.write_text("a\n", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "translate", "-m", model, "-i", d / "valid.src", "-r", short),
                       "20 lines", "has 1 line")
    cli.one_line_error(cli.run("evaluate", "translate", "-m", model, "-i", d / "valid.src"), "--ref")
    cli.one_line_error(cli.run("translate", "-m", model, "--input", tmp_path / "nothing.txt"), "nothing.txt")


def test_bad_training_options_fail_before_any_work(cli, tmp_path):
    out = tmp_path / "r"
    cli.one_line_error(cli.run("train", "translate", "--set", "train.optim.lrr=1", "--out", out), "train.optim.lrr")
    cli.one_line_error(cli.run("train", "translate", "--cell", "cnn", "--out", out),
                       "config key 'model.encoder.cell' must be one of rnn, lstm, gru; got 'cnn'")
    cli.one_line_error(cli.run("train", "translate", "--impl", "cudnn", "--out", out), "'model.encoder.impl'")
    cli.one_line_error(cli.run("train", "translate", "--preset", "huge", "--out", out), "unknown preset 'huge'")
    cli.one_line_error(cli.run("train", "translate", "--set", "train.batch_size=0", "--out", out),
                       "'train.batch_size' must be >= 1, got 0")
    cli.one_line_error(cli.run("train", "translate", "--set", "novalue", "--out", out), "KEY=VALUE")
    cli.one_line_error(cli.run("train", "translate", "--train-src", tmp_path / "a", "--out", out), "go together")
    assert not (out / "metrics.jsonl").exists()


def test_unusual_inputs_translate(cli, translate_model):
    long_line = " ".join(["hund"] * 5000)
    result = cli.run("translate", "-m", translate_model.checkpoint, "--beam", 2, long_line, "ÆØÅ 🙂 漢字", "   ")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 3 and "truncated" in result.stderr


# --- TSV pair files and mixed corpora ---------------------------------------------------------------------------

def _tsv(path, d, split, order="src-tgt"):
    """The toy corpus as a TSV file with a header: German (the source) and English (the target) columns."""
    src = (d / f"{split}.src").read_text(encoding="utf-8").splitlines()
    tgt = (d / f"{split}.tgt").read_text(encoding="utf-8").splitlines()
    rows = [f"{t}\t{s}" for s, t in zip(src, tgt)] if order == "tgt-src" else [f"{s}\t{t}" for s, t in zip(src, tgt)]
    header = "english\tgerman" if order == "tgt-src" else "german\tenglish"
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_train_on_mixed_tsv_files_records_the_mix(cli, parallel_files, tmp_path):
    d, out = parallel_files, tmp_path / "run"
    first, second = _tsv(tmp_path / "a.tsv", d, "train"), _tsv(tmp_path / "b.tsv", d, "train", "tgt-src")
    valid = _tsv(tmp_path / "v.tsv", d, "valid")
    result = cli.run("train", "translate", "--train-tsv", first, "--train-tsv", second, "--valid-tsv", valid,
                     "--mix", "a=2,b=0.5", "--preset", "tiny", "--max-steps", 10, "--set", "train.eval_every=10",
                     "--set", "tokenizer.vocab_size=120", "--set", "train.threads=1", "--out", out)
    assert result.exit_code == 0, result.output
    printed = " ".join(result.stderr.split())  # Rich wraps long lines at the terminal width
    assert "a: 300 pairs x2 = 600 per epoch (80.0%); b: 300 pairs x0.5 = 150 per epoch (20.0%)" in printed
    info = json.loads(cli.run("info", out / "last.pt", "--json").stdout)
    assert info["meta"]["mix"].startswith("a: 300 pairs x2") and info["meta"]["data"] == "a+b de-en"
    scores = cli.run("evaluate", "translate", "-m", out / "last.pt", "--tsv", valid, "--beam", 1, "--json")
    assert scores.exit_code == 0, scores.output
    assert json.loads(scores.stdout)["sentences"] == 20


def test_bad_tsv_training_input(cli, parallel_files, tmp_path):
    out = tmp_path / "run"
    bad = tmp_path / "bad.tsv"
    bad.write_text("Hallo!\tHi.\nkein Tab\nJa.\tYes.\n", encoding="utf-8")
    common = ("--preset", "tiny", "--max-steps", 1, "--set", "train.threads=1", "--out", out)
    cli.one_line_error(cli.run("train", "translate", "--train-tsv", bad, *common), "bad.tsv: line 2 has no tab",
                       "--tsv-skip-bad")
    cli.one_line_error(cli.run("train", "translate", "--train-tsv", tmp_path / "none.tsv", *common), "none.tsv")
    cli.one_line_error(cli.run("train", "translate", "--valid-tsv", bad, *common), "--valid-tsv needs --train-tsv")
    good = _tsv(tmp_path / "a.tsv", parallel_files, "train")
    cli.one_line_error(cli.run("train", "translate", "--train-tsv", good, "--mix", "news=2", *common),
                       "'news'", "not one of the sources")
    cli.one_line_error(cli.run("train", "translate", "--train-tsv", good, "--src", "fr", *common), "no 'fr' column")
    cli.one_line_error(cli.run("train", "translate", "--corpus", "multi30k+nosuch", *common), "nosuch")
    cli.one_line_error(cli.run("evaluate", "translate", "--tsv", bad, "--corpus", "multi30k"), "give one of")
    assert not (out / "metrics.jsonl").exists()


def test_data_stats_of_a_tsv_file(cli, parallel_files, tmp_path):
    path = _tsv(tmp_path / "a.tsv", parallel_files, "valid")
    result = cli.run("data", "stats", path, "--json")
    assert result.exit_code == 0, result.output
    assert {"de", "en"} <= set(json.loads(result.stdout)["columns"])


def test_direction_picks_the_shipped_translator(cli, translate_model, monkeypatch):
    from nmt import tasks
    monkeypatch.setitem(tasks.TRANSLATORS, "en-de", translate_model.checkpoint)
    result = cli.run("translate", "-d", "en-de", "der hund")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1
    d = translate_model.data
    scores = cli.run("evaluate", "translate", "--src", "en", "--tgt", "de", "-i", d / "valid.src", "-r",
                     d / "valid.tgt", "--beam", 1, "--json")
    assert scores.exit_code == 0, scores.output
    cli.one_line_error(cli.run("translate", "-d", "fr-en", "x"), "no shipped translator for 'fr-en'", "en-de")
    cli.one_line_error(cli.run("translate", "-d", "en-de", "-m", translate_model.checkpoint, "x"), "not both")
    cli.one_line_error(cli.run("evaluate", "translate", "--src", "fr", "--tgt", "en", "-i", d / "valid.src", "-r",
                               d / "valid.tgt"), "no shipped translator for fr->en", "--model")
