"""nmt/cli/summarize.py: train summarize (the session's run), summarize and evaluate summarize."""
import json

from tests.toydata import EMAILS, jsonl_records


def test_train_writes_metrics(summarize_model):
    records = [json.loads(x) for x in (summarize_model.run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert valid and valid[-1]["step"] == 20
    assert all(0 <= r["rouge1"] <= 100 and {"rouge2", "rougeL", "words"} <= set(r) for r in valid)


def test_summarize_text_json(cli, summarize_model):
    model = summarize_model.checkpoint
    result = cli.run("summarize", "-m", model, "--json", EMAILS[0][0])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 1 and isinstance(rows[0]["summary"], str)
    two = cli.run("summarize", "-m", model, "--json", EMAILS[0][0], EMAILS[1][0])
    assert len(json.loads(two.stdout)) == 2                                # each argument is one document
    piped = cli.run("summarize", "-m", model, "--json", input=EMAILS[0][0] + "\n" + EMAILS[1][0] + "\n")
    assert len(json.loads(piped.stdout)) == 1                              # stdin is one document
    plain = cli.run("summarize", "-m", model, "--max-len", 4, EMAILS[0][0], EMAILS[1][0])
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 2
    assert all(len(line.split()) <= 4 for line in plain.stdout.splitlines())


def test_summarize_input_files(cli, summarize_model, tmp_path):
    model = summarize_model.checkpoint
    whole = tmp_path / "email.txt"
    whole.write_text("\n".join(d for d, _ in EMAILS[:3]) + "\n", encoding="utf-8")
    result = cli.run("summarize", "-m", model, "--json", "--input", whole)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 1                             # the whole file is one document
    lines = cli.run("summarize", "-m", model, "--input-lines", whole, "--beam", 1)
    assert lines.exit_code == 0, lines.output
    assert len(lines.stdout.splitlines()) == 3
    records = tmp_path / "records.jsonl"
    records.write_text(jsonl_records(EMAILS[:4]), encoding="utf-8")
    result = cli.run("summarize", "-m", model, "--json", "--jsonl", records, "--field", "email_body")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4
    cli.one_line_error(cli.run("summarize", "-m", model, "--jsonl", records), "--field")


def test_evaluate_json(cli, summarize_model):
    result = cli.run("evaluate", "summarize", "--jsonl", summarize_model.data / "dev.jsonl", "--src-field",
                     "email_body", "--ref-fields", "ann0,ann1", "--json", "-m", summarize_model.checkpoint,
                     "--lead", "8")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert set(rows) == {"model", "lead-8"}
    for name in ("model", "lead-8"):
        assert set(rows[name]) == {"1", "2", "L", "words"}
        assert all(0 <= rows[name][k] <= 100 for k in ("1", "2", "L"))
    assert rows["lead-8"]["words"] == 8


def test_evaluate_a_named_corpus_knows_its_fields(cli, summarize_model, tmp_path):
    (tmp_path / "aeslc").mkdir()
    (tmp_path / "aeslc" / "dev.jsonl").write_text(jsonl_records(EMAILS[:3]), encoding="utf-8")
    args = ("evaluate", "summarize", "--corpus", "aeslc", "--data-dir", tmp_path, "-m", summarize_model.checkpoint)
    result = cli.run(*args, "--json", "--lead", "2,4")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)) == {"model", "model vs subject_line", "lead-2", "lead-2 vs subject_line",
                                              "lead-4", "lead-4 vs subject_line"}
    table = cli.run(*args, "--lead", "")
    assert table.exit_code == 0 and "model vs subject_line" in table.stdout
    cli.one_line_error(cli.run(*args, "--lead", "x"), "--lead")


def test_train_from_jsonl_needs_its_fields(cli, summarize_model, tmp_path):
    train, dev = summarize_model.data / "train.jsonl", summarize_model.data / "dev.jsonl"
    base = ("train", "summarize", "--train-jsonl", train, "--preset", "tiny", "--out", tmp_path / "r")
    for extra in ((), ("--dev-jsonl", dev), ("--dev-jsonl", dev, "--src-field", "email_body"),
                  ("--src-field", "email_body", "--tgt-field", "subject_line")):
        cli.one_line_error(cli.run(*base, *extra), "--train-jsonl needs --dev-jsonl, --src-field and --tgt-field")
    cli.one_line_error(cli.run(*base, "--dev-jsonl", dev, "--src-field", "body", "--tgt-field", "subject_line"),
                       "no field 'body'")


def test_bad_inputs(cli, summarize_model, tmp_path):
    model = summarize_model.checkpoint
    cli.one_line_error(cli.run("summarize", "-m", model, ""), "empty")
    cli.one_line_error(cli.run("summarize", "-m", model, "   ", "\t"), "empty")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    cli.one_line_error(cli.run("summarize", "-m", model, "--input", empty), "empty")
    cli.one_line_error(cli.run("summarize", "-m", model, "--input-lines", empty), "empty")
    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({"email_body": "hello there"}) + "\n" + json.dumps({"body": "x"}) + "\n",
                       encoding="utf-8")
    cli.one_line_error(cli.run("summarize", "-m", model, "--jsonl", missing, "--field", "email_body"),
                       "line 2", "email_body")
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"email_body": "hello"}) + "\n\n{not json\n", encoding="utf-8")
    cli.one_line_error(cli.run("summarize", "-m", model, "--jsonl", broken, "--field", "email_body"),
                       "line 3", "not valid JSON")
    cli.one_line_error(cli.run("evaluate", "summarize", "--jsonl", broken, "--src-field", "email_body",
                               "--ref-fields", "ann0", "-m", model), "line 1", "ann0")
    cli.one_line_error(cli.run("evaluate", "summarize", "--jsonl", broken, "-m", model), "field")
    bad_eval = tmp_path / "bad_eval.jsonl"
    bad_eval.write_text(jsonl_records(EMAILS[:2]) + "{not json\n", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "summarize", "--jsonl", bad_eval, "--src-field", "email_body",
                               "--ref-fields", "ann0", "-m", model), "line 3", "not valid JSON")
    cli.one_line_error(cli.run("evaluate", "summarize", "-m", model), "--corpus")
    cli.one_line_error(cli.run("summarize", "-m", model, "--min-len", 5, "--max-len", 3, "hello there"),
                       "min_len (5) must not exceed max_len (3)")
    cli.one_line_error(cli.run("summarize", "-m", model, "--beam", 0, "hello there"), "config key 'beam' must be >= 1")
    cli.one_line_error(cli.run("summarize", "-m", model, "--no-repeat-ngram", -1, "hello there"),
                       "'no_repeat_ngram' must be >= 0")
    cli.one_line_error(cli.run("summarize", "-m", tmp_path / "nope.pt", "hello there"), "not found")


def test_other_task_checkpoint(cli, summarize_model, translate_model):
    other = translate_model.checkpoint
    cli.one_line_error(cli.run("summarize", "-m", other, "hello there"), "'translate' checkpoint", "'summarize'")
    cli.one_line_error(cli.run("evaluate", "summarize", "--jsonl", summarize_model.data / "dev.jsonl", "--src-field",
                               "email_body", "--ref-fields", "ann0", "-m", other), "'summarize'")


def test_summarizes_a_very_long_document(cli, summarize_model):
    document = " ".join(["the", "budget", "meeting", "is", "on", "friday", "."] * 2858)[:200_000]
    assert len(document.split()) >= 20_000
    result = cli.run("summarize", "-m", summarize_model.checkpoint, "--json", document)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert len(row["summary"].split()) <= 15
