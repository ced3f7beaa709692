"""nmt/cli/tag.py: train tag (the session's run), tag and evaluate tag."""
import json
import re

from nmt import checkpoint as ckpt_io
from nmt.tasks.tag import TAG_PATTERN
from tests.toydata import TAGGED, conll_text


def test_train_writes_metrics(cli, tag_model):
    records = [json.loads(x) for x in (tag_model.run / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert valid and valid[-1]["step"] == 30
    assert all(0 <= r["f1"] <= 100 and {"precision", "recall"} <= set(r) for r in valid)


def test_tag_json_offsets(cli, tag_model):
    model = tag_model.checkpoint
    texts = ["Angela Merkel visited Paris.", "  Peter Blackburn lives in New York  ", "nothing here", "ÆØÅ 🙂 漢字"]
    result = cli.run("tag", "-m", model, "--json", *texts)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["text"] for r in rows] == texts
    found = 0
    for row in rows:
        for ent in row["entities"]:
            assert row["text"][ent["start"]:ent["end"]] == ent["text"] and ent["text"] == ent["text"].strip()
            assert ent["type"] in {"PER", "LOC", "ORG", "MISC"}
            found += 1
    assert found > 0                                    # a model that has seen these sentences finds something
    plain = cli.run("tag", "-m", model, *texts)             # piped: one bracketed line per input line
    assert plain.exit_code == 0 and plain.stdout.count("\n") == len(texts)
    for line, text in zip(plain.stdout.split("\n"), texts):      # the text as written, entities bracketed
        assert re.sub(r"\[(PER|LOC|ORG|MISC) ([^\]]*)\]", r"\2", line) == text


def test_tag_conll_format(cli, tag_model, tmp_path):
    model = tag_model.checkpoint
    path = tmp_path / "in.txt"
    path.write_text(conll_text(TAGGED[:3]), encoding="utf-8")
    result = cli.run("tag", "-m", model, "--format", "conll", "--input", path)
    assert result.exit_code == 0, result.output
    blocks = result.stdout.rstrip("\n").split("\n\n")
    assert len(blocks) == 4 and blocks.pop(0).split()[0] == "-DOCSTART-"      # kept, with the tag O
    for block, (words, _) in zip(blocks, TAGGED):
        rows = [line.split() for line in block.split("\n")]      # the 4 input columns, then the prediction
        assert [r[0] for r in rows] == words
        assert all(len(r) == 5 and TAG_PATTERN.match(r[-1]) for r in rows)
    as_json = json.loads(cli.run("tag", "-m", model, "--format", "conll", "--input", path, "--json").stdout)
    assert len(as_json) == 3 and as_json[0]["text"] == " ".join(TAGGED[0][0])
    cli.one_line_error(cli.run("tag", "-m", model, "--format", "conll", "x"), "--input")
    cli.one_line_error(cli.run("tag", "-m", model, "--format", "xml", "x"), "--format")


def test_evaluate_json(cli, tag_model):
    dev = tag_model.data / "dev.txt"
    result = cli.run("evaluate", "tag", "-m", tag_model.checkpoint, "--conll-file", dev, "--json")
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert {"precision", "recall", "f1", "types"} <= set(scores)
    assert all(0 <= scores[k] <= 100 for k in ("precision", "recall", "f1"))
    assert set(scores["types"]) <= {"PER", "LOC", "ORG", "MISC"} and scores["support"] == 6
    table = cli.run("evaluate", "tag", "-m", tag_model.checkpoint, "--conll-file", dev)
    assert table.exit_code == 0 and "overall" in table.stdout


def test_bad_inputs(cli, tag_model, tmp_path):
    model, train, dev = tag_model.checkpoint, tag_model.data / "train.txt", tag_model.data / "dev.txt"
    columns = tmp_path / "columns.txt"
    columns.write_text("-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP\n", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "tag", "-m", model, "--conll-file", columns), "line 4", "3 columns")
    cli.one_line_error(cli.run("train", "tag", "--train-file", columns, "--dev-file", dev, "--preset",
                               "tiny", "--out", tmp_path / "r", "--set", "train.threads=1"), "line 4")
    person = tmp_path / "person.txt"
    person.write_text("Angela NNP B-NP PERSON\nMerkel NNP I-NP PERSON\n", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "tag", "-m", model, "--conll-file", person), "PERSON")
    cli.one_line_error(cli.run("train", "tag", "--train-file", train, "--dev-file", person, "--preset",
                               "tiny", "--out", tmp_path / "r2", "--set", "train.threads=1"), "PERSON")
    markup = tmp_path / "markup.txt"                    # quoted user text is printed as text, not Rich markup
    markup.write_text("Angela NNP B-NP [/b]\n", encoding="utf-8")
    cli.one_line_error(cli.run("evaluate", "tag", "-m", model, "--conll-file", markup), "'[/b]'")
    unseen = tmp_path / "unseen.txt"
    unseen.write_text("Angela NNP B-NP B-EVENT\n", encoding="utf-8")
    cli.one_line_error(cli.run("train", "tag", "--train-file", train, "--dev-file", unseen, "--preset",
                               "tiny", "--out", tmp_path / "r4", "--set", "train.threads=1"), "never seen", "B-EVENT")
    cli.one_line_error(cli.run("tag", "-m", model, ""), "empty")
    cli.one_line_error(cli.run("tag", "-m", model, "   ", ""), "empty")
    cli.one_line_error(cli.run("tag", "-m", tmp_path / "missing.pt", "x"), "not found")
    cli.one_line_error(cli.run("train", "tag", "--train-file", train, "--preset", "tiny",
                               "--out", tmp_path / "r3", "--set", "train.threads=1"), "--dev-file")
    cli.one_line_error(cli.run("train", "tag", "--train-file", train, "--dev-file", dev, "--output", "svm",
                               "--out", tmp_path / "r5"), "config key 'model.output' must be one of crf, softmax")
    cli.one_line_error(cli.run("tag", "-m", model, "--format", "conll", "--input", tmp_path / "none.txt"),
                       "none.txt")


def test_other_task_checkpoint(cli, tag_model, translate_model, tmp_path):
    other = tmp_path / "charlm.pt"
    ckpt_io.save(other, ckpt_io.Checkpoint("charlm", {}, {}))
    cli.one_line_error(cli.run("tag", "-m", other, "Angela Merkel"), "not a 'tag'")
    cli.one_line_error(cli.run("evaluate", "tag", "-m", other, "--conll-file", tag_model.data / "dev.txt"),
                       "not a 'tag'")
    cli.one_line_error(cli.run("tag", "-m", translate_model.checkpoint, "Angela Merkel"), "'translate' checkpoint",
                       "not a 'tag'")


def test_tags_a_very_long_line(cli, tag_model):
    line = " ".join(["Merkel", "visited", "Paris", "."] * 2500)             # 10,000 tokens
    result = cli.run("tag", "-m", tag_model.checkpoint, "--json", line)
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert all(line[e["start"]:e["end"]] == e["text"] for e in row["entities"])


def test_tag_text_is_read_one_line_per_input_line(cli, tag_model):
    result = cli.run("tag", "-m", tag_model.checkpoint, "--json", input="Angela Merkel\u2028visited Paris\r\nEU\n")
    assert result.exit_code == 0, result.output
    assert [r["text"] for r in json.loads(result.stdout)] == ["Angela Merkel\u2028visited Paris", "EU"]


def test_train_with_contextual_char_lms(cli, charlm_model, tag_model, tmp_path):
    """Flair-style features: the two LMs' weights are copied into the tagger, which then needs no LM file."""
    import shutil
    import torch
    lm = shutil.copy(charlm_model.checkpoint, tmp_path / "lm.pt")     # one tiny LM stands for both directions
    data, out = tag_model.data, tmp_path / "run"
    train = ("train", "tag", "--train-file", data / "train.txt", "--dev-file", data / "dev.txt", "--preset", "tiny",
             "--out", out, "--set", "train.threads=1", "--set", "train.eval_every=3")
    lms = ("--set", f"model.context_forward={lm}", "--set", f"model.context_backward={lm}")
    result = cli.run(*train, *lms, "--max-steps", 3)
    assert result.exit_code == 0, result.output
    ckpt, weights = ckpt_io.load(out / "best.pt"), ckpt_io.load(lm).model
    assert ckpt.tokenizers["context"] == ckpt_io.load(lm).tokenizers["chars"]
    for direction in ("forward_lm", "backward_lm"):
        assert all(torch.equal(ckpt.model[f"context.{direction}.{k}"].float(), v.float()) for k, v in weights.items())
    (tmp_path / "lm.pt").unlink()
    resumed = cli.run(*train, *lms, "--max-steps", 6)                    # the run resumes without the LM file
    assert resumed.exit_code == 0 and "resuming" in resumed.output, resumed.output
    tagged = cli.run("tag", "-m", out / "best.pt", "--format", "conll", "--input", data / "dev.txt")
    assert tagged.exit_code == 0, tagged.output
    rows = [line.split() for line in tagged.stdout.splitlines() if line.strip()]
    words = [line for line in (data / "dev.txt").read_text().splitlines() if line.strip()]
    assert len(rows) == len(words) and all(TAG_PATTERN.match(r[-1]) for r in rows)
    one = cli.run("tag", "-m", out / "best.pt", "--json", "Zürich 1996 ÆØÅ")          # characters the LM never saw
    assert one.exit_code == 0 and json.loads(one.stdout)[0]["text"] == "Zürich 1996 ÆØÅ"


def test_contextual_lms_bad_settings(cli, tag_model, translate_model, charlm_model, tmp_path):
    data = tag_model.data
    train = ("train", "tag", "--train-file", data / "train.txt", "--dev-file", data / "dev.txt", "--preset", "tiny",
             "--set", "train.threads=1")
    lm = charlm_model.checkpoint
    cli.one_line_error(cli.run(*train, "--out", tmp_path / "a", "--set", f"model.context_forward={lm}"),
                       "context_backward")
    cli.one_line_error(cli.run(*train, "--out", tmp_path / "b", "--set", f"model.context_forward={lm}",
                               "--set", f"model.context_backward={translate_model.checkpoint}"), "not a 'charlm'")
    cli.one_line_error(cli.run(*train, "--out", tmp_path / "c", "--set", f"model.context_forward={lm}",
                               "--set", f"model.context_backward={tmp_path / 'none.pt'}"), "none.pt")


def test_shipped_taggers_find_the_same_easy_entities(cli, shipped):
    """The default (contextual LM features) and the fast tagger both ship, and read plain news alike."""
    default = shipped("tag")
    fast = default.with_name("conll2003-ner-fast.pt")
    text = "German Chancellor Angela Merkel met officials of the European Commission in Brussels on Monday."
    found = []
    for model in (default, fast):
        result = cli.run("tag", "-m", model, "--json", text)
        assert result.exit_code == 0, result.output
        found.append({(e["text"], e["type"]) for e in json.loads(result.stdout)[0]["entities"]})
    assert found[0] == found[1] and {("Angela Merkel", "PER"), ("Brussels", "LOC")} <= found[0]
