"""nmt/cli/classify.py: train classify (a tiny run on toy data), classify, evaluate classify, and every bad input
of the task as one line; the shipped SST-2 model where it is present."""
import json
import random

import pytest

from nmt import checkpoint as ckpt_io

POSITIVE, NEGATIVE = "good great fine lovely superb".split(), "bad awful poor dull boring".split()
FILLER = "the film was a and plot acting story".split()


def labelled_lines(n: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        y = rng.randint(0, 1)
        words = rng.choices(FILLER, k=rng.randint(1, 4)) + [rng.choice(POSITIVE if y else NEGATIVE)]
        rng.shuffle(words)
        lines.append(f"{'pos' if y else 'neg'} {' '.join(words)}")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    root = tmp_path_factory.mktemp("classify")
    (root / "train.txt").write_text(labelled_lines(200, 0), encoding="utf-8")
    (root / "dev.txt").write_text(labelled_lines(30, 1), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def model(toy):
    from tests.conftest import Cli
    result = Cli.run("train", "classify", "--train-file", toy / "train.txt", "--dev-file", toy / "dev.txt",
                     "--preset", "tiny", "--max-steps", 40, "--out", toy / "run", "--set", "train.threads=1",
                     "--set", "train.optim.lr=0.02")
    assert result.exit_code == 0, result.output
    return toy / "run" / "best.pt"


def test_train_writes_metrics(model):
    records = [json.loads(x) for x in (model.parent / "metrics.jsonl").read_text().splitlines()]
    valid = [r for r in records if r["type"] == "valid"]
    assert [r["step"] for r in valid] == [20, 40] and valid[-1]["accuracy"] >= 80
    assert all(r["score"] == r["accuracy"] for r in valid) and "macro_f1" in valid[0]


def test_rerun_resumes(cli, model, toy, tmp_path):
    import shutil
    run = shutil.copytree(model.parent, tmp_path / "run")
    result = cli.run("train", "classify", "--train-file", toy / "train.txt", "--dev-file", toy / "dev.txt",
                     "--preset", "tiny", "--max-steps", 60, "--out", run, "--set", "train.threads=1",
                     "--set", "train.optim.lr=0.02")
    assert result.exit_code == 0 and "resuming" in result.stderr and "kept from the saved run" not in result.stderr
    steps = [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()
             if json.loads(x)["type"] == "valid"]
    assert steps == [20, 40, 60]


def test_classify_outputs(cli, model, tmp_path):
    plain = cli.run("classify", "-m", model, "a superb film", "awful acting")
    assert plain.exit_code == 0 and plain.stdout.split() == ["pos", "neg"]
    data = json.loads(cli.run("classify", "-m", model, "--json", "a superb film").stdout)
    assert data[0]["label"] == "pos" and set(data[0]["probabilities"]) == {"pos", "neg"}
    assert abs(sum(data[0]["probabilities"].values()) - 1) < 1e-5
    top = cli.run("classify", "-m", model, "--top", 1, "a superb film")
    assert top.stdout.startswith("pos\t0.") and top.stdout.count("\t") == 1
    (tmp_path / "in.txt").write_bytes("a superb film\r\n\r\nawful\x85 plot\n".encode())
    lines = cli.run("classify", "-m", model, "--input", tmp_path / "in.txt")
    assert lines.stdout.split("\n") == ["pos", "", "neg", ""] and "1 empty line(s)" in lines.stderr
    piped = cli.run("classify", "-m", model, input="a superb film\nawful plot\n")
    assert piped.stdout.split() == ["pos", "neg"]


def test_show_attention_and_notes(cli, model):
    shown = cli.run("classify", "-m", model, "--show-attention", "a superb film")
    label, steps = shown.stdout.rstrip("\n").split("\t")
    assert label == "pos" and [s.split("/")[0] for s in steps.split()] == ["a", "superb", "film"]
    assert abs(sum(float(s.split("/")[1]) for s in steps.split()) - 1) < 0.01
    data = json.loads(cli.run("classify", "-m", model, "--json", "--show-attention", "a film").stdout)
    assert data[0]["steps"] == ["a", "film"] and len(data[0]["attention"]) == 2
    unseen = cli.run("classify", "-m", model, "a superb Ωmega film")
    assert unseen.exit_code == 0 and "never saw 'Ω'" in unseen.stderr
    long = cli.run("classify", "-m", model, " ".join(["superb"] * 10_000))
    assert long.exit_code == 0 and long.stdout == "pos\n"
    assert "1 text(s) longer than 256 words were classified on their first 256 (longest: 10,000 words)" in long.stderr


def test_evaluate(cli, model, toy, tmp_path):
    scores = json.loads(cli.run("evaluate", "classify", "-m", model, "--file", toy / "dev.txt", "--json").stdout)
    assert scores["examples"] == 30 and scores["labels"] == ["neg", "pos"] and scores["accuracy"] >= 80
    shown = cli.run("evaluate", "classify", "-m", model, "--file", toy / "dev.txt", "--plot", tmp_path / "cm.png")
    assert shown.exit_code == 0 and "confusion matrix" in shown.stdout and "macro F1" in shown.stdout
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"


def test_bad_input_is_one_line(cli, model, toy, tmp_path):
    cli.one_line_error(cli.run("classify", "-m", model, ""), "empty text")
    one_class = tmp_path / "one.txt"
    one_class.write_text("pos a film\npos a good film\n", encoding="utf-8")
    train = ("train", "classify", "--preset", "tiny", "--max-steps", 2, "--out", tmp_path / "run")
    cli.one_line_error(cli.run(*train, "--train-file", one_class, "--dev-file", one_class), "one class only ('pos')")
    unknown = tmp_path / "dev.txt"
    unknown.write_text("maybe a film\n", encoding="utf-8")
    cli.one_line_error(cli.run(*train, "--train-file", toy / "train.txt", "--dev-file", unknown),
                       "dev labels never seen in training: maybe")
    cli.one_line_error(cli.run(*train, "--train-file", toy / "train.txt"), "--dev-file")
    cli.one_line_error(cli.run("evaluate", "classify", "-m", model, "--file", unknown), "does not know: maybe")
    cli.one_line_error(cli.run("evaluate", "classify", "-m", model), "--file FILE or --corpus")
    other = tmp_path / "tag.pt"
    ckpt_io.save(other, ckpt_io.Checkpoint("tag", {}, {}))
    cli.one_line_error(cli.run("classify", "-m", other, "a film"), "is a 'tag' checkpoint, not a 'classify' one")
    cli.one_line_error(cli.run("classify", "-m", tmp_path / "none.pt", "a film"), "checkpoint not found")
    cli.one_line_error(cli.run("train", "classify", "--corpus", "sst2", "--preset", "tiny", "--out", tmp_path / "r",
                               "--pooling", "median"), "model.pooling")


def test_show_attention_needs_attention_pooling(cli, toy, tmp_path):
    result = cli.run("train", "classify", "--train-file", toy / "train.txt", "--dev-file", toy / "dev.txt",
                     "--preset", "tiny", "--max-steps", 2, "--out", tmp_path / "run", "--pooling", "max",
                     "--set", "train.threads=1")
    assert result.exit_code == 0, result.output
    cli.one_line_error(cli.run("classify", "-m", tmp_path / "run" / "best.pt", "--show-attention", "a film"),
                       "pools by max")


def test_shipped_sst2_model(cli, shipped):
    model = shipped("classify")
    result = cli.run("classify", "--json", "a gripping , beautifully acted film", "a dull , lifeless mess")
    assert [r["label"] for r in json.loads(result.stdout)] == ["1", "0"]
    assert ckpt_io.load(model).task == "classify"


def test_shipped_trec_and_names_models(cli):
    from nmt.tasks import CHECKPOINTS
    trec, names = CHECKPOINTS / "trec-questions.pt", CHECKPOINTS / "names-language.pt"
    if not (trec.exists() and names.exists()):
        pytest.skip("shipped TREC or names model not present")
    questions = cli.run("classify", "-m", trec, "How far is it from Denver to Aspen?", "Who wrote Hamlet?")
    assert questions.stdout.split() == ["NUM", "HUM"]
    languages = cli.run("classify", "-m", names, "Nakamura", "Papadopoulos", "Abakumov")
    assert languages.stdout.split() == ["Japanese", "Greek", "Russian"]
